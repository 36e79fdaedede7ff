package limiter

import (
	"math"
	"testing"
	"time"
)

func TestGrantSize(t *testing.T) {
	cases := []struct {
		name string
		in   GrantInput
		want int64
	}{
		{"demand times horizon", GrantInput{DemandPerSec: 100, Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 3, Max: 10000}, 200},
		{"rounded up", GrantInput{DemandPerSec: 2.1, Horizon: time.Second, Remaining: -1, LiveNodes: 1, Max: 10000}, 3},
		{"capped by max", GrantInput{DemandPerSec: 1e6, Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 1, Max: 10000}, 10000},
		{"max unset uses default", GrantInput{DemandPerSec: 1e6, Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 1}, DefaultGrantMax},
		{"capped near exhaustion", GrantInput{DemandPerSec: 100, Horizon: 2 * time.Second, Remaining: 600, LiveNodes: 3, Max: 10000}, 100},
		{"remaining cap rounds down", GrantInput{DemandPerSec: 100, Horizon: 2 * time.Second, Remaining: 5, LiveNodes: 2, Max: 10000}, 1},
		{"plenty remaining", GrantInput{DemandPerSec: 100, Horizon: 2 * time.Second, Remaining: 1e9, LiveNodes: 3, Max: 10000}, 200},
		{"nothing remaining still asks 1", GrantInput{DemandPerSec: 100, Horizon: 2 * time.Second, Remaining: 0, LiveNodes: 3, Max: 10000}, 1},
		{"no demand asks 1", GrantInput{DemandPerSec: 0, Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 3, Max: 10000}, 1},
		{"negative demand asks 1", GrantInput{DemandPerSec: -5, Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 3, Max: 10000}, 1},
		{"NaN demand asks 1", GrantInput{DemandPerSec: math.NaN(), Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 3, Max: 10000}, 1},
		{"infinite demand capped", GrantInput{DemandPerSec: math.Inf(1), Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 3, Max: 500}, 500},
		{"zero horizon asks 1", GrantInput{DemandPerSec: 100, Remaining: -1, LiveNodes: 3, Max: 10000}, 1},
		{"zero live nodes count as 1", GrantInput{DemandPerSec: 1000, Horizon: 2 * time.Second, Remaining: 100, LiveNodes: 0, Max: 10000}, 50},
		{"max 1", GrantInput{DemandPerSec: 1000, Horizon: 2 * time.Second, Remaining: -1, LiveNodes: 1, Max: 1}, 1},
	}
	for _, c := range cases {
		if got := GrantSize(c.in); got != c.want {
			t.Errorf("%s: GrantSize(%+v) = %d, want %d", c.name, c.in, got, c.want)
		}
	}
}

// Near exhaustion, repeated grants to competing nodes never take more than
// what remains and shrink towards 1.
func TestGrantSizeShrinksNearExhaustion(t *testing.T) {
	remaining := int64(1000)
	const nodes = 4
	var sizes []int64
	for remaining > 0 {
		n := GrantSize(GrantInput{DemandPerSec: 1e4, Horizon: 2 * time.Second, Remaining: remaining, LiveNodes: nodes, Max: 10000})
		if n > remaining && n != 1 {
			t.Fatalf("grant %d with %d remaining", n, remaining)
		}
		sizes = append(sizes, n)
		remaining -= min(n, remaining)
	}
	if sizes[0] != 125 || sizes[len(sizes)-1] != 1 {
		t.Fatalf("grant sizes %v: want 125 first and 1 last", sizes)
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > sizes[i-1] {
			t.Fatalf("grant sizes grew: %v", sizes)
		}
	}
}

func TestLowWatermark(t *testing.T) {
	cases := map[int64]int64{-3: 1, 0: 1, 1: 1, 2: 1, 3: 2, 10: 5, 11: 6, 10000: 5000}
	for g, want := range cases {
		if got := LowWatermark(g); got != want {
			t.Errorf("LowWatermark(%d) = %d, want %d", g, got, want)
		}
	}
}

func TestDemandMeter(t *testing.T) {
	base := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }

	var m DemandMeter // zero value: default half-life
	if m.Rate() != 0 {
		t.Fatalf("Rate of a new meter = %v", m.Rate())
	}
	m.Observe(50, at(0)) // starts the clock, carried over
	if m.Rate() != 0 {
		t.Fatalf("Rate after the first Observe = %v, want 0", m.Rate())
	}
	m.Observe(50, at(time.Second))
	if got := m.Rate(); got != 100 {
		t.Fatalf("first interval Rate = %v, want 100", got)
	}
	// Steady 100/s stays at 100.
	for i := 2; i <= 10; i++ {
		m.Observe(100, at(time.Duration(i)*time.Second))
	}
	if got := m.Rate(); math.Abs(got-100) > 1e-9 {
		t.Fatalf("steady Rate = %v, want 100", got)
	}
	// One half-life of silence halves the distance to 0.
	m.Observe(0, at(12*time.Second))
	if got := m.Rate(); math.Abs(got-50) > 1e-9 {
		t.Fatalf("Rate after a half-life of silence = %v, want 50", got)
	}
	// Same instant: counted into the next interval.
	m.Observe(30, at(12*time.Second))
	m.Observe(10, at(11*time.Second)) // clock going backwards: same
	if got := m.Rate(); math.Abs(got-50) > 1e-9 {
		t.Fatalf("Rate changed on a zero interval: %v", got)
	}
	m.Observe(0, at(14*time.Second)) // 40 events over 2s = 20/s, weight 1/2
	if got, want := m.Rate(), 50+0.5*(20-50.0); math.Abs(got-want) > 1e-9 {
		t.Fatalf("Rate = %v, want %v", got, want)
	}
	// Negative counts are ignored.
	m.Observe(-1000, at(16*time.Second))
	if got, want := m.Rate(), 35*0.5; math.Abs(got-want) > 1e-9 {
		t.Fatalf("Rate after a negative count = %v, want %v", got, want)
	}
}

func TestDemandMeterIndependentOfFeedingRate(t *testing.T) {
	base := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	fine := DemandMeter{HalfLife: time.Second}
	coarse := DemandMeter{HalfLife: time.Second}
	fine.Observe(0, base)
	coarse.Observe(0, base)
	fine.Observe(10, base.Add(100*time.Millisecond)) // primes both at 100/s
	coarse.Observe(10, base.Add(100*time.Millisecond))
	// Then 1000/s for one second: fed every 10ms, or once.
	for i := 1; i <= 100; i++ {
		fine.Observe(10, base.Add(100*time.Millisecond+time.Duration(i)*10*time.Millisecond))
	}
	coarse.Observe(1000, base.Add(1100*time.Millisecond))
	// Both move half way from 100 to 1000 after one half-life.
	if math.Abs(coarse.Rate()-550) > 1e-9 || math.Abs(fine.Rate()-550) > 1e-6 {
		t.Fatalf("fine %v, coarse %v; want 550", fine.Rate(), coarse.Rate())
	}
}
