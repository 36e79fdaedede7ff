package limiter

import (
	"math"
	"time"
)

// DefaultGrantMax is the cap GrantSize applies when GrantInput.Max <= 0.
const DefaultGrantMax int64 = 10000

// DefaultDemandHalfLife is the half-life a DemandMeter uses when its
// HalfLife is not positive.
const DefaultDemandHalfLife = 2 * time.Second

// GrantInput is what a node knows when it sizes a quota grant request.
type GrantInput struct {
	DemandPerSec float64       // this node's recent admitted rate for the key
	Horizon      time.Duration // how far ahead a grant should last (e.g. 2s)
	Remaining    int64         // limit - used - Σ granted, as last seen (may be stale); -1 if unknown
	LiveNodes    int           // nodes that may ask for grants; values < 1 count as 1
	Max          int64         // hard cap per grant; <= 0 means DefaultGrantMax
}

// GrantSize returns how many units to ask the ledger for: enough for
// DemandPerSec over Horizon (rounded up), capped by Remaining/(2*LiveNodes)
// when Remaining is known (>= 0) so that near exhaustion no node holds more
// than a fair half of what is left, capped by Max, and at least 1.
//
// The answer is a request: the ledger grants at most what remains, and a
// grant of 0 means the quota is exhausted. A negative or NaN demand counts
// as none.
func GrantSize(in GrantInput) int64 {
	hi := in.Max
	if hi <= 0 {
		hi = DefaultGrantMax
	}
	if in.Remaining >= 0 {
		nodes := int64(max(in.LiveNodes, 1))
		hi = min(hi, in.Remaining/(2*nodes))
	}
	want := in.DemandPerSec * in.Horizon.Seconds()
	n := int64(1)
	switch {
	case want >= float64(hi):
		n = hi
	case want > 1: // false for NaN
		n = int64(math.Ceil(want))
	}
	return max(n, 1)
}

// LowWatermark returns the level at which a node holding a grant of
// grantSize units asks for the next one: half the grant, rounded up, and at
// least 1, so the refill round trip overlaps the spending of the other half.
func LowWatermark(grantSize int64) int64 {
	return max(grantSize-grantSize/2, 1)
}

// DemandMeter is an exponentially weighted moving average of events per
// second, fed by its owner. Each Observe weighs the interval since the
// previous one by 1 - 2^(-interval/HalfLife), so the estimate does not
// depend on how regularly it is fed.
//
// The zero value is ready to use with DefaultDemandHalfLife. A DemandMeter
// is not safe for concurrent use: one owner feeds it and reads it. It never
// reads the clock and starts no goroutine.
type DemandMeter struct {
	HalfLife time.Duration // weight halves every HalfLife; <= 0 means DefaultDemandHalfLife

	rate    float64
	last    time.Time
	pending int64 // events observed at or before last, not yet in rate
	started bool  // last is set
	primed  bool  // rate holds at least one interval
}

// Observe records count events that happened since the previous Observe,
// at time now. The first call starts the clock: its count is carried into
// the first interval. Calls with a now that is not after the previous one
// only add their count to the next interval. To let the rate decay when
// nothing happens, feed Observe(0, now) on a regular tick.
func (m *DemandMeter) Observe(count int64, now time.Time) {
	m.pending += max(count, 0)
	if !m.started {
		m.last, m.started = now, true
		return
	}
	dt := now.Sub(m.last)
	if dt <= 0 {
		return
	}
	inst := float64(m.pending) / dt.Seconds()
	m.last, m.pending = now, 0
	if !m.primed {
		m.rate, m.primed = inst, true
		return
	}
	hl := m.HalfLife
	if hl <= 0 {
		hl = DefaultDemandHalfLife
	}
	w := -math.Expm1(-math.Ln2 * float64(dt) / float64(hl)) // 1 - 2^(-dt/hl)
	m.rate += w * (inst - m.rate)
}

// Rate returns the estimated events per second as of the last Observe; 0
// until two calls have framed an interval.
func (m *DemandMeter) Rate() float64 { return m.rate }
