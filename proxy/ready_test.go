package proxy

import (
	"sync/atomic"
	"testing"
)

// TestScenario12NotCaughtUpAnswers503: while the node is not ready, a valid
// key, an unknown key and an unknown route all get 503 Service Unavailable
// with Retry-After, and nothing reaches the upstream or the ledger; once
// ready, the valid key is served.
func TestScenario12NotCaughtUpAnswers503(t *testing.T) {
	var ready atomic.Bool
	h := newHarness(t, nil, func(c *Config) { c.Ready = ready.Load })
	for _, req := range []struct{ target, key string }{
		{"/api1/prod/pets", valOne},
		{"/api1/prod/pets", "no-such-key-0123456789"},
		{"/nope/prod/x", valOne},
	} {
		w := h.do("GET", req.target, req.key)
		expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
		if got := w.Header().Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After %q, want 1", req.target, got)
		}
	}
	c := h.ledger.counter("p1", "k1")
	if a, n := h.shares.total(), c.counts.Load()+c.takes.Load(); a != 0 || n != 0 {
		t.Fatalf("the key was metered before the node was ready: %d attempts, %d counted", a, n)
	}

	ready.Store(true)
	if s := seenBy(t, h.do("GET", "/api1/prod/pets", valOne)); s.Path != "/base/pets" {
		t.Fatalf("forwarded to %q", s.Path)
	}
	if n := c.counts.Load() + c.takes.Load(); n != 1 || h.shares.total() == 0 {
		t.Fatalf("the served request was not metered: %d counted, %d throttle attempts", n, h.shares.total())
	}
}
