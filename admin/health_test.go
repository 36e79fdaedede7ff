package admin

import (
	"log/slog"
	"sync/atomic"
	"testing"
)

// TestScenario12NotCaughtUpAnswers503: while the node has not caught up, the
// API (reads and writes) answers 503 ServiceUnavailableException with
// Retry-After instead of an empty or stale state, /healthz answers 503
// "catching up" with the indexes, and /metrics and /cluster still answer;
// once caught up, everything is served.
func TestScenario12NotCaughtUpAnswers503(t *testing.T) {
	e := newEnv(t)
	planID := e.plan(map[string]any{"name": "gold"})
	var ready atomic.Bool
	var applied atomic.Uint64
	srv, err := New(Config{
		Store: e.store, Registry: e.reg, Now: e.clock, Logger: slog.New(slog.DiscardHandler),
		ClusterStatus: func() any { return map[string]string{"nodeId": "n1"} },
		Ready:         ready.Load,
		Progress:      func() (uint64, uint64) { return applied.Load(), 7 },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	applied.Store(3)

	for _, req := range [][2]string{
		{"GET", "/usageplans"},
		{"GET", "/usageplans/" + planID},
		{"GET", "/apikeys"},
		{"GET", "/restapis"},
		{"POST", "/apikeys"},
	} {
		r := e.do(req[0], req[1], map[string]any{"name": "k"})
		wantError(t, r, 503, "ServiceUnavailableException", "This node has not caught up with the cluster*")
		if r.header.Get("Retry-After") != "1" {
			t.Errorf("%s %s: Retry-After %q", req[0], req[1], r.header.Get("Retry-After"))
		}
	}
	if n := len(e.store.Config().GetApiKeys()); n != 0 {
		t.Fatalf("a write went through while not caught up: %d keys", n)
	}
	r := e.do("GET", "/healthz", nil)
	h := r.json(t)
	if r.code != 503 || h["status"] != "catching up" || h["caughtUp"] != false || h["appliedIndex"] != 3.0 || h["targetIndex"] != 7.0 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("healthz while catching up: %d %s (Retry-After %q)", r.code, r.body, r.header.Get("Retry-After"))
	}
	e.must("GET", "/cluster", nil, 200)
	if r := e.do("GET", "/metrics", nil); r.code != 200 {
		t.Fatalf("metrics while catching up: %d", r.code)
	}

	applied.Store(7)
	ready.Store(true)
	h = e.must("GET", "/healthz", nil, 200)
	if h["status"] != "ok" || h["caughtUp"] != true || h["appliedIndex"] != 7.0 || h["targetIndex"] != 7.0 {
		t.Fatalf("healthz once caught up: %v", h)
	}
	items, _ := e.must("GET", "/usageplans", nil, 200)["item"].([]any)
	if len(items) != 1 {
		t.Fatalf("plans once caught up: %v", items)
	}
}
