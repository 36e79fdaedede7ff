package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
)

func TestUpgrades(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api2/prod"].Variables[WebSocketVariable] = "true"
	})
	// h2c: the header is dropped and the request served as HTTP/1.1.
	w := h.do("GET", "/api1/prod/x", valOne, "Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABk")
	s := seenBy(t, w)
	if s.Header.Get("Upgrade") != "" || s.Header.Get("Http2-Settings") != "" {
		t.Fatalf("the upstream saw %v", s.Header)
	}
	// Also without Connection naming HTTP2-Settings, and in any case.
	s = seenBy(t, h.do("GET", "/api1/prod/x", valOne, "Connection", "Upgrade", "Upgrade", "H2C", "HTTP2-Settings", "AAMAAABk"))
	if s.Header.Get("Upgrade") != "" || s.Header.Get("Http2-Settings") != "" {
		t.Fatalf("the upstream saw %v", s.Header)
	}
	for _, c := range []struct {
		name, target string
		hdr          []string
	}{
		{"websocket, stage without the variable", "/api1/prod/x", []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
		{"websocket without Connection", "/api1/prod/x", []string{"Upgrade", "websocket"}},
		{"other protocol", "/api2/prod/x", []string{"Connection", "Upgrade", "Upgrade", "TLS/1.2"}},
		{"two upgrades", "/api2/prod/x", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Upgrade", "h2c"}},
		{"a list", "/api2/prod/x", []string{"Connection", "Upgrade", "Upgrade", "h2c, websocket"}},
	} {
		w := h.do("GET", c.target, valOne, c.hdr...)
		expectAnswer(t, w, 400, "BadRequestException", "Upgrade not allowed")
	}
	// Refusals before the key is known stay 403: no stage can be probed.
	expectAnswer(t, h.do("GET", "/api1/prod/x", "", "Connection", "Upgrade", "Upgrade", "websocket"), 403, "ForbiddenException", "Forbidden")
	// A stage with the variable lets the upgrade through (the echo upstream
	// does not switch, so the answer is its 200).
	s = seenBy(t, h.do("GET", "/api2/prod/x", valOne, "Connection", "Upgrade", "Upgrade", "websocket"))
	if s.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("the upstream saw %v", s.Header)
	}
}

func TestMaxConcurrent(t *testing.T) {
	entered, release := make(chan struct{}, 4), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer slow.Close()
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api1/prod"].Variables["url"] = slow.URL
	}, func(c *Config) { c.MaxConcurrent = 2 })
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- h.do("GET", "/api1/prod/x", valOne).Code
		}()
	}
	<-entered
	<-entered
	w := h.do("GET", "/api1/prod/x", valOne)
	expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	for range 2 {
		if c := <-codes; c != 200 {
			t.Fatalf("a request within the cap: %d", c)
		}
	}
	// The slots are free again.
	if w := h.do("GET", "/api1/open/x", ""); w.Code != 200 {
		t.Fatalf("after the cap: %d %s", w.Code, w.Body)
	}
	if n := h.p.inflight.Load(); n != 0 {
		t.Fatalf("%d requests still counted", n)
	}
}
