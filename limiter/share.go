package limiter

import (
	"math"
	"sync/atomic"
)

// ShareFloor is the weight every node holding a share gets on top of its
// demand, as a fraction of the mean demand: a node that sees no traffic for
// a throttle now still admits some when traffic moves to it.
const ShareFloor = 0.05

// ShareHysteresis is the relative increase below which a node keeps the
// share it holds instead of taking a larger one.
const ShareHysteresis = 0.01

// ShareNode is one node's part of one cluster-wide throttle, as the node
// dividing the throttle sees it.
type ShareNode struct {
	// Demand is the node's recent offered rate (requests per second,
	// refused ones included). Negative and NaN count as 0.
	Demand float64
	// Held is the largest share the node may be using now: the share it
	// last said it holds, or the last share sent to it if that is larger
	// (it may have arrived). In [0, 1].
	Held float64
}

// ShareTarget is node i's share of a throttle divided by demand:
// (dᵢ + f) / (Σd + n·f) with f = ShareFloor·Σd/n, so the targets of the n
// nodes sum to 1 and a node without demand gets a floor. With no demand
// anywhere the targets are even.
func ShareTarget(nodes []ShareNode, i int) float64 {
	n := float64(len(nodes))
	total := 0.0
	for _, s := range nodes {
		total += demand(s)
	}
	if !(total > 0) || math.IsInf(total, 1) {
		return 1 / n
	}
	floor := ShareFloor * total / n
	return (demand(nodes[i]) + floor) / (total + n*floor)
}

func demand(s ShareNode) float64 {
	if !(s.Demand > 0) || math.IsInf(s.Demand, 1) {
		return 0
	}
	return s.Demand
}

// Shares sets out[i] to the share to send node i next, and returns out
// (which must have len(nodes) elements). A node may apply its new share at
// any moment after it is sent, or never, so until it says otherwise it may
// be using either: the result keeps Σ max(Held, out) ≤ 1 whenever Σ Held ≤
// 1. A decrease is sent at once; an increase only takes what is free
// beyond the shares held (1 − Σ Held), split in proportion to what each
// node lacks, so a share moves from one node to another in two exchanges:
// the giver's decrease first, the taker's increase once the giver said it
// holds less. complete says that every node that may hold a share is in
// nodes and its Held is known; when it is false nothing is free and no share
// grows. A node short of its target by less than ShareHysteresis of it
// keeps what it holds (decreases are always sent), so once the nodes hold
// what they were sent, each holds between (1 − ShareHysteresis) times its
// target and its target.
func Shares(nodes []ShareNode, complete bool, out []float64) []float64 {
	held, lack := 0.0, 0.0
	for i, s := range nodes {
		h := clampShare(s.Held)
		held += h
		t := ShareTarget(nodes, i)
		if t > h && t-h <= ShareHysteresis*t {
			t = h
		}
		out[i] = t
		if t > h {
			lack += t - h
		}
	}
	free := 0.0
	if complete {
		free = max(1-held, 0)
	}
	scale := 1.0
	if lack > free {
		scale = free / lack
	}
	for i, s := range nodes {
		if h := clampShare(s.Held); out[i] > h {
			out[i] = h + (out[i]-h)*scale
		}
	}
	return out
}

func clampShare(s float64) float64 {
	if !(s > 0) {
		return 0
	}
	return min(s, 1)
}

// ShareLimit returns a node's part of a cluster-wide throttle (rate, burst)
// for a share in [0, 1] (values outside are clamped, NaN counts as 0).
// The rate part is rate*share. The burst part is burst*share rounded up,
// and at least 1 when burst > 0 and share > 0, so that every node with a
// share can admit a request; the burst parts of all nodes may therefore add
// up to a little more than burst (at most one per node).
func ShareLimit(rate float64, burst int64, share float64) (float64, int64) {
	if !(share > 0) {
		return 0, 0
	}
	share = min(share, 1)
	r := 0.0
	if rate > 0 {
		r = rate * share
	}
	if burst <= 0 {
		return r, 0
	}
	v := float64(burst) * share
	b := math.Ceil(v)
	// Do not round 3.0000000000000004 (1/3 of 9) up to 4.
	if near := math.Round(v); math.Abs(v-near) <= 1e-9*math.Max(1, v) {
		b = near
	}
	return r, min(max(int64(b), 1), burst)
}

// Share is a node's share of one cluster-wide throttle, as the request
// path reads it: one atomic word holding the share and a version that
// changes whenever the share is stored, and a count of the requests that
// met the throttle (its offered demand here). The zero value is cold: no
// share was ever stored, and a decision must not use it.
type Share struct {
	packed   atomic.Uint64
	attempts atomic.Int64
}

// shareCold marks a packed share that holds no answer yet.
const shareCold = 1 << 31

// Load returns the packed share: compare it with an earlier Load to see a
// change, and read it with UnpackShare.
func (s *Share) Load() uint64 { return s.packed.Load() }

// UnpackShare returns the share of a packed value (0 when cold) and whether
// it is cold.
func UnpackShare(p uint64) (share float64, cold bool) {
	if p>>32&shareCold != 0 || p == 0 {
		return 0, true
	}
	return float64(uint32(p)) / 1e9, false
}

// ShareHolds tells whether a packed share lets a bucket admit anything:
// answered (not cold) and above zero.
func ShareHolds(p uint64) bool {
	sh, cold := UnpackShare(p)
	return !cold && sh > 0
}

// Store sets the share (clamped to [0, 1]) and bumps the version.
func (s *Share) Store(share float64) {
	v := uint32(min(max(share, 0), 1) * 1e9)
	for {
		old := s.packed.Load()
		ver := (uint32(old>>32)&(shareCold-1) + 1) & (shareCold - 1)
		if ver == 0 {
			ver = 1
		}
		if s.packed.CompareAndSwap(old, uint64(ver)<<32|uint64(v)) {
			return
		}
	}
}

// Chill makes the share cold again (nothing held), bumping the version.
func (s *Share) Chill() {
	for {
		old := s.packed.Load()
		ver := (uint32(old>>32)&(shareCold-1) + 1) & (shareCold - 1)
		if s.packed.CompareAndSwap(old, uint64(ver|shareCold)<<32) {
			return
		}
	}
}

// Held returns the share in force: 0 when cold.
func (s *Share) Held() float64 {
	sh, _ := UnpackShare(s.Load())
	return sh
}

// Attempt counts one request that met the throttle, refused or not.
func (s *Share) Attempt() { s.attempts.Add(1) }

// Attempts returns the requests counted so far.
func (s *Share) Attempts() int64 { return s.attempts.Load() }
