package limiter

import (
	"math"
	"slices"
	"testing"
)

func TestShares(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name    string
		weights []float64
		want    []float64
	}{
		{"empty", nil, []float64{}},
		{"one", []float64{7}, []float64{1}},
		{"even", []float64{1, 1, 1, 1}, []float64{0.25, 0.25, 0.25, 0.25}},
		{"weighted", []float64{1, 3}, []float64{0.25, 0.75}},
		{"all zero is even", []float64{0, 0}, []float64{0.5, 0.5}},
		{"negative and NaN count as zero", []float64{-5, nan, 2, 2}, []float64{0, 0, 0.5, 0.5}},
		{"all negative is even", []float64{-1, -2, nan, 0}, []float64{0.25, 0.25, 0.25, 0.25}},
		{"huge weights do not overflow", []float64{math.MaxFloat64, math.MaxFloat64}, []float64{0.5, 0.5}},
		{"tiny weights", []float64{5e-324, 5e-324, 0}, []float64{0.5, 0.5, 0}},
		{"infinite takes all", []float64{inf, 3, inf}, []float64{0.5, 0, 0.5}},
	}
	for _, c := range cases {
		got := Shares(c.weights)
		if len(got) != len(c.want) {
			t.Errorf("%s: Shares(%v) = %v, want %v", c.name, c.weights, got, c.want)
			continue
		}
		sum := 0.0
		for i := range got {
			sum += got[i]
			if math.Abs(got[i]-c.want[i]) > 1e-12 {
				t.Errorf("%s: Shares(%v) = %v, want %v", c.name, c.weights, got, c.want)
				break
			}
		}
		if len(got) > 0 && math.Abs(sum-1) > 1e-12 {
			t.Errorf("%s: shares sum to %v", c.name, sum)
		}
	}
	w := []float64{3, 1}
	Shares(w)
	if !slices.Equal(w, []float64{3, 1}) {
		t.Errorf("Shares modified its input: %v", w)
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
			for _, s := range Shares(weights) {
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
