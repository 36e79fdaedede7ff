package limiter

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
)

const sec = int64(1e9)

// t0 is an arbitrary clock value, like a monotonic reading in a process.
const t0 = int64(1_700_000_000) * sec

// drain takes tokens at now until Allow denies and returns how many it took.
func drain(t *testing.T, b *Bucket, now int64, limit int) int {
	t.Helper()
	for n := 0; n <= limit; n++ {
		if ok, _ := b.Allow(now); !ok {
			return n
		}
	}
	t.Fatalf("bucket admitted more than %d at one instant", limit)
	return 0
}

func TestNewBucketAdmitsBurstThenDenies(t *testing.T) {
	cases := []struct {
		name  string
		rate  float64
		burst int64
	}{
		{"one", 1, 1},
		{"ten per second", 10, 10},
		{"slow big burst", 0.5, 100},
		{"fast small burst", 1e6, 3},
		{"fraction interval", 3, 7},
		{"max rate", 1e9, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, now := range []int64{0, t0, -t0, math.MaxInt64 / 4} {
				b := NewBucket(c.rate, c.burst)
				if got := b.Tokens(now); got != c.burst {
					t.Fatalf("now=%d: new bucket Tokens = %d, want %d", now, got, c.burst)
				}
				if got := drain(t, b, now, int(c.burst)+1); got != int(c.burst) {
					t.Fatalf("now=%d: admitted %d at one instant, want %d", now, got, c.burst)
				}
				if got := b.Tokens(now); got != 0 {
					t.Fatalf("now=%d: Tokens after drain = %d, want 0", now, got)
				}
			}
		})
	}
}

func TestRefillAndRetryAfter(t *testing.T) {
	b := NewBucket(10, 3) // one token every 100ms
	const T = sec / 10
	now := t0
	if n := drain(t, b, now, 10); n != 3 {
		t.Fatalf("drained %d, want 3", n)
	}
	ok, retry := b.Allow(now)
	if ok || retry != T {
		t.Fatalf("Allow on empty = %v, %d; want false, %d", ok, retry, T)
	}
	ok, retry = b.Allow(now + T/4)
	if ok || retry != T-T/4 {
		t.Fatalf("Allow a quarter in = %v, %d; want false, %d", ok, retry, T-T/4)
	}
	ok, retry = b.Allow(now + T - 1)
	if ok || retry != 1 {
		t.Fatalf("Allow 1ns early = %v, %d; want false, 1", ok, retry)
	}
	if ok, _ = b.Allow(now + T); !ok {
		t.Fatal("Allow after one interval denied")
	}
	if ok, retry = b.Allow(now + T); ok || retry != T {
		t.Fatalf("second Allow after one interval = %v, %d; want false, %d", ok, retry, T)
	}
	// Long idle: full again, and not beyond burst.
	later := now + 10*sec
	if got := b.Tokens(later); got != 3 {
		t.Fatalf("Tokens after idle = %d, want 3", got)
	}
	if got := drain(t, b, later, 10); got != 3 {
		t.Fatalf("admitted %d after idle, want 3", got)
	}
}

func TestRetryAfterIsTimeToOneToken(t *testing.T) {
	cases := []struct {
		rate  float64
		burst int64
		want  int64
	}{
		{1, 1, sec},
		{2, 5, sec / 2},
		{1e9, 1, 1},
		{0.5, 2, 2 * sec},
		{1e-6, 1, 1e15},
		{3, 1, 333_333_333},
		{1.5, 1, 666_666_667}, // interval rounded to the nearest ns
		{6e8, 1, 2},
	}
	for _, c := range cases {
		b := NewBucket(c.rate, c.burst)
		drain(t, b, t0, int(c.burst))
		ok, retry := b.Allow(t0)
		if ok || retry != c.want {
			t.Errorf("rate %g burst %d: Allow on empty = %v, %d; want false, %d", c.rate, c.burst, ok, retry, c.want)
			continue
		}
		if ok, _ := b.Allow(t0 + retry); !ok {
			t.Errorf("rate %g burst %d: denied at now+retryAfter", c.rate, c.burst)
		}
	}
}

func TestTokensAndResetAfter(t *testing.T) {
	b := NewBucket(4, 8) // 250ms per token, 2s to fill
	const T = sec / 4
	if got := b.ResetAfter(t0); got != 0 {
		t.Fatalf("ResetAfter on a full bucket = %d, want 0", got)
	}
	for range 5 {
		b.Allow(t0)
	}
	if got := b.Tokens(t0); got != 3 {
		t.Fatalf("Tokens = %d, want 3", got)
	}
	if got := b.ResetAfter(t0); got != 5*T {
		t.Fatalf("ResetAfter = %d, want %d", got, 5*T)
	}
	if got := b.Tokens(t0 + T - 1); got != 3 {
		t.Fatalf("Tokens 1ns before a refill = %d, want 3", got)
	}
	if got := b.Tokens(t0 + T); got != 4 {
		t.Fatalf("Tokens at a refill = %d, want 4", got)
	}
	if got := b.ResetAfter(t0 + 2*T); got != 3*T {
		t.Fatalf("ResetAfter later = %d, want %d", got, 3*T)
	}
	if got := b.Tokens(t0 + 5*T); got != 8 {
		t.Fatalf("Tokens when full = %d, want 8", got)
	}
	if got := b.ResetAfter(t0 + 100*T); got != 0 {
		t.Fatalf("ResetAfter long after = %d, want 0", got)
	}
}

func TestRefund(t *testing.T) {
	b := NewBucket(1, 2)
	if ok, _ := b.Allow(t0); !ok {
		t.Fatal("first Allow denied")
	}
	b.Refund(t0)
	if got := b.Tokens(t0); got != 2 {
		t.Fatalf("Tokens after Allow+Refund = %d, want 2", got)
	}
	// Refund on a full bucket does not go beyond burst.
	b.Refund(t0)
	b.Refund(t0)
	if got := drain(t, b, t0, 5); got != 2 {
		t.Fatalf("admitted %d after refunds on a full bucket, want 2", got)
	}
	// Empty: a refund makes exactly one token available.
	b.Refund(t0)
	if got := drain(t, b, t0, 5); got != 1 {
		t.Fatalf("admitted %d after one refund on an empty bucket, want 1", got)
	}
	// Half way through a refill, a refund keeps the partial progress.
	b2 := NewBucket(1, 2)
	drain(t, b2, t0, 5)
	b2.Refund(t0 + sec/2)
	if got := b2.Tokens(t0 + sec/2); got != 1 {
		t.Fatalf("Tokens after refund mid-refill = %d, want 1", got)
	}
	if got := b2.ResetAfter(t0 + sec/2); got != sec/2 {
		t.Fatalf("ResetAfter after refund mid-refill = %d, want %d", got, sec/2)
	}
}

func TestDenyAll(t *testing.T) {
	cases := []struct {
		rate  float64
		burst int64
	}{
		{0, 10}, {-1, 10}, {math.NaN(), 10}, {10, 0}, {10, -5}, {0, 0}, {math.Inf(-1), 1},
	}
	for _, c := range cases {
		b := NewBucket(c.rate, c.burst)
		for _, now := range []int64{0, t0, t0 + 100*sec} {
			ok, retry := b.Allow(now)
			if ok || retry != DenyRetryAfter {
				t.Errorf("rate %g burst %d: Allow = %v, %d; want false, %d", c.rate, c.burst, ok, retry, DenyRetryAfter)
			}
			if got := b.Tokens(now); got != 0 {
				t.Errorf("rate %g burst %d: Tokens = %d, want 0", c.rate, c.burst, got)
			}
			if got := b.ResetAfter(now); got != DenyRetryAfter {
				t.Errorf("rate %g burst %d: ResetAfter = %d, want %d", c.rate, c.burst, got, DenyRetryAfter)
			}
			b.Refund(now)
		}
		r, bu := b.Limit()
		if bu != c.burst || !(r == c.rate || (math.IsNaN(r) && math.IsNaN(c.rate))) {
			t.Errorf("Limit = %g, %d; want %g, %d", r, bu, c.rate, c.burst)
		}
	}
}

func TestSetLimit(t *testing.T) {
	const T = sec / 10 // rate 10
	cases := []struct {
		name       string
		rate       float64
		burst      int64
		take       int // tokens taken before the change, at t0
		newRate    float64
		newBurst   int64
		at         int64 // when the change is applied, after t0
		wantTokens int64 // right after the change
		wantReset  int64 // right after the change
	}{
		{"burst up keeps tokens full", 10, 10, 0, 10, 100, 0, 10, 90 * T},
		{"burst up keeps tokens drained", 10, 10, 10, 10, 100, 0, 0, 100 * T},
		{"burst up partly drained", 10, 10, 4, 10, 20, 0, 6, 14 * T},
		{"burst down caps", 10, 10, 2, 10, 5, 0, 5, 0},
		{"burst down keeps fewer", 10, 10, 8, 10, 5, 0, 2, 3 * T},
		{"rate down keeps tokens", 10, 10, 5, 1, 10, 0, 5, 5 * sec},
		{"rate up keeps tokens", 10, 10, 5, 100, 10, 0, 5, 5 * sec / 100},
		{"refill under old limit until applied", 10, 10, 10, 10, 100, 3 * T, 3, 97 * T},
		{"fraction kept", 10, 10, 10, 1, 10, T / 2, 0, 10*sec - sec/2},
		{"idle full stays at old burst", 10, 10, 10, 10, 1000, 1000 * sec, 10, 990 * T},
		{"from deny starts empty", 0, 10, 0, 10, 10, 0, 0, 10 * T},
		{"to deny", 10, 10, 0, 0, 10, 0, 0, DenyRetryAfter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBucket(c.rate, c.burst)
			for range c.take {
				if ok, _ := b.Allow(t0); !ok {
					t.Fatal("Allow denied while taking")
				}
			}
			b.SetLimit(c.newRate, c.newBurst)
			if r, bu := b.Limit(); r != c.newRate || bu != c.newBurst {
				t.Fatalf("Limit = %g, %d; want %g, %d", r, bu, c.newRate, c.newBurst)
			}
			now := t0 + c.at
			if got := b.Tokens(now); got != c.wantTokens {
				t.Errorf("Tokens = %d, want %d", got, c.wantTokens)
			}
			if got := b.ResetAfter(now); got != c.wantReset {
				t.Errorf("ResetAfter = %d, want %d", got, c.wantReset)
			}
			if c.newRate > 0 {
				if got := drain(t, b, now, int(c.newBurst)); int64(got) != c.wantTokens {
					t.Errorf("admitted %d after the change, want %d", got, c.wantTokens)
				}
			}
			if r, bu := b.Limit(); r != c.newRate || bu != c.newBurst {
				t.Fatalf("Limit after use = %g, %d; want %g, %d", r, bu, c.newRate, c.newBurst)
			}
		})
	}
}

func TestSetLimitTwiceBeforeUse(t *testing.T) {
	b := NewBucket(10, 10)
	drain(t, b, t0, 10)
	b.SetLimit(1000, 1000) // never applied on its own
	b.SetLimit(10, 20)
	if got := b.Tokens(t0); got != 0 {
		t.Fatalf("Tokens = %d, want 0", got)
	}
	if got := b.ResetAfter(t0); got != 2*sec {
		t.Fatalf("ResetAfter = %d, want %d", got, 2*sec)
	}
	// Back to deny and back again: empty.
	b.SetLimit(0, 0)
	if ok, retry := b.Allow(t0 + 5*sec); ok || retry != DenyRetryAfter {
		t.Fatalf("Allow while denying = %v, %d", ok, retry)
	}
	b.SetLimit(10, 20)
	if got := b.Tokens(t0 + 6*sec); got != 0 {
		t.Fatalf("Tokens after re-enabling = %d, want 0", got)
	}
}

func TestHugeAndTinyRates(t *testing.T) {
	t.Run("max burst at max rate", func(t *testing.T) {
		b := NewBucket(1e9, math.MaxInt32)
		if got := b.Tokens(t0); got != math.MaxInt32 {
			t.Fatalf("Tokens = %d, want %d", got, math.MaxInt32)
		}
		for range 1000 {
			b.Allow(t0)
		}
		if got := b.Tokens(t0); got != math.MaxInt32-1000 {
			t.Fatalf("Tokens = %d, want %d", got, math.MaxInt32-1000)
		}
		if got := b.ResetAfter(t0); got != 1000 {
			t.Fatalf("ResetAfter = %d, want 1000", got)
		}
	})
	t.Run("above max rate is max rate", func(t *testing.T) {
		for _, r := range []float64{2e9, 1e18, math.Inf(1), math.MaxFloat64} {
			b := NewBucket(r, 2)
			drain(t, b, t0, 2)
			if ok, retry := b.Allow(t0); ok || retry != 1 {
				t.Fatalf("rate %g: Allow on empty = %v, %d; want false, 1", r, ok, retry)
			}
			if ok, _ := b.Allow(t0 + 1); !ok {
				t.Fatalf("rate %g: denied 1ns later", r)
			}
		}
	})
	t.Run("tiny rate", func(t *testing.T) {
		b := NewBucket(0.000001, math.MaxInt32) // 1e15 ns per token: span capped
		want := MaxSpan / 1e15
		if got := b.Tokens(t0); got != want {
			t.Fatalf("Tokens = %d, want %d (capped by MaxSpan)", got, want)
		}
		b.Allow(t0)
		if got := b.Tokens(t0); got != want-1 {
			t.Fatalf("Tokens after one = %d, want %d", got, want-1)
		}
		if got := b.ResetAfter(t0); got != 1e15 {
			t.Fatalf("ResetAfter = %d, want 1e15", got)
		}
	})
	t.Run("rate 0.001 burst 2e9 does not overflow", func(t *testing.T) {
		b := NewBucket(0.001, 2e9)
		want := MaxSpan / 1e12
		if got := b.Tokens(t0); got != want {
			t.Fatalf("Tokens = %d, want %d", got, want)
		}
		if ok, _ := b.Allow(t0); !ok {
			t.Fatal("first Allow denied")
		}
		if got := b.ResetAfter(t0); got != 1e12 {
			t.Fatalf("ResetAfter = %d, want 1e12", got)
		}
		if r, bu := b.Limit(); r != 0.001 || bu != 2e9 {
			t.Fatalf("Limit = %g, %d", r, bu)
		}
	})
	t.Run("rate below one per span", func(t *testing.T) {
		b := NewBucket(1e-300, 5)
		if ok, _ := b.Allow(t0); !ok {
			t.Fatal("first Allow denied")
		}
		if ok, retry := b.Allow(t0); ok || retry != MaxSpan {
			t.Fatalf("second Allow = %v, %d; want false, %d", ok, retry, MaxSpan)
		}
	})
	t.Run("extreme clock values saturate", func(t *testing.T) {
		for _, now := range []int64{math.MaxInt64, math.MaxInt64 - 1, math.MinInt64 + 1} {
			b := NewBucket(1, 3)
			got := drain(t, b, now, 10)
			if got > 3 { // fail closed: never more than burst
				t.Fatalf("now=%d: admitted %d", now, got)
			}
			if ok, retry := b.Allow(now); ok || retry <= 0 {
				t.Fatalf("now=%d: Allow on empty = %v, %d", now, ok, retry)
			}
			if r := b.ResetAfter(now); r < 0 {
				t.Fatalf("now=%d: ResetAfter = %d", now, r)
			}
		}
	})
}

func TestClockGoingBackwards(t *testing.T) {
	b := NewBucket(1, 2)
	drain(t, b, t0, 5)
	// A caller with an older reading must not be admitted earlier.
	if ok, retry := b.Allow(t0 - sec); ok || retry != 2*sec {
		t.Fatalf("Allow with an older now = %v, %d; want false, %d", ok, retry, 2*sec)
	}
}

func TestConcurrentAllowAdmitsExactlyBurst(t *testing.T) {
	const burst = 1000
	const workers = 32
	b := NewBucket(1, burst)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 2 * burst / workers * 2 {
				if ok, _ := b.Allow(t0); ok {
					admitted.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != burst {
		t.Fatalf("admitted %d across %d goroutines, want %d", got, workers, burst)
	}
}

func TestConcurrentSetLimitAndAllow(t *testing.T) {
	b := NewBucket(1, 100)
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if ok, _ := b.Allow(t0); ok {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 100 {
			b.SetLimit(1, int64(100+i))
		}
	}()
	wg.Wait()
	// Raising the burst never refills, so at one instant at most the
	// initial 100 can be admitted.
	if got := admitted.Load(); got > 100 || got < 1 {
		t.Fatalf("admitted %d, want 1..100", got)
	}
	if r, bu := b.Limit(); r != 1 || bu != 199 {
		t.Fatalf("Limit = %g, %d; want 1, 199", r, bu)
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	b := NewBucket(1e6, 100)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now += 500
		b.Allow(now)
		b.Tokens(now)
		b.ResetAfter(now)
		b.Refund(now)
	})
	if allocs != 0 {
		t.Fatalf("allocations per decision = %v, want 0", allocs)
	}
}

func TestSaturatingArithmetic(t *testing.T) {
	cases := []struct{ a, b, add, sub int64 }{
		{1, 2, 3, -1},
		{math.MaxInt64, 1, math.MaxInt64, math.MaxInt64 - 1},
		{math.MinInt64, -1, math.MinInt64, math.MinInt64 + 1},
		{math.MinInt64, 1, math.MinInt64 + 1, math.MinInt64},
		{0, math.MinInt64, math.MinInt64, math.MaxInt64},
		{-1, math.MinInt64, math.MinInt64, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, 0},
	}
	for _, c := range cases {
		if got := satAdd(c.a, c.b); got != c.add {
			t.Errorf("satAdd(%d, %d) = %d, want %d", c.a, c.b, got, c.add)
		}
		if got := satSub(c.a, c.b); got != c.sub {
			t.Errorf("satSub(%d, %d) = %d, want %d", c.a, c.b, got, c.sub)
		}
	}
}
