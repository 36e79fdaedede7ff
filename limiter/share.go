package limiter

import "math"

// Shares normalises weights into shares that sum to 1 (within rounding).
// Negative and NaN weights count as 0. If any weight is +Inf, the +Inf
// weights split everything evenly. If every weight is 0, or weights is
// empty, shares are even (an empty input gives an empty result).
func Shares(weights []float64) []float64 {
	out := make([]float64, len(weights))
	if len(weights) == 0 {
		return out
	}
	var top float64
	inf := 0
	for _, w := range weights {
		switch {
		case math.IsInf(w, 1):
			inf++
		case w > top: // false for NaN
			top = w
		}
	}
	if inf > 0 {
		for i, w := range weights {
			if math.IsInf(w, 1) {
				out[i] = 1 / float64(inf)
			}
		}
		return out
	}
	if top == 0 {
		for i := range out {
			out[i] = 1 / float64(len(out))
		}
		return out
	}
	// Scale by the largest weight first so the sum cannot overflow.
	var sum float64
	for i, w := range weights {
		if w > 0 {
			out[i] = w / top
			sum += out[i]
		}
	}
	for i := range out {
		out[i] /= sum
	}
	return out
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
