package limiter

import (
	"math"
	"sync"
	"sync/atomic"
)

const (
	// DenyRetryAfter is the retry hint, in nanoseconds, of a bucket whose
	// rate or burst is not positive: such a bucket denies every request.
	DenyRetryAfter int64 = 1e9

	// MaxRate is the highest rate a bucket enforces. The emission interval
	// is a whole number of nanoseconds, so one token per nanosecond is the
	// finest it can express; higher rates (and +Inf) are treated as MaxRate.
	MaxRate = 1e9

	// MaxSpan is the longest time, in nanoseconds, a bucket takes to refill
	// from empty (about 146 years). burst/rate is capped to it so that no
	// sum of a clock value and a bucket span can overflow; a bucket whose
	// burst/rate is longer holds MaxSpan*rate tokens at most.
	MaxSpan int64 = math.MaxInt64 / 2
)

// Bucket is a token bucket enforced with GCRA on one atomic word: the
// theoretical arrival time (TAT) of the next request, in nanoseconds on the
// caller's clock. Decisions are lock-free and do not allocate.
//
// The zero value is unusable; use NewBucket. All methods are safe for
// concurrent use.
type Bucket struct {
	tat  atomic.Int64           // theoretical arrival time, ns
	lim  atomic.Pointer[limits] // limits TAT is expressed in
	next atomic.Pointer[limits] // limits set by SetLimit, not yet applied
	mu   sync.Mutex             // serialises SetLimit with settle
	_    [cacheLine - 32]byte   // keep hot words of different buckets apart
}

const cacheLine = 64

// limits is immutable once published.
type limits struct {
	rate     float64 // as configured
	burst    int64   // as configured
	interval int64   // emission interval T, ns, in [1, MaxSpan]
	tau      int64   // burst*T capped to MaxSpan: how far TAT may run ahead of now
	deny     bool    // rate <= 0, burst <= 0 or rate is NaN
}

func newLimits(rate float64, burst int64) *limits {
	l := &limits{rate: rate, burst: burst}
	if !(rate > 0) || burst <= 0 {
		l.deny = true
		return l
	}
	t := 1e9 / math.Min(rate, MaxRate)
	switch {
	case t >= float64(MaxSpan):
		l.interval = MaxSpan
	default:
		l.interval = max(int64(math.Round(t)), 1)
	}
	if burst > MaxSpan/l.interval {
		l.tau = MaxSpan
	} else {
		l.tau = burst * l.interval
	}
	return l
}

// capacity is the number of tokens a full bucket holds: burst, unless the
// span cap cuts it.
func (l *limits) capacity() int64 { return l.tau / l.interval }

// NewBucket returns a full bucket that refills ratePerSec tokens per second
// up to burst tokens. A rate <= 0 (or NaN) or a burst <= 0 gives a bucket
// that denies every request with a retry hint of DenyRetryAfter.
func NewBucket(ratePerSec float64, burst int64) *Bucket {
	b := &Bucket{}
	b.tat.Store(math.MinInt64) // at or before any now: full
	b.lim.Store(newLimits(ratePerSec, burst))
	return b
}

// SetLimit changes the rate and burst. It is safe concurrently with the
// other methods. The tokens the bucket holds are kept (capped to the new
// burst, with a part-refilled token kept as the same fraction) and refill at
// the new rate from then on: raising the burst does not refill the bucket.
//
// SetLimit has no clock, so the change is applied by the next call that
// passes a time (Allow, Refund, Tokens or ResetAfter); until then the bucket
// fills at the old limit. Decisions racing with that call may be taken under
// either limit. A bucket that was denying everything (or is switched to deny
// everything and back) holds no tokens when it is enabled: it starts empty
// and refills at the new rate.
func (b *Bucket) SetLimit(ratePerSec float64, burst int64) {
	l := newLimits(ratePerSec, burst)
	b.mu.Lock()
	b.next.Store(l)
	b.mu.Unlock()
}

// Limit returns the rate and burst last set.
func (b *Bucket) Limit() (ratePerSec float64, burst int64) {
	l := b.next.Load()
	if l == nil {
		l = b.lim.Load()
	}
	return l.rate, l.burst
}

// Allow takes one token at time now (nanoseconds on the caller's monotonic
// clock). When there is none it returns false and the nanoseconds until one
// will be available.
func (b *Bucket) Allow(now int64) (ok bool, retryAfterNanos int64) {
	if b.next.Load() != nil {
		b.settle(now)
	}
	for {
		l := b.lim.Load()
		if l.deny {
			return false, DenyRetryAfter
		}
		tat := b.tat.Load()
		base := max(tat, now)
		if base > math.MaxInt64-l.interval {
			return false, l.interval // end of the clock's range: fail closed
		}
		next := base + l.interval
		if ahead := satSub(next, now); ahead > l.tau {
			return false, ahead - l.tau
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// Refund gives back one token taken by Allow, for a request that a later
// check denied. It never fills the bucket beyond its burst.
func (b *Bucket) Refund(now int64) {
	if b.next.Load() != nil {
		b.settle(now)
	}
	for {
		l := b.lim.Load()
		if l.deny {
			return
		}
		tat := b.tat.Load()
		if tat <= now {
			return // full
		}
		back := max(satSub(tat, l.interval), now)
		if b.tat.CompareAndSwap(tat, back) {
			return
		}
	}
}

// Tokens returns the whole tokens available at now.
func (b *Bucket) Tokens(now int64) int64 {
	if b.next.Load() != nil {
		b.settle(now)
	}
	l := b.lim.Load()
	if l.deny {
		return 0
	}
	d := satSub(b.tat.Load(), now) // how far TAT runs ahead of now
	if d <= 0 {
		return l.capacity()
	}
	if d >= l.tau {
		return 0
	}
	return (l.tau - d) / l.interval
}

// ResetAfter returns the nanoseconds from now until the bucket is full
// again; 0 when it is full. A bucket that denies everything reports
// DenyRetryAfter.
func (b *Bucket) ResetAfter(now int64) int64 {
	if b.next.Load() != nil {
		b.settle(now)
	}
	if b.lim.Load().deny {
		return DenyRetryAfter
	}
	return max(satSub(b.tat.Load(), now), 0)
}

// settle applies the limits left by SetLimit, re-expressing TAT so that the
// bucket keeps the tokens it holds at now.
func (b *Bucket) settle(now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.next.Load()
	if n == nil {
		return // another caller settled it
	}
	o := b.lim.Load()
	b.lim.Store(n)
	for {
		tat := b.tat.Load()
		if b.tat.CompareAndSwap(tat, convert(tat, now, o, n)) {
			break
		}
	}
	b.next.Store(nil)
}

// convert returns the TAT under n that leaves, at now, the tokens TAT
// leaves under o, capped to n's capacity.
func convert(tat, now int64, o, n *limits) int64 {
	if n.deny {
		return tat // not read while denying; converted again on the way back
	}
	var k float64 // tokens held at now, fraction included
	if !o.deny {
		switch d := satSub(tat, now); {
		case d <= 0:
			k = float64(o.capacity())
		case d < o.tau:
			k = float64(o.tau-d) / float64(o.interval)
		}
	}
	debt := float64(n.tau) - k*float64(n.interval) // ns of refill missing
	if debt <= 0 {
		return min(tat, now) // full
	}
	return satAdd(now, min(int64(math.Ceil(debt)), n.tau))
}

// satAdd returns a+b, saturated to the int64 range.
func satAdd(a, b int64) int64 {
	s := a + b
	if (s > a) != (b > 0) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// satSub returns a-b, saturated to the int64 range.
func satSub(a, b int64) int64 {
	s := a - b
	if (s < a) != (b > 0) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return s
}

// DefaultBurst is the burst of a throttle given a rate and no burst (burst
// 0): one second of the rate, rounded up, at least 1 and at most
// math.MaxInt32. A rate of 0 keeps burst 0: such a throttle denies every
// request.
func DefaultBurst(rate float64, burst int64) int64 {
	if burst != 0 || !(rate > 0) {
		return burst
	}
	return int64(min(math.Ceil(rate), math.MaxInt32))
}
