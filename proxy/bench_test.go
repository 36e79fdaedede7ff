package proxy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/limiter"
	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// benchLedger hands out counters that always allow, on one atomic each.
type benchLedger struct{}

func (benchLedger) Counter(planID, keyID string) QuotaCounter { return &benchCounter{} }

type benchCounter struct{ n atomic.Int64 }

func (c *benchCounter) Take(ctx context.Context, now time.Time) limiter.QuotaDecision {
	n := c.n.Add(1)
	return limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: 1 << 40, Remaining: 1<<40 - n, ResetAt: now.Add(time.Hour)}
}

func (c *benchCounter) Count(now time.Time)      { c.n.Add(1) }
func (c *benchCounter) Attempt()                 { c.n.Add(1) }
func (c *benchCounter) Share() (float64, uint64) { return 1, 1 }

const benchKeys = 1000

func benchKey(i int) string { return fmt.Sprintf("benchKeyValue%09d", i) }

// benchConfig: 1000 keys in plan p1 (throttle, quota, a per-method
// override) covering api1/prod (stage method settings); keyless api1/open.
func benchConfig(upstream string) *tollgatepb.Config {
	cfg := baseConfig(upstream)
	cfg.Account = &tollgatepb.Account{Throttle: throttle(1e9, 1<<30)}
	cfg.Stages["api1/prod"].MethodSettings = map[string]*tollgatepb.MethodSetting{
		"*/*":       {ThrottlingRateLimit: f64(1e9), ThrottlingBurstLimit: i32(1 << 30)},
		"/pets/GET": {ThrottlingRateLimit: f64(1e9), ThrottlingBurstLimit: i32(1 << 30)},
	}
	p := cfg.UsagePlans["p1"]
	p.Throttle = throttle(1e9, 1<<30)
	p.Quota = &tollgatepb.QuotaSettings{Limit: 1 << 40, Period: "DAY"}
	p.ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/GET": throttle(1e9, 1<<30)}
	for i := range benchKeys {
		id := fmt.Sprintf("bk%d", i)
		cfg.ApiKeys[id] = &tollgatepb.ApiKey{Id: id, Value: benchKey(i), Enabled: true}
		cfg.PlanKeys["p1"].Keys[id] = uint64(i)
	}
	return cfg
}

func newBenchProxy(b *testing.B, upstream string) *Proxy {
	b.Helper()
	src := &fakeSource{}
	src.Set(benchConfig(upstream))
	p, err := New(Config{Source: src, Ledger: benchLedger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// BenchmarkDecide measures the decision path without forwarding: table
// lookup, path check, route, key, four throttle levels and a quota Take.
func BenchmarkDecide(b *testing.B) {
	p := newBenchProxy(b, "http://upstream.invalid")
	cases := []struct {
		name, target, key string
	}{
		{"keyed", "/api1/prod/pets", benchKey(7)},
		{"keyed-host-form", "/prod/pets", benchKey(7)},
		{"keyless", "/api1/open/pets", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.target, nil)
		r.Host = "gw.example.com"
		if c.name == "keyed-host-form" {
			r.Host = "api1.example.com"
		}
		if c.key != "" {
			r.Header.Set("X-Api-Key", c.key)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ex := &exchange{}
			for b.Loop() {
				*ex = exchange{}
				ex.now = p.clock.Now()
				ex.mono = int64(ex.now.Sub(p.epoch))
				if a := p.decide(ex, p.current(), r); a != nil {
					b.Fatalf("answer %d: %s", a.status, ex.reason)
				}
			}
		})
	}
	b.Run("keyed-parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			r := httptest.NewRequest("GET", "/api1/prod/pets", nil)
			r.Header.Set("X-Api-Key", benchKey(int(next.Add(1))%benchKeys))
			ex := &exchange{}
			for pb.Next() {
				*ex = exchange{}
				ex.now = p.clock.Now()
				ex.mono = int64(ex.now.Sub(p.epoch))
				if a := p.decide(ex, p.current(), r); a != nil {
					b.Errorf("answer %d: %s", a.status, ex.reason)
					return
				}
			}
		})
	})
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkProxyForward measures a whole keyed request through the proxy to
// an httptest upstream over loopback, keep-alive.
func BenchmarkProxyForward(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	p := newBenchProxy(b, up.URL)
	run := func(pb interface{ Next() bool }, key string) error {
		r := httptest.NewRequest("GET", "/api1/prod/pets?x=1", nil)
		r.Header.Set("X-Api-Key", key)
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			w.code = 0
			p.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				return fmt.Errorf("status %d", w.code)
			}
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		if err := run(loop{b}, benchKey(1)); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			if err := run(pb, benchKey(int(next.Add(1))%benchKeys)); err != nil {
				b.Error(err)
			}
		})
	})
}

type loop struct{ b *testing.B }

func (l loop) Next() bool { return l.b.Loop() }

// manyKeysProxy returns a proxy over benchConfig with n sealed keys more in
// plan p1, as `tollgate bench` imports them, and its source.
func manyKeysProxy(b *testing.B, n int) (*Proxy, *changeSource, *sealing.Keys) {
	b.Helper()
	keys, err := sealing.Derive(sealing.NewDataKey())
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig("http://upstream.invalid")
	for i := range n {
		id := fmt.Sprintf("mk%07d", i)
		s := keys.SealAPIKey(id, fmt.Sprintf("manyKeyValue%012d", i))
		cfg.ApiKeys[id] = &tollgatepb.ApiKey{Id: id, ValueLookup: s.ValueLookup, ValueSealed: s.ValueSealed, Enabled: true}
		cfg.PlanKeys["p1"].Keys[id] = uint64(i)
	}
	src := &changeSource{}
	src.Set(cfg)
	p, err := New(Config{Source: src, Ledger: benchLedger{}, Keys: func() (*sealing.Keys, error) { return keys, nil }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p, src, keys
}

// BenchmarkBuildManyKeys prints what building the table costs as keys
// grow, and the heap the table holds per key.
func BenchmarkBuildManyKeys(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			p, src, _ := manyKeysProxy(b, n)
			var before, after runtime.MemStats
			for b.Loop() {
				old := p.current()
				runtime.GC()
				runtime.ReadMemStats(&before)
				t := p.build(src.Config(), old)
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(t)
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/key")
		})
	}
}

// BenchmarkOneKeyChangeManyKeys prints what one key added to the plan
// costs the table as keys grow (the source names the key, as the FSM
// does): an update, and now and then a build.
func BenchmarkOneKeyChangeManyKeys(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			p, src, keys := manyKeysProxy(b, n)
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("nk%07d", i)
				s := keys.SealAPIKey(id, fmt.Sprintf("newKeyValue%013d", i))
				b.StopTimer() // the maps' copies stand for the FSM's work, not the table's
				cfg := shallowCopy(src.Config())
				cfg.ApiKeys = maps.Clone(cfg.ApiKeys)
				cfg.PlanKeys = map[string]*tollgatepb.PlanKeys{"p1": {Keys: maps.Clone(cfg.PlanKeys["p1"].Keys)}}
				cfg.ApiKeys[id] = &tollgatepb.ApiKey{Id: id, ValueLookup: s.ValueLookup, ValueSealed: s.ValueSealed, Enabled: true}
				cfg.PlanKeys["p1"].Keys[id] = 1
				b.StartTimer()
				src.publish(cfg, true, id)
				p.current()
			}
		})
	}
}

// shallowCopy copies a Config's top level.
func shallowCopy(c *tollgatepb.Config) *tollgatepb.Config {
	return &tollgatepb.Config{RestApis: c.RestApis, Stages: c.Stages, Deployments: c.Deployments,
		UsagePlans: c.UsagePlans, ApiKeys: c.ApiKeys, PlanKeys: c.PlanKeys, Account: c.Account,
		DeploymentResources: c.DeploymentResources}
}
