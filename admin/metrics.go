package admin

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the admin API's Prometheus metrics.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	applyErrors prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_admin_requests_total",
			Help: "Admin API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_admin_request_duration_seconds",
			Help:    "Time to answer admin API requests, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_admin_apply_errors_total",
			Help: "Admin changes the cluster could not apply (answered 503).",
		}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	m.duration, err = register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	m.applyErrors, err = register(reg, m.applyErrors)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, or returns the collector already registered
// under the same name (two servers may share a registry).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
