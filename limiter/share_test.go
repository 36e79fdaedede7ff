package limiter

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestShares(t *testing.T) {
	nan := math.NaN()
	busy := (100 + 0.05*100.0/3) / (100 + 0.05*100) // one node with all the demand among 3
	idle := (0.05 * 100.0 / 3) / (100 + 0.05*100)
	half := (50 + 5.0/3) / 105 // the target of each of two nodes sharing the demand, a third idle
	cases := []struct {
		name     string
		nodes    []ShareNode
		complete bool
		want     []float64
	}{
		{"empty", nil, true, []float64{}},
		{"alone takes all", []ShareNode{{Demand: 7}}, true, []float64{1}},
		{"no demand is even", []ShareNode{{}, {}, {}, {}}, true, []float64{0.25, 0.25, 0.25, 0.25}},
		{"negative and NaN demand count as none", []ShareNode{{Demand: -5}, {Demand: nan}}, true, []float64{0.5, 0.5}},
		{"from nothing, by demand with a floor", []ShareNode{{Demand: 100}, {}, {}}, true, []float64{busy, idle, idle}},
		{"80/10/10", []ShareNode{{Demand: 80}, {Demand: 10}, {Demand: 10}}, true,
			[]float64{(80 + 5.0/3) / 105, (10 + 5.0/3) / 105, (10 + 5.0/3) / 105}},
		{"a decrease goes at once, the increase waits for it", []ShareNode{{Demand: 100, Held: 1.0 / 3}, {Held: 1.0 / 3}, {Held: 1.0 / 3}}, true,
			[]float64{1.0 / 3, idle, idle}},
		{"the increase once the others hold less", []ShareNode{{Demand: 100, Held: 1.0 / 3}, {Held: idle}, {Held: idle}}, true,
			[]float64{busy, idle, idle}},
		{"what is free is split by what each lacks", []ShareNode{{Demand: 50, Held: 0.1}, {Demand: 50, Held: 0.3}, {Held: 0.4}}, true,
			[]float64{0.1 + 0.2*(half-0.1)/(2*half-0.4), 0.3 + 0.2*(half-0.3)/(2*half-0.4), 1.0 / 63}},
		{"incomplete: nothing grows", []ShareNode{{Demand: 100, Held: 0.2}, {Held: 0.5}}, false, []float64{0.2, idle2(100)}},
		{"a small increase is not sent, a small decrease is", []ShareNode{{Demand: 1, Held: 0.498}, {Demand: 1, Held: 0.496}}, true, []float64{0.498, 0.496}},
		{"a small decrease is sent", []ShareNode{{Demand: 1, Held: 0.502}, {Demand: 1, Held: 0.496}}, true, []float64{0.5, 0.496}},
		{"held above 1 in all frees nothing", []ShareNode{{Demand: 1, Held: 0.2}, {Held: 0.9}}, true, []float64{0.2, idle2(1)}},
	}
	for _, c := range cases {
		got := Shares(c.nodes, c.complete, make([]float64, len(c.nodes)))
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-9 {
				t.Errorf("%s: Shares(%v, %v) = %v, want %v", c.name, c.nodes, c.complete, got, c.want)
				break
			}
		}
	}
}

// idle2 is the share of a node without demand next to one with d.
func idle2(d float64) float64 {
	f := 0.05 * d / 2
	return f / (d + 2*f)
}

// Whatever the demand and the shares held, the shares sent keep the sum of
// what every node may be using at most 1, and reach the demand-weighted
// targets (summing to 1) once the nodes hold what they were sent.
func TestSharesNeverOverCommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		n := 1 + rng.IntN(6)
		nodes := make([]ShareNode, n)
		held := 0.0
		for i := range nodes {
			if rng.IntN(3) > 0 {
				nodes[i].Demand = rng.Float64() * 1000
			}
			nodes[i].Held = rng.Float64() * (1 - held)
			held += nodes[i].Held
		}
		complete := rng.IntN(4) > 0
		for step := range 4 {
			out := Shares(nodes, complete, make([]float64, n))
			sum := 0.0
			for i := range nodes {
				sum += math.Max(nodes[i].Held, out[i])
				if out[i] < 0 || out[i] > 1 {
					t.Fatalf("round %d step %d: share %v out of range", round, step, out[i])
				}
			}
			if sum > 1+1e-9 {
				t.Fatalf("round %d step %d: nodes %v, shares %v: may use %v in all", round, step, nodes, out, sum)
			}
			for i := range nodes {
				nodes[i].Held = out[i]
			}
		}
		if !complete {
			continue
		}
		sum := 0.0
		for i := range nodes {
			sum += nodes[i].Held
			if want := ShareTarget(nodes, i); nodes[i].Held > want+1e-9 || nodes[i].Held < want*(1-ShareHysteresis)-1e-9 {
				t.Fatalf("round %d: after 4 exchanges node %d holds %v, target %v", round, i, nodes[i].Held, want)
			}
		}
		if sum > 1+1e-9 || sum < 1-ShareHysteresis-1e-9 {
			t.Fatalf("round %d: shares settle at %v in all", round, sum)
		}
	}
}

func TestShareWord(t *testing.T) {
	var s Share
	if sh, cold := UnpackShare(s.Load()); !cold || sh != 0 {
		t.Fatalf("zero Share: %v, cold %v", sh, cold)
	}
	p0 := s.Load()
	s.Store(0.25)
	p1 := s.Load()
	if sh, cold := UnpackShare(p1); cold || sh != 0.25 || p1 == p0 {
		t.Fatalf("after Store(0.25): %v cold %v", sh, cold)
	}
	s.Store(0.25)
	if p2 := s.Load(); p2 == p1 {
		t.Fatalf("a store does not change the version")
	}
	s.Store(0)
	if sh, cold := UnpackShare(s.Load()); cold || sh != 0 {
		t.Fatalf("a share of 0 is an answer, not cold: %v %v", sh, cold)
	}
	p3 := s.Load()
	s.Chill()
	if sh, cold := UnpackShare(s.Load()); !cold || sh != 0 || s.Load() == p3 {
		t.Fatalf("after Chill: %v cold %v", sh, cold)
	}
	s.Store(2)
	if s.Held() != 1 {
		t.Fatalf("Store(2) holds %v", s.Held())
	}
	s.Attempt()
	s.Attempt()
	if s.Attempts() != 2 {
		t.Fatalf("attempts %d", s.Attempts())
	}
}

func TestShareLimit(t *testing.T) {
	cases := []struct {
		name      string
		rate      float64
		burst     int64
		share     float64
		wantRate  float64
		wantBurst int64
	}{
		{"whole", 100, 20, 1, 100, 20},
		{"half", 100, 20, 0.5, 50, 10},
		{"third rounds up", 100, 10, 1.0 / 3, 100.0 / 3, 4},
		{"third of 9 is exactly 3", 90, 9, 1.0 / 3, 30, 3},
		{"tenth of 10 is 1", 10, 10, 0.1, 1, 1},
		{"small share gets 1", 1000, 5, 0.01, 10, 1},
		{"zero share", 100, 20, 0, 0, 0},
		{"negative share", 100, 20, -0.5, 0, 0},
		{"NaN share", 100, 20, math.NaN(), 0, 0},
		{"share above 1 clamped", 100, 20, 1.5, 100, 20},
		{"zero burst", 100, 0, 0.5, 50, 0},
		{"zero rate", 0, 20, 0.5, 0, 10},
		{"negative rate", -3, 20, 0.5, 0, 10},
		{"max burst", 1e9, math.MaxInt32, 0.5, 5e8, 1 << 30},
	}
	for _, c := range cases {
		r, b := ShareLimit(c.rate, c.burst, c.share)
		if math.Abs(r-c.wantRate) > 1e-9 || b != c.wantBurst {
			t.Errorf("%s: ShareLimit(%v, %d, %v) = %v, %d; want %v, %d", c.name, c.rate, c.burst, c.share, r, b, c.wantRate, c.wantBurst)
		}
	}
}

func TestShareLimitIgnoresFloatNoise(t *testing.T) {
	tenth := 0.1
	share := tenth + 0.2 // 0.30000000000000004 at run time
	if _, b := ShareLimit(100, 10, share); b != 3 {
		t.Fatalf("ShareLimit(100, 10, %v) burst = %d, want 3", share, b)
	}
}

// Shares of a throttle add up to the throttle's rate, and to its burst plus
// at most one token per node.
func TestSharesOfAThrottle(t *testing.T) {
	for _, weights := range [][]float64{{1, 1, 1}, {5, 1, 0, 2}, {1, 1, 1, 1, 1, 1, 1}, {0.1, 0.2, 0.7}} {
		for _, burst := range []int64{1, 2, 7, 10, 100, 1001} {
			var rate float64
			var sumBurst int64
			nodes := make([]ShareNode, len(weights))
			for i, w := range weights {
				nodes[i].Demand = w
			}
			for _, s := range Shares(nodes, true, make([]float64, len(nodes))) {
				r, b := ShareLimit(100, burst, s)
				rate += r
				sumBurst += b
				if s > 0 && b < 1 {
					t.Fatalf("weights %v burst %d: node with share %v got burst %d", weights, burst, s, b)
				}
			}
			if math.Abs(rate-100) > 1e-9 {
				t.Errorf("weights %v: rates sum to %v, want 100", weights, rate)
			}
			if sumBurst < burst || sumBurst > burst+int64(len(weights)) {
				t.Errorf("weights %v burst %d: bursts sum to %d", weights, burst, sumBurst)
			}
		}
	}
}

func TestShareHolds(t *testing.T) {
	var s Share
	if ShareHolds(s.Load()) {
		t.Fatal("a cold share holds")
	}
	s.Store(0)
	if ShareHolds(s.Load()) {
		t.Fatal("a share of zero holds")
	}
	s.Store(0.25)
	if !ShareHolds(s.Load()) {
		t.Fatal("a share of 0.25 does not hold")
	}
}
