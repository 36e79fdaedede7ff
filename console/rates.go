package console

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The data plane's counters the overview's rates come from.
const (
	metricRequests  = "tollgate_proxy_requests_total"
	metricThrottled = "tollgate_proxy_throttled_total"
	metricQuota     = "tollgate_proxy_quota_exceeded_total"
)

// rateWindow is how far back the overview's chart reaches.
const rateWindow = time.Hour

// ratePoint is the data plane's answers per second over one sample
// interval, ending at At.
type ratePoint struct {
	At       time.Time
	Admitted float64
	Refused  float64
}

// counts are the cumulative counters at one sample.
type counts struct {
	at      time.Time
	total   float64
	refused float64
}

// rates keeps the last hour of request rates in a ring.
type rates struct {
	gatherer prometheus.Gatherer
	every    time.Duration

	mu    sync.Mutex
	last  *counts
	ring  []ratePoint // oldest first once full: next is the oldest
	next  int
	limit int
}

func newRates(g prometheus.Gatherer, every time.Duration) *rates {
	n := int(rateWindow / every)
	n = max(1, min(n, 3600))
	return &rates{gatherer: g, every: every, limit: n}
}

// sample reads the counters and records the rate since the last sample.
// A counter that went down (the registry started again) starts afresh.
func (r *rates) sample(now time.Time) {
	cur, ok := r.read(now)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.last
	r.last = &cur
	if prev == nil || !cur.at.After(prev.at) || cur.total < prev.total || cur.refused < prev.refused {
		return
	}
	dt := cur.at.Sub(prev.at).Seconds()
	refused := cur.refused - prev.refused
	admitted := max(0, cur.total-prev.total-refused)
	p := ratePoint{At: cur.at, Admitted: admitted / dt, Refused: refused / dt}
	if len(r.ring) < r.limit {
		r.ring = append(r.ring, p)
		return
	}
	r.ring[r.next] = p
	r.next = (r.next + 1) % r.limit
}

// read sums the counters; ok is false when the registry cannot be read.
func (r *rates) read(now time.Time) (counts, bool) {
	fams, err := r.gatherer.Gather()
	if err != nil && len(fams) == 0 {
		return counts{}, false
	}
	c := counts{at: now}
	for _, f := range fams {
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		switch f.GetName() {
		case metricRequests:
			c.total += sum
		case metricThrottled, metricQuota:
			c.refused += sum
		}
	}
	return c, true
}

// points returns the samples of the hour before now, oldest first.
func (r *rates) points(now time.Time) []ratePoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ratePoint, 0, len(r.ring))
	for i := range r.ring {
		p := r.ring[(r.next+i)%len(r.ring)]
		if now.Sub(p.At) <= rateWindow && !p.At.After(now) {
			out = append(out, p)
		}
	}
	return out
}
