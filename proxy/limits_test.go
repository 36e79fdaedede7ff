package proxy

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/limiter"
	tollgatepb "github.com/tollgate/tollgate/proto"
)

func throttle(rate float64, burst int32) *tollgatepb.ThrottleSettings {
	return &tollgatepb.ThrottleSettings{RateLimit: rate, BurstLimit: burst}
}

func f64(v float64) *float64 { return &v }
func i32(v int32) *int32     { return &v }

// code sends a keyed GET and returns the status, failing on a 429 whose
// shape is wrong.
func (h *harness) code(method, target, key string) int {
	h.t.Helper()
	w := h.do(method, target, key)
	switch w.Code {
	case 429:
		if w.Header().Get("Retry-After") == "" {
			h.t.Errorf("429 without Retry-After")
		}
	case 200:
	default:
		h.t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return w.Code
}

func expectCodes(t *testing.T, h *harness, method, target, key string, want ...int) {
	t.Helper()
	for i, c := range want {
		if got := h.code(method, target, key); got != c {
			t.Fatalf("%s %s request %d: status %d; want %d", method, target, i+1, got, c)
		}
	}
}

// lastLevel returns the throttle level of the last 429 logged.
func (h *harness) lastLevel() string {
	logs := h.logs.String()
	i := strings.LastIndex(logs, " level=")
	if i < 0 {
		return ""
	}
	rest := logs[i+len(" level="):]
	return rest[:strings.IndexAny(rest, " \n")]
}

func TestPlanThrottle(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(1, 2) })
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200)
	w := h.do("GET", "/api1/prod/x", valOne)
	expectAnswer(t, w, 429, "TooManyRequestsException", "Too Many Requests")
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q; want 1", got)
	}
	if got := h.lastLevel(); got != "plan" {
		t.Errorf("refused at level %q; want plan", got)
	}
	h.clock.Advance(999 * time.Millisecond)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 429)
	h.clock.Advance(time.Millisecond) // 1/rate after the burst
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 429)

	// One bucket per (plan, key), across the plan's stages; other keys
	// have their own.
	h.clock.Advance(time.Second)
	expectCodes(t, h, "GET", "/api2/prod/x", valOne, 200, 429)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 429)
	expectCodes(t, h, "GET", "/api1/prod/x", valFour, 200, 200, 200)

	// A new limit applies to the same bucket (tokens kept): a faster rate
	// refills it sooner.
	h.update(func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(100, 2) })
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 429)
	h.clock.Advance(10 * time.Millisecond)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 429)
	// Removing the throttle lifts it.
	h.update(func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = nil })
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200)
	// Setting one again starts with a full bucket.
	h.update(func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(1, 2) })
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 429)
}

func TestAccountThrottle(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Account = &tollgatepb.Account{Throttle: throttle(1, 3)}
	})
	// One bucket for every caller, keyless ones included.
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200)
	expectCodes(t, h, "GET", "/api1/prod/x", valFour, 200)
	expectCodes(t, h, "GET", "/api1/open/x", "", 200, 429)
	if got := h.lastLevel(); got != "account" {
		t.Errorf("refused at level %q; want account", got)
	}
	h.clock.Advance(time.Second)
	expectCodes(t, h, "GET", "/api1/prod/x", valFour, 200, 429)

	t.Run("default", func(t *testing.T) {
		h := newHarness(t, nil)
		if r, b := h.p.table.Load().account.bucket.Limit(); r != DefaultAccountRate || b != DefaultAccountBurst {
			t.Errorf("account limit %v/%d; want %v/%d", r, b, DefaultAccountRate, DefaultAccountBurst)
		}
	})
}

func TestStageMethodThrottle(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Account = &tollgatepb.Account{Throttle: throttle(1000, 5)}
		c.Stages["api1/prod"].MethodSettings = map[string]*tollgatepb.MethodSetting{
			"*/*":       {ThrottlingRateLimit: f64(0.001)},                           // burst: the account's 5
			"/pets/GET": {ThrottlingRateLimit: f64(1), ThrottlingBurstLimit: i32(1)}, // exact match first
			"//GET":     {ThrottlingRateLimit: f64(1), ThrottlingBurstLimit: i32(1)}, // the root
		}
	})
	step := func() { h.clock.Advance(10 * time.Millisecond) } // refills the account, not the stage

	expectCodes(t, h, "GET", "/api1/prod/pets", valOne, 200)
	step()
	expectCodes(t, h, "GET", "/api1/prod/pets/", valFour, 429) // same setting, shared by all callers
	if got := h.lastLevel(); got != "stage" {
		t.Errorf("refused at level %q; want stage", got)
	}
	step()
	expectCodes(t, h, "GET", "/api1/prod/", valOne, 200)
	step()
	expectCodes(t, h, "GET", "/api1/prod", valOne, 429)
	// Everything else shares "*/*", whose burst is the account's.
	for i := range 5 {
		step()
		method := []string{"POST", "GET", "PUT", "GET", "DELETE"}[i]
		expectCodes(t, h, method, "/api1/prod/other", valOne, 200)
	}
	step()
	expectCodes(t, h, "POST", "/api1/prod/pets", valOne, 429)
	if got := h.lastLevel(); got != "stage" {
		t.Errorf("refused at level %q; want stage", got)
	}
	// Other stages are not affected.
	expectCodes(t, h, "GET", "/api2/prod/pets", valOne, 200)
}

func TestPlanMethodThrottle(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		p := c.UsagePlans["p1"]
		p.Throttle = throttle(0.001, 2)
		p.ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/GET": throttle(0.001, 1)}
		c.ApiKeys["k6"] = &tollgatepb.ApiKey{Id: "k6", Value: "keySixValue01234567890", Enabled: true}
		c.PlanKeys["p1"].Keys["k6"] = 7
	})
	expectCodes(t, h, "GET", "/api1/prod/pets", valOne, 200, 429)
	if got := h.lastLevel(); got != "method" {
		t.Errorf("refused at level %q; want method", got)
	}
	// The refused request gave its plan token back: one is left.
	expectCodes(t, h, "GET", "/api1/prod/other", valOne, 200, 429)
	if got := h.lastLevel(); got != "plan" {
		t.Errorf("refused at level %q; want plan", got)
	}
	// Per key: k6 has its own buckets; k4's plan has no override.
	expectCodes(t, h, "GET", "/api1/prod/pets", "keySixValue01234567890", 200, 429)
	expectCodes(t, h, "GET", "/api1/prod/pets", valFour, 200, 200, 200)
	// The override belongs to api1/prod only.
	expectCodes(t, h, "GET", "/api2/prod/pets", "keySixValue01234567890", 200, 429)
}

func TestStrictestWinsAndRefund(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Account = &tollgatepb.Account{Throttle: throttle(0.001, 3)}
		c.UsagePlans["p1"].Throttle = throttle(0.001, 1)
	})
	// k1: plan burst 1. Its refused requests give their account token back,
	// so k4 still gets the two that are left.
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 429, 429, 429)
	expectCodes(t, h, "GET", "/api1/prod/x", valFour, 200, 200, 429)
	if got := h.lastLevel(); got != "account" {
		t.Errorf("refused at level %q; want account", got)
	}
}

// TestThrottleExact runs many goroutines against one key: exactly the burst
// is admitted.
func TestThrottleExact(t *testing.T) {
	const burst = 50
	h := newHarness(t, func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(0.001, burst) })
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				r := httptest.NewRequest("GET", "/api1/prod/x", nil)
				r.Header.Set("X-Api-Key", valOne)
				w := httptest.NewRecorder()
				h.p.ServeHTTP(w, r)
				switch w.Code {
				case 200:
					ok.Add(1)
				case 429:
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != burst || refused.Load() != 16*20-burst {
		t.Fatalf("admitted %d refused %d; want %d and %d", ok.Load(), refused.Load(), burst, 16*20-burst)
	}
}

func quotaConfig(limit int64, period string) func(*tollgatepb.Config) {
	return func(c *tollgatepb.Config) {
		c.UsagePlans["p1"].Quota = &tollgatepb.QuotaSettings{Limit: limit, Period: period}
	}
}

func TestQuotaAnswers(t *testing.T) {
	h := newHarness(t, quotaConfig(500, "DAY"))
	ctr := h.ledger.counter("p1", "k1")
	now := h.clock.Now()

	t.Run("allowed", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: 600, Remaining: 41, ResetAt: now.Add(time.Hour)})
		w := h.do("GET", "/api1/prod/x", valOne)
		seenBy(t, w)
		if ctr.takes.Load() != 1 || ctr.counts.Load() != 0 || !ctr.lastNow.Equal(now) {
			t.Errorf("takes %d counts %d now %v", ctr.takes.Load(), ctr.counts.Load(), ctr.lastNow)
		}
		expectHeaders(t, w, map[string]string{
			"RateLimit-Policy":      `"quota";q=500;w=86400`,
			"RateLimit":             `"quota";r=41;t=3600`,
			"X-RateLimit-Limit":     "600", // with the period's extension
			"X-RateLimit-Remaining": "41",
			"X-RateLimit-Reset":     "3600",
		})
	})
	t.Run("exhausted", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaExhausted, Limit: 500, Remaining: 0,
			ResetAt: now.Add(90*time.Second + 500*time.Millisecond), RetryAfter: time.Second})
		w := h.do("GET", "/api1/prod/x", valOne)
		expectAnswer(t, w, 429, "LimitExceededException", "Limit Exceeded")
		expectHeaders(t, w, map[string]string{
			"Retry-After":           "91",
			"RateLimit":             `"quota";r=0;t=91`,
			"X-RateLimit-Remaining": "0",
		})
	})
	t.Run("unavailable", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaUnavailable, RetryAfter: 1500 * time.Millisecond})
		w := h.do("GET", "/api1/prod/x", valOne)
		expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
		expectHeaders(t, w, map[string]string{"Retry-After": "2", "RateLimit": "", "X-RateLimit-Limit": ""})
	})
	t.Run("unavailable with a throttle shows the bucket", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) {
			quotaConfig(500, "DAY")(c)
			c.UsagePlans["p1"].Throttle = throttle(10, 20)
		})
		h.ledger.counter("p1", "k1").set(limiter.QuotaDecision{Status: limiter.QuotaUnavailable, RetryAfter: time.Second})
		w := h.do("GET", "/api1/prod/x", valOne)
		expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
		expectHeaders(t, w, map[string]string{
			"RateLimit-Policy":      `"burst";q=20;w=2, "quota";q=500;w=86400`,
			"RateLimit":             `"burst";r=20;t=0`, // refunded
			"X-RateLimit-Limit":     "20",
			"X-RateLimit-Remaining": "20",
			"X-RateLimit-Reset":     "0",
		})
	})
	t.Run("allowed, the ledger knows no quota", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: -1, Remaining: -1})
		w := h.do("GET", "/api1/prod/x", valOne)
		seenBy(t, w)
		expectHeaders(t, w, map[string]string{"RateLimit": "", "X-RateLimit-Limit": "upstream", "X-RateLimit-Remaining": ""})
	})
	t.Run("allowed without a limit in the decision", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaAllowed, Remaining: 3, ResetAt: now.Add(time.Minute)})
		w := h.do("GET", "/api1/prod/x", valOne)
		seenBy(t, w)
		expectHeaders(t, w, map[string]string{"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "60"})
	})
	t.Run("unavailable without a hint", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaUnavailable})
		w := h.do("GET", "/api1/prod/x", valOne)
		expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
		expectHeaders(t, w, map[string]string{"Retry-After": "1"})
	})
	t.Run("unknown", func(t *testing.T) {
		ctr.set(limiter.QuotaDecision{Status: limiter.QuotaUnknown})
		expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 403, "ForbiddenException", "Forbidden")
	})
	t.Run("a plan without a quota counts", func(t *testing.T) {
		c4 := h.ledger.counter("p2", "k4")
		expectCodes(t, h, "GET", "/api1/prod/x", valFour, 200, 200)
		if c4.counts.Load() != 2 || c4.takes.Load() != 0 {
			t.Errorf("counts %d takes %d; want 2 and 0", c4.counts.Load(), c4.takes.Load())
		}
	})
}

func TestQuotaRefusalRefundsThrottle(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		quotaConfig(5, "DAY")(c)
		c.UsagePlans["p1"].Throttle = throttle(0.001, 2)
	})
	ctr := h.ledger.counter("p1", "k1")
	ctr.set(limiter.QuotaDecision{Status: limiter.QuotaExhausted, ResetAt: h.clock.Now().Add(time.Hour)})
	for range 4 {
		expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 429, "LimitExceededException", "Limit Exceeded")
	}
	ctr.set(limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: 5, Remaining: 4, ResetAt: h.clock.Now().Add(time.Hour)})
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 429)
	// Throttled requests never reach the ledger.
	if got := ctr.takes.Load(); got != 6 {
		t.Errorf("takes %d; want 6", got)
	}
}

func TestQuotaWait(t *testing.T) {
	h := newHarness(t, quotaConfig(5, "DAY"), func(c *Config) { c.QuotaWait = 30 * time.Millisecond })
	ctr := h.ledger.counter("p1", "k1")
	var waitErr error
	var deadline time.Duration
	ctr.take = func(ctx context.Context, now time.Time) limiter.QuotaDecision {
		if ctx.Err() != nil {
			t.Errorf("context done before waiting: %v", ctx.Err())
		}
		d, ok := ctx.Deadline()
		if !ok {
			t.Errorf("no deadline")
		}
		deadline = time.Until(d)
		<-ctx.Done()
		waitErr = ctx.Err()
		return limiter.QuotaDecision{Status: limiter.QuotaUnavailable, RetryAfter: time.Second}
	}
	expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 503, "ServiceUnavailableException", "Service Unavailable")
	if deadline <= 0 || deadline > 30*time.Millisecond {
		t.Errorf("deadline in %v; want within QuotaWait", deadline)
	}
	if !errors.Is(waitErr, context.DeadlineExceeded) {
		t.Errorf("wait ended with %v; want the deadline", waitErr)
	}
}

func expectHeaders(t *testing.T, w *httptest.ResponseRecorder, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got := w.Header().Values(k)
		switch {
		case v == "" && len(got) != 0:
			t.Errorf("%s: %q; want none", k, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			t.Errorf("%s: %q; want %q", k, got, v)
		}
	}
}

func TestLimitHeaders(t *testing.T) {
	t.Run("throttle", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(10, 20) })
		w := h.do("GET", "/api1/prod/x", valOne)
		seenBy(t, w)
		expectHeaders(t, w, map[string]string{
			"RateLimit-Policy":      `"burst";q=20;w=2`,
			"RateLimit":             `"burst";r=19;t=1`,
			"X-RateLimit-Limit":     "20", // replaces the upstream's
			"X-RateLimit-Remaining": "19",
			"X-RateLimit-Reset":     "1",
		})
		for range 19 {
			h.do("GET", "/api1/prod/x", valOne)
		}
		w = h.do("GET", "/api1/prod/x", valOne)
		expectAnswer(t, w, 429, "TooManyRequestsException", "Too Many Requests")
		expectHeaders(t, w, map[string]string{
			"RateLimit-Policy":      `"burst";q=20;w=2`,
			"RateLimit":             `"burst";r=0;t=2`,
			"X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset":     "2",
			"Retry-After":           "1",
		})
		// Keyless and refused-key answers carry none.
		for _, w := range []*httptest.ResponseRecorder{h.do("GET", "/api1/open/x", ""), h.do("GET", "/api1/prod/x", "")} {
			expectHeaders(t, w, map[string]string{"RateLimit-Policy": "", "RateLimit": "", "X-RateLimit-Remaining": ""})
		}
	})
	t.Run("throttle and quota", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.UsagePlans["p1"].Throttle = throttle(10, 20)
			c.UsagePlans["p1"].Quota = &tollgatepb.QuotaSettings{Limit: 500, Period: "WEEK", Offset: 1}
		})
		h.ledger.counter("p1", "k1").set(limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: 500, Remaining: 41, ResetAt: h.clock.Now().Add(2 * time.Hour)})
		w := h.do("GET", "/api1/prod/x", valOne)
		seenBy(t, w)
		expectHeaders(t, w, map[string]string{
			"RateLimit-Policy":      `"burst";q=20;w=2, "quota";q=500;w=604800`,
			"RateLimit":             `"burst";r=19;t=1, "quota";r=41;t=7200`,
			"X-RateLimit-Limit":     "500",
			"X-RateLimit-Remaining": "41",
			"X-RateLimit-Reset":     "7200",
		})
	})
	t.Run("per-method override", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.UsagePlans["p1"].Throttle = throttle(10, 20)
			c.UsagePlans["p1"].Quota = &tollgatepb.QuotaSettings{Limit: 9, Period: "MONTH"}
			c.UsagePlans["p1"].ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/POST": throttle(1, 3)}
		})
		w := h.do("POST", "/api1/prod/pets", valOne)
		seenBy(t, w)
		expectHeaders(t, w, map[string]string{
			"RateLimit-Policy": `"burst";q=3;w=3, "quota";q=9;w=2592000`,
			"RateLimit":        `"burst";r=2;t=1, "quota";r=999;t=3600`,
		})
	})
	t.Run("502 carries them too", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.UsagePlans["p1"].Throttle = throttle(10, 20)
			c.Stages["api1/prod"].Variables["url"] = "http://127.0.0.1:1"
		})
		w := h.do("GET", "/api1/prod/x", valOne)
		expectAnswer(t, w, 502, "BadGatewayException", "Bad Gateway")
		expectHeaders(t, w, map[string]string{"RateLimit": `"burst";r=19;t=1`})
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.UsagePlans["p1"].Throttle = throttle(0.001, 1)
		c.UsagePlans["p2"].Quota = &tollgatepb.QuotaSettings{Limit: 1, Period: "DAY"}
	}, func(c *Config) { c.Metrics = reg })
	h.ledger.counter("p2", "k4").set(limiter.QuotaDecision{Status: limiter.QuotaExhausted, ResetAt: h.clock.Now().Add(time.Hour)})
	h.do("GET", "/api1/prod/x", valOne)  // 200
	h.do("GET", "/api1/prod/x", valOne)  // 429 plan
	h.do("GET", "/api1/prod/x", valFour) // 429 quota
	h.do("GET", "/nope/x", "")           // 403 unrouted

	want := map[string]float64{
		`tollgate_proxy_requests_total{api="api1",code="200",stage="prod"}`:       1,
		`tollgate_proxy_requests_total{api="api1",code="429",stage="prod"}`:       2,
		`tollgate_proxy_requests_total{api="",code="403",stage=""}`:               1,
		`tollgate_proxy_throttled_total{api="api1",level="plan",stage="prod"}`:    1,
		`tollgate_proxy_throttled_total{api="api1",level="account",stage="prod"}`: 0,
		`tollgate_proxy_quota_exceeded_total{api="api1",stage="prod"}`:            1,
		`tollgate_proxy_upstream_seconds_count{api="api1",stage="prod"}`:          1,
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[strings.Replace(name, "{", "_count{", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
	// A second proxy on the same registry is refused.
	if _, err := New(Config{Source: h.src, Ledger: h.ledger, Metrics: reg}); err == nil {
		t.Errorf("New registered its metrics twice")
	}
}

// Throttle ids of baseConfig's key k1 in plan p1.
const (
	shareKey1      = "key\x00p1\x00k1"
	shareKey1Pets  = "method\x00p1\x00k1\x00api1\x00prod\x00/pets/GET"
	shareStagePets = "stage\x00api1\x00prod\x00/pets/GET"
	shareAccount   = "account"
)

// TestNodeShareOfPlanThrottle: the node's bucket for a key holds its share
// of the plan's rate and burst, follows share changes, and counts every
// request (throttled too) as the key's offered demand.
func TestNodeShareOfPlanThrottle(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		p := c.UsagePlans["p1"]
		p.Throttle = throttle(10, 10)
	})
	h.shares.set(shareKey1, 0.5)
	// Half of burst 10 at one instant: 5 pass.
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200, 200, 200, 429)
	// Half the rate: one token every 200ms.
	h.clock.Advance(199 * time.Millisecond)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 429)
	h.clock.Advance(time.Millisecond)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 429)
	if got := h.shares.attempts(shareKey1); got != 9 {
		t.Fatalf("offered demand counted %d requests; want 9 (throttled ones too)", got)
	}
	// A larger share raises the limit on the next request (tokens kept:
	// the one refilled at the old rate); the bucket then fills to the
	// whole burst.
	h.clock.Advance(200 * time.Millisecond)
	h.shares.set(shareKey1, 1)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200)
	h.clock.Advance(2 * time.Second)
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429)
}

// TestScenario9MethodOverrideTakesTheMethodsShare: a per-method override is
// scaled by the node's share of that (key, method), not by the key's: a
// node that gets all of a method's traffic holds (nearly) all of the
// override while the key's other traffic, and so its plan share, is
// elsewhere.
func TestScenario9MethodOverrideTakesTheMethodsShare(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		p := c.UsagePlans["p1"]
		p.Throttle = throttle(1000, 1000)
		p.ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/GET": throttle(20, 20)}
	})
	h.shares.set(shareKey1, 0.5)   // the key's traffic is elsewhere too
	h.shares.set(shareKey1Pets, 1) // all of /pets GET comes here
	codes := map[int]int{}
	for range 25 {
		codes[h.do("GET", "/api1/prod/pets", valOne).Code]++
	}
	t.Logf("override 20 r/s burst 20, method share 1, key share 0.5: %d of 25 at once admitted (before: the key's share scaled it)", codes[200])
	if codes[200] != 20 || h.lastLevel() != "method" {
		t.Fatalf("admitted %d of 25 (last refusal at %q); want 20, the whole override", codes[200], h.lastLevel())
	}
	if got := h.shares.attempts(shareKey1Pets); got != 25 {
		t.Fatalf("the method's demand counted %d requests, want 25", got)
	}
	// Half the method's share: half the override.
	h.clock.Advance(2 * time.Second)
	h.shares.set(shareKey1Pets, 0.5)
	expectCodes(t, h, "GET", "/api1/prod/pets", valOne, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429)
}

// TestNodeShareOfAccountAndStageThrottles: the account's and the stages'
// throttles are cluster-wide; the node's buckets hold its share of each
// (divided by each one's demand), and a new share applies on the next
// request.
func TestNodeShareOfAccountAndStageThrottles(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Account = &tollgatepb.Account{Throttle: throttle(1, 4)}
		c.Stages["api1/prod"].MethodSettings = map[string]*tollgatepb.MethodSetting{
			"/pets/GET": {ThrottlingRateLimit: f64(0.001), ThrottlingBurstLimit: i32(2)},
		}
	})
	h.shares.set(shareAccount, 0.5)
	h.shares.set(shareStagePets, 0.5)
	// Half of the stage setting's burst 2.
	expectCodes(t, h, "GET", "/api1/prod/pets", valOne, 200, 429)
	if got := h.lastLevel(); got != "stage" {
		t.Errorf("refused at level %q; want stage", got)
	}
	// Half of the account's burst 4: one more token is left.
	expectCodes(t, h, "GET", "/api1/open/x", "", 200, 429)
	if got := h.lastLevel(); got != "account" {
		t.Errorf("refused at level %q; want account", got)
	}
	if a, s := h.shares.attempts(shareAccount), h.shares.attempts(shareStagePets); a != 4 || s != 2 {
		t.Errorf("demand counted: account %d, stage setting %d; want 4 and 2", a, s)
	}
	// All of the demand here: the whole account throttle applies from the
	// next request on (tokens kept), and the bucket fills to burst 4 at 1/s.
	h.shares.set(shareAccount, 1)
	h.clock.Advance(2 * time.Second) // a token at the old rate (0.5/s)
	expectCodes(t, h, "GET", "/api1/open/x", "", 200)
	h.clock.Advance(4 * time.Second)
	expectCodes(t, h, "GET", "/api1/open/x", "", 200, 200, 200, 200, 429)
}

// TestColdShareIsWaitedFor: a throttle the cluster never gave this node a
// share of is waited for once; with an answer the request goes on, the
// bucket full at the share; without one it is refused (429) at that level.
func TestColdShareIsWaitedFor(t *testing.T) {
	fs := &fakeShares{cold: map[string]bool{shareKey1: true, shareAccount: true}}
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.UsagePlans["p1"].Throttle = throttle(10, 10)
	}, func(c *Config) { c.Shares = fs })
	h.shares = fs
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 429)
	if h.lastLevel() != "account" || h.shares.waits.Load() != 1 {
		t.Fatalf("refused at %q after %d waits; want account after 1", h.lastLevel(), h.shares.waits.Load())
	}
	h.shares.mu.Lock()
	h.shares.onWait = func(id string) { h.shares.get(id).Store(0.5) }
	h.shares.mu.Unlock()
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200, 200, 200, 429)
	if h.shares.waits.Load() != 3 {
		t.Fatalf("%d waits; want 3 (one more for each cold share)", h.shares.waits.Load())
	}
}

// TestColdShareRunsOnTheDefault: a throttle never given a share of its
// own runs on the node's default share at once (no wait), and takes its
// own share when one comes.
func TestColdShareRunsOnTheDefault(t *testing.T) {
	fs := &fakeShares{cold: map[string]bool{shareKey1: true, shareAccount: true}}
	fs.def.Store(0.5)
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.UsagePlans["p1"].Throttle = throttle(10, 10)
	}, func(c *Config) { c.Shares = fs })
	h.shares = fs
	// Half of the burst of 10.
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200, 200, 200, 429)
	if h.lastLevel() != "plan" || fs.waits.Load() != 0 {
		t.Fatalf("refused at %q after %d waits; want plan after none", h.lastLevel(), fs.waits.Load())
	}
	fs.set(shareKey1, 0) // its own share, once given, replaces the default
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 429)
	if h.lastLevel() != "plan" || fs.waits.Load() != 0 {
		t.Fatalf("refused at %q after %d waits; want plan after none", h.lastLevel(), fs.waits.Load())
	}
}

// TestColdShareWaitsPastADefaultOfNothing: a default share of zero (the
// leader had nothing free for this node, as for a node that restarted
// while the others held the whole throttle) is no better than none: a
// throttle with no share of its own waits for it instead of refusing.
func TestColdShareWaitsPastADefaultOfNothing(t *testing.T) {
	fs := &fakeShares{cold: map[string]bool{shareKey1: true}}
	fs.def.Store(0)
	fs.onWait = func(id string) {
		if id == shareKey1 {
			fs.set(shareKey1, 0.5)
		}
	}
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.UsagePlans["p1"].Throttle = throttle(10, 10)
	}, func(c *Config) { c.Shares = fs })
	h.shares = fs
	expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200, 200, 200, 429)
	if h.lastLevel() != "plan" || fs.waits.Load() == 0 {
		t.Fatalf("refused at %q after %d waits; want plan after a wait for its own share", h.lastLevel(), fs.waits.Load())
	}
}
