package proxy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
)

// changeSource is a fakeSource that tells which keys each configuration
// changed, as the cluster's FSM does (KeyChanges).
type changeSource struct {
	fakeSource
	mu  sync.Mutex
	log []srcChange
}

type srcChange struct {
	from, to *tollgatepb.Config
	keys     []string
	only     bool
}

// publish makes cfg current; keys are the keys it changed, only whether
// it changed nothing else.
func (s *changeSource) publish(cfg *tollgatepb.Config, only bool, keys ...string) {
	s.mu.Lock()
	s.log = append(s.log, srcChange{from: s.Config(), to: cfg, keys: keys, only: only})
	s.mu.Unlock()
	s.Set(cfg)
}

func (s *changeSource) KeyChanges(from, to *tollgatepb.Config) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	at := to
	for i := len(s.log) - 1; i >= 0 && at != from; i-- {
		c := s.log[i]
		if c.to != at || !c.only {
			return nil, false
		}
		keys = append(keys, c.keys...)
		at = c.from
	}
	return keys, at == from
}

// TestUpdateMatchesBuild: a table updated for the keys a change names
// finds every key as a table built from scratch does (absent, or with the
// same id, enabled flag and plan on each stage), over random sequences of
// keys created, deleted, enabled, disabled, attached and detached, with
// now and then a change to a plan (a full build).
func TestUpdateMatchesBuild(t *testing.T) {
	const universe = 40
	val := func(i int) string { return fmt.Sprintf("updateKeyValue%08d", i) }
	id := func(i int) string { return fmt.Sprintf("u%02d", i) }
	plans := []string{"p1", "p2", "p3"}
	updated := 0
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 42))
		cfg := baseConfig("http://upstream.invalid")
		cfg.UsagePlans["p3"] = &tollgatepb.UsagePlan{Id: "p3", Throttle: throttle(10, 10), ApiStages: []*tollgatepb.ApiStage{{ApiId: "api2", Stage: "prod"}}}
		cfg.PlanKeys["p3"] = &tollgatepb.PlanKeys{Keys: map[string]uint64{}}
		src := &changeSource{}
		src.Set(cfg)
		p, err := New(Config{Source: src, Ledger: &fakeLedger{}})
		if err != nil {
			t.Fatal(err)
		}
		fresh := &fakeSource{}
		fresh.Set(cfg)
		ref, err := New(Config{Source: fresh, Ledger: &fakeLedger{}})
		if err != nil {
			t.Fatal(err)
		}
		for step := range 300 {
			cfg = cloneConfig(cfg)
			i := rng.IntN(universe)
			k := cfg.ApiKeys[id(i)]
			only := true
			switch op := rng.IntN(6); {
			case op == 0 && k == nil:
				cfg.ApiKeys[id(i)] = &tollgatepb.ApiKey{Id: id(i), Value: val(i), Enabled: rng.IntN(4) > 0}
			case op == 0 || op == 1:
				delete(cfg.ApiKeys, id(i))
				for _, pk := range cfg.PlanKeys {
					delete(pk.Keys, id(i))
				}
			case op == 2 && k != nil:
				k.Enabled = !k.Enabled
			case op == 3 && k != nil:
				pk := cfg.PlanKeys[plans[rng.IntN(len(plans))]]
				if pk.Keys == nil {
					pk.Keys = map[string]uint64{}
				}
				pk.Keys[id(i)] = uint64(step + 1)
			case op == 4:
				delete(cfg.PlanKeys[plans[rng.IntN(len(plans))]].Keys, id(i))
			default:
				// A plan changes: the proxy builds anew.
				cfg.UsagePlans["p3"].Throttle = throttle(float64(1+rng.IntN(100)), 10)
				only = false
			}
			src.publish(cfg, only, id(i))
			fresh.Set(cfg)
			got, want := p.current(), ref.current()
			if got.over != nil {
				updated++
			}
			for j := range universe {
				// Each proxy hashes plain values under keys of its own.
				gs, _ := got.lookup.Lookup(val(j))
				ws, _ := want.lookup.Lookup(val(j))
				if g, w := describe(got.key(gs)), describe(want.key(ws)); g != w {
					t.Fatalf("seed %d step %d: key %s updated %s, built %s", seed, step, id(j), g, w)
				}
			}
		}
	}
	if updated < 100 {
		t.Fatalf("only %d tables were updates rather than builds", updated)
	}
}

// describe says what a table finds of a key: its id, enabled flag and the
// plan on each stage.
func describe(k *keyEntry) string {
	if k == nil {
		return "absent"
	}
	var bs []string
	for _, b := range k.bindings {
		bs = append(bs, b.stage.api+"/"+b.stage.name+"="+b.plan.id)
	}
	slices.Sort(bs)
	return fmt.Sprintf("%s enabled=%v %v", k.id, k.enabled, bs)
}

// TestUpdateCarriesKeyState: a key's state (its quota counter) survives a
// change to other keys, applied as an update; the key leaving its plan
// drops it, and coming back starts fresh.
func TestUpdateCarriesKeyState(t *testing.T) {
	src := &changeSource{}
	h := newHarness(t, nil, func(c *Config) {
		src.Set(c.Source.Config())
		c.Source = src
	})
	publish := func(edit func(*tollgatepb.Config), keys ...string) {
		t.Helper()
		cfg := cloneConfig(src.Config())
		edit(cfg)
		src.publish(cfg, true, keys...)
	}
	asked := func() int {
		h.ledger.mu.Lock()
		defer h.ledger.mu.Unlock()
		return h.ledger.asked
	}
	expectStatus(t, h, "/api1/prod/pets", valOne, 200)
	if asked() != 1 {
		t.Fatalf("%d counters asked for, want 1", asked())
	}
	publish(func(c *tollgatepb.Config) {
		c.ApiKeys["k5"] = &tollgatepb.ApiKey{Id: "k5", Value: "keyFiveValue0123456789", Enabled: true}
		c.PlanKeys["p1"].Keys["k5"] = 9
	}, "k5")
	expectStatus(t, h, "/api1/prod/pets", "keyFiveValue0123456789", 200)
	expectStatus(t, h, "/api1/prod/pets", valOne, 200)
	if h.p.current().over == nil {
		t.Fatal("the change was built, not applied as an update")
	}
	if asked() != 2 {
		t.Fatalf("%d counters asked for, want 2 (k1's carried, k5's new)", asked())
	}
	publish(func(c *tollgatepb.Config) { delete(c.PlanKeys["p1"].Keys, "k1") }, "k1")
	expectStatus(t, h, "/api1/prod/pets", valOne, 403)
	publish(func(c *tollgatepb.Config) { c.PlanKeys["p1"].Keys["k1"] = 10 }, "k1")
	expectStatus(t, h, "/api1/prod/pets", valOne, 200)
	if asked() != 3 {
		t.Fatalf("%d counters asked for, want 3 (k1 back in its plan starts fresh)", asked())
	}
	publish(func(c *tollgatepb.Config) { c.ApiKeys["k1"].Enabled = false }, "k1")
	expectStatus(t, h, "/api1/prod/pets", valOne, 403)
	publish(func(c *tollgatepb.Config) { delete(c.ApiKeys, "k5"); delete(c.PlanKeys["p1"].Keys, "k5") }, "k5")
	expectStatus(t, h, "/api1/prod/pets", "keyFiveValue0123456789", 403)
}

func expectStatus(t *testing.T, h *harness, target, key string, want int) {
	t.Helper()
	if w := h.do("GET", target, key); w.Code != want {
		t.Fatalf("GET %s: status %d (%s); want %d", target, w.Code, w.Body, want)
	}
}
