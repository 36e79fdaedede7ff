package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Throttle levels, as labelled in metrics and logs.
const (
	levelAccount = iota
	levelStage
	levelPlan
	levelMethod
	numLevels
)

var levelNames = [numLevels]string{"account", "stage", "plan", "method"}

// metrics are the proxy's collectors. Handles are resolved once per stage
// (stageStats) so that recording a request takes no lock shared by all
// requests.
type metrics struct {
	requests      *prometheus.CounterVec
	throttled     *prometheus.CounterVec
	quotaExceeded *prometheus.CounterVec
	upstream      *prometheus.HistogramVec

	unrouted *stageStats // requests that matched no stage
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tollgate", Subsystem: "proxy", Name: "requests_total",
			Help: "Requests answered by the data plane, by API, stage and status code (forwarded or the proxy's own).",
		}, []string{"api", "stage", "code"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tollgate", Subsystem: "proxy", Name: "throttled_total",
			Help: "Requests refused with 429 Too Many Requests, by API, stage and the throttle level that refused them (account, stage, plan, method).",
		}, []string{"api", "stage", "level"}),
		quotaExceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tollgate", Subsystem: "proxy", Name: "quota_exceeded_total",
			Help: "Requests refused with 429 Limit Exceeded because the key's quota is used up, by API and stage.",
		}, []string{"api", "stage"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tollgate", Subsystem: "proxy", Name: "upstream_seconds",
			Help:    "Time from forwarding a request to the upstream's response headers (or its failure), by API and stage.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"api", "stage"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.throttled, m.quotaExceeded, m.upstream} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.unrouted = m.stage("", "")
	return m, nil
}

// stageStats are the metric handles of one stage.
type stageStats struct {
	m          *metrics
	api, stage string
	codes      [600]atomic.Pointer[counterRef] // by status code, resolved on first use
	throttled  [numLevels]prometheus.Counter
	quota      prometheus.Counter
	upstream   prometheus.Observer
}

type counterRef struct{ prometheus.Counter }

func (m *metrics) stage(api, stage string) *stageStats {
	s := &stageStats{m: m, api: api, stage: stage}
	for l, name := range levelNames {
		s.throttled[l] = m.throttled.WithLabelValues(api, stage, name)
	}
	s.quota = m.quotaExceeded.WithLabelValues(api, stage)
	s.upstream = m.upstream.WithLabelValues(api, stage)
	return s
}

func (s *stageStats) request(code int) {
	if code < 100 || code >= len(s.codes) {
		s.m.requests.WithLabelValues(s.api, s.stage, strconv.Itoa(code)).Inc()
		return
	}
	c := s.codes[code].Load()
	if c == nil {
		c = &counterRef{s.m.requests.WithLabelValues(s.api, s.stage, strconv.Itoa(code))}
		s.codes[code].Store(c)
	}
	c.Inc()
}

func (s *stageStats) observeUpstream(d time.Duration) {
	s.upstream.Observe(d.Seconds())
}
