package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tollgatepb "github.com/tollgate/tollgate/proto"
)

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no source", Config{Ledger: &fakeLedger{}}},
		{"no ledger", Config{Source: &fakeSource{}}},
		{"negative timeout", Config{Source: &fakeSource{}, Ledger: &fakeLedger{}, UpstreamTimeout: -1}},
		{"negative body", Config{Source: &fakeSource{}, Ledger: &fakeLedger{}, MaxBodyBytes: -1}},
		{"negative wait", Config{Source: &fakeSource{}, Ledger: &fakeLedger{}, QuotaWait: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v; want ErrInvalidConfig", err)
			}
		})
	}
	p, err := New(Config{Source: &fakeSource{}, Ledger: &fakeLedger{}})
	if err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	defer p.Close()
	if p.maxBody != DefaultMaxBodyBytes || p.quotaWait != DefaultQuotaWait || p.upstreamTimeout != DefaultUpstreamTimeout {
		t.Errorf("defaults: body %d wait %v timeout %v", p.maxBody, p.quotaWait, p.upstreamTimeout)
	}
	// No configuration yet: everything is refused, nothing panics.
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "/api1/prod/x", nil))
	expectAnswer(t, w, 403, "ForbiddenException", "Forbidden")
}

func TestRoutingForms(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name, target, host string
		wantPath           string
	}{
		{"path form", "/api1/prod/pets/1", "gateway.local", "/base/pets/1"},
		{"path form, stage root", "/api1/prod", "gateway.local", "/base"},
		{"path form, stage root slash", "/api1/prod/", "gateway.local", "/base/"},
		{"host form", "/prod/pets", "api1.example.com", "/base/pets"},
		{"host form, port and case", "/prod/pets", "API1.Example.com:8443", "/base/pets"},
		{"host form falls back to path form", "/api2/prod/x", "api1.example.com", "/two/x"},
		{"unknown host label uses path form", "/api1/prod/x", "zzz.example.com", "/base/x"},
		{"base with trailing slash", "/api2/prod/x/y", "gw", "/two/x/y"},
		{"merged slashes", "//api1//prod//pets", "gw", "/base/pets"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := seenBy(t, h.do("GET", c.target, valOne, "Host", c.host))
			if s.Path != c.wantPath {
				t.Errorf("upstream path %q; want %q", s.Path, c.wantPath)
			}
		})
	}
	// A bare host (no dot) is not the host form, even if it is an API id.
	expectAnswer(t, h.do("GET", "/prod/pets", valOne, "Host", "api1"), 403, "ForbiddenException", "Forbidden")
	// Unknown API, unknown stage, API without a stage.
	for _, target := range []string{"/nope/prod/x", "/api1/nope/x", "/api1", "/"} {
		expectAnswer(t, h.do("GET", target, valOne), 403, "ForbiddenException", "Forbidden")
	}
}

func TestForwarding(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api1/prod"].Variables["url"] += "?fixed=1"
	})
	r := httptest.NewRequest("POST", "/api1/prod/pets/x%20y/z?a=1&b=two", strings.NewReader("hello"))
	r.Host = "gateway.example.com"
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-Api-Key", valOne)
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	r.Header.Set("X-Forwarded-Host", "evil.example.com")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("Forwarded", "for=6.6.6.6")
	r.Header.Set("X-Real-Ip", "6.6.6.6")
	r.Header.Set("Connection", "X-Secret")
	r.Header.Set("X-Secret", "drop me")
	r.Header.Set("Keep-Alive", "timeout=5")
	r.Header.Set("Proxy-Connection", "keep-alive")
	r.Header.Set("X-Custom", "kept")
	w := httptest.NewRecorder()
	h.p.ServeHTTP(w, r)
	s := seenBy(t, w)

	if s.Method != "POST" || s.Body != "hello" {
		t.Errorf("method %s body %q", s.Method, s.Body)
	}
	if s.Escaped != "/base/pets/x%20y/z" || s.Path != "/base/pets/x y/z" {
		t.Errorf("path %q (escaped %q); want /base/pets/x y/z", s.Path, s.Escaped)
	}
	if s.Query != "fixed=1&a=1&b=two" {
		t.Errorf("query %q", s.Query)
	}
	if !strings.HasPrefix(h.up.URL, "http://"+s.Host) {
		t.Errorf("upstream saw Host %q; want its own (%s)", s.Host, h.up.URL)
	}
	want := map[string]string{
		"X-Forwarded-For":   "192.0.2.7",
		"X-Forwarded-Host":  "gateway.example.com",
		"X-Forwarded-Proto": "http",
		"X-Custom":          "kept",
	}
	for k, v := range want {
		if got := s.Header[k]; len(got) != 1 || got[0] != v {
			t.Errorf("upstream header %s = %q; want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Api-Key", "X-Secret", "Keep-Alive", "Proxy-Connection", "Forwarded", "X-Real-Ip"} {
		if got, ok := s.Header[k]; ok {
			t.Errorf("upstream received %s: %q", k, got)
		}
	}
	// The response: upstream headers through, hop-by-hop ones dropped, no
	// limit headers (p1 has no throttle and no quota) and the upstream's own
	// X-RateLimit-Limit left alone.
	if w.Header().Get("X-Up") != "yes" || w.Header().Get("X-Up-Hop") != "" {
		t.Errorf("response headers: X-Up %q X-Up-Hop %q", w.Header().Get("X-Up"), w.Header().Get("X-Up-Hop"))
	}
	if got := w.Header().Values("X-Ratelimit-Limit"); len(got) != 1 || got[0] != "upstream" {
		t.Errorf("X-RateLimit-Limit %q; want the upstream's", got)
	}
	if w.Header().Get("RateLimit-Policy") != "" {
		t.Errorf("RateLimit-Policy %q for a plan without limits", w.Header().Get("RateLimit-Policy"))
	}
}

func TestForbidden(t *testing.T) {
	h := newHarness(t, nil)
	forbid := func(name string, w *httptest.ResponseRecorder) {
		t.Run(name, func(t *testing.T) { expectAnswer(t, w, 403, "ForbiddenException", "Forbidden") })
	}
	forbid("no key", h.do("GET", "/api1/prod/x", ""))
	forbid("unknown key", h.do("GET", "/api1/prod/x", "nosuchkeyvalue000000"))
	forbid("disabled key", h.do("GET", "/api1/prod/x", valDisabled))
	forbid("key in no plan", h.do("GET", "/api1/prod/x", valNoPlan))
	forbid("plan does not cover the stage", h.do("GET", "/api2/prod/x", valFour))
	forbid("two different keys", h.do("GET", "/api1/prod/x", valOne, "x-api-key", valFour))
	forbid("empty key", h.do("GET", "/api1/prod/x", "", "X-API-KEY", ""))

	t.Run("same key twice", func(t *testing.T) { seenBy(t, h.do("GET", "/api1/prod/x", valOne, "x-api-key", valOne)) })
	t.Run("header name in any case", func(t *testing.T) { seenBy(t, h.do("GET", "/api1/prod/x", "", "X-API-KEY", valOne)) })
	t.Run("keyless stage without a key", func(t *testing.T) {
		s := seenBy(t, h.do("GET", "/api1/open/x", ""))
		if s.Path != "/x" {
			t.Errorf("path %q", s.Path)
		}
	})
	t.Run("keyless stage strips a key and does not meter it", func(t *testing.T) {
		w := h.do("GET", "/api1/open/x", valOne)
		if s := seenBy(t, w); s.Header.Get("X-Api-Key") != "" {
			t.Errorf("upstream received the key")
		}
		if c := h.ledger.counter("p1", "k1"); c.counts.Load()+c.takes.Load() != 2 { // the two keyed requests above
			t.Errorf("counter: %d counts %d takes; want the two keyed requests only", c.counts.Load(), c.takes.Load())
		}
	})

	// Reasons go to the debug log with the key id or its last four
	// characters, never the value.
	logs := h.logs.String()
	for _, want := range []string{"reason=\"no API key\"", "key_id=k2", "****0000", "reason=\"API key is in no plan covering the stage\"", "two different API keys"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{valOne, valDisabled, valNoPlan, valFour, "nosuchkeyvalue000000"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains the key value %s", secret)
		}
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, nil)
	for _, target := range []string{
		"/api1/prod/../admin",
		"/api1/prod/./x",
		"/api1/prod/%2e%2E/x",
		"/api1/prod/.%2e",
		"/api1/prod/a%2Fb",
		"/api1/prod/a%2fb",
		"/api1/prod/a%5Cb",
		"/api1/prod/a%00b",
		"/api1/..",
	} {
		t.Run(target, func(t *testing.T) {
			expectAnswer(t, h.do("GET", target, valOne), 400, "BadRequestException", "Bad Request")
		})
	}
	t.Run("underscore header", func(t *testing.T) {
		expectAnswer(t, h.do("GET", "/api1/prod/x", valOne, "X_Api_Key", "x"), 400, "BadRequestException", "Bad Request")
	})
	t.Run("underscore header allowed", func(t *testing.T) {
		h := newHarness(t, nil, func(c *Config) { c.AllowUnderscoreHeaders = true })
		seenBy(t, h.do("GET", "/api1/prod/x", valOne, "X_Custom", "x"))
	})
	t.Run("dots inside a segment are fine", func(t *testing.T) {
		if s := seenBy(t, h.do("GET", "/api1/prod/a..b/...", valOne)); s.Path != "/base/a..b/..." {
			t.Errorf("path %q", s.Path)
		}
	})
}

func TestNoUpstream(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api1/prod"].Variables["url"] = "ftp://example.com"
		delete(c.Stages["api2/prod"].Variables, "url")
	})
	expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 500, "InternalServerErrorException", "Internal server error")
	expectAnswer(t, h.do("GET", "/api2/prod/x", valOne), 500, "InternalServerErrorException", "Internal server error")
	// Key checks come first.
	expectAnswer(t, h.do("GET", "/api1/prod/x", ""), 403, "ForbiddenException", "Forbidden")
	if logs := h.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "not http or https") {
		t.Errorf("no error log line for the missing upstream:\n%s", logs)
	}
}

func TestBadGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api1/prod"].Variables["url"] = "http://" + addr
	})
	expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 502, "BadGatewayException", "Bad Gateway")
}

func TestGatewayTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)

	t.Run("UpstreamTimeout", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.Stages["api1/prod"].Variables["url"] = slow.URL
		}, func(c *Config) { c.UpstreamTimeout = 50 * time.Millisecond })
		expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 504, "GatewayTimeoutException", "Endpoint request timed out")
	})
	t.Run("transport timeout", func(t *testing.T) {
		tr := newTransport(nil)
		tr.ResponseHeaderTimeout = 50 * time.Millisecond
		defer tr.CloseIdleConnections()
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.Stages["api1/prod"].Variables["url"] = slow.URL
		}, func(c *Config) { c.Transport = tr })
		expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 504, "GatewayTimeoutException", "Endpoint request timed out")
	})
	t.Run("slow body after headers is not cut", func(t *testing.T) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond) // longer than UpstreamTimeout
			io.WriteString(w, "done")
		}))
		defer up.Close()
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.Stages["api1/prod"].Variables["url"] = up.URL
		}, func(c *Config) { c.UpstreamTimeout = 50 * time.Millisecond })
		w := h.do("GET", "/api1/prod/x", valOne)
		if w.Code != 200 || w.Body.String() != "done" {
			t.Fatalf("status %d body %q; want 200 done", w.Code, w.Body)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.MaxBodyBytes = 10 })
	srv := httptest.NewServer(h.p)
	defer srv.Close()

	send := func(t *testing.T, body io.Reader, length int64) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("POST", srv.URL+"/api1/prod/x", body)
		r.ContentLength = length
		r.Header.Set("X-Api-Key", valOne)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	check413 := func(t *testing.T, resp *http.Response) {
		t.Helper()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || string(b) != `{"message":"Request Too Long"}` {
			t.Fatalf("status %d body %s; want 413", resp.StatusCode, b)
		}
	}
	t.Run("content length over", func(t *testing.T) {
		check413(t, send(t, strings.NewReader(strings.Repeat("x", 20)), 20))
	})
	t.Run("chunked over", func(t *testing.T) {
		check413(t, send(t, io.MultiReader(strings.NewReader(strings.Repeat("x", 20))), -1))
	})
	t.Run("at the limit", func(t *testing.T) {
		for _, n := range []int64{10, -1} {
			resp := send(t, io.MultiReader(strings.NewReader(strings.Repeat("x", 10))), n)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"body":"xxxxxxxxxx"`) {
				t.Fatalf("length %d: status %d body %s", n, resp.StatusCode, b)
			}
		}
	})
}

func TestConfigChange(t *testing.T) {
	h := newHarness(t, nil)
	const newVal = "keyFiveValue0123456789"
	expectAnswer(t, h.do("GET", "/api1/prod/x", newVal), 403, "ForbiddenException", "Forbidden")
	seenBy(t, h.do("GET", "/api1/prod/x", valOne))

	h.update(func(c *tollgatepb.Config) {
		c.ApiKeys["k5"] = &tollgatepb.ApiKey{Id: "k5", Value: newVal, Enabled: true}
		c.PlanKeys["p1"].Keys["k5"] = 9
		c.ApiKeys["k1"].Enabled = false
		c.Stages["api1/prod"].Variables["url"] = h.up.URL + "/moved"
	})
	if s := seenBy(t, h.do("GET", "/api1/prod/x", newVal)); s.Path != "/moved/x" {
		t.Errorf("new key forwarded to %q; want /moved/x", s.Path)
	}
	expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 403, "ForbiddenException", "Forbidden")

	h.update(func(c *tollgatepb.Config) { delete(c.PlanKeys["p1"].Keys, "k5") })
	expectAnswer(t, h.do("GET", "/api1/prod/x", newVal), 403, "ForbiddenException", "Forbidden")
	h.update(func(c *tollgatepb.Config) { delete(c.Stages, "api1/prod") })
	expectAnswer(t, h.do("GET", "/api1/prod/x", valFour), 403, "ForbiddenException", "Forbidden")
}

func TestRequestIDs(t *testing.T) {
	h := newHarness(t, nil)
	a := h.do("GET", "/nope", "").Header().Get("x-amzn-RequestId")
	b := h.do("GET", "/nope", "").Header().Get("x-amzn-RequestId")
	if a == b || len(a) != 36 || a[14] != '4' {
		t.Errorf("request ids %q and %q", a, b)
	}
}

// TestRebuildUnderLoad changes the configuration while requests run: every
// request is answered from one consistent table (200 for k1, 403 for k3,
// whichever configuration it saw), and the race detector watches.
func TestRebuildUnderLoad(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 8)
	for range 8 {
		go func() {
			for ctx.Err() == nil {
				w := h.do("GET", "/api1/prod/x", valOne)
				if w.Code != 200 {
					done <- errors.New("k1 got " + w.Result().Status)
					return
				}
				if w := h.do("GET", "/api1/prod/x", valNoPlan); w.Code != 403 {
					done <- errors.New("k3 got " + w.Result().Status)
					return
				}
			}
			done <- nil
		}()
	}
	for i := range 50 {
		h.update(func(c *tollgatepb.Config) {
			c.Stages["api1/prod"].Description = itoa(i)
		})
		h.do("GET", "/api1/prod/x", valOne)
	}
	cancel()
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
