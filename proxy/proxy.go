package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// Proxy is the data plane: an http.Handler that routes each request to a
// stage, checks its API key, throttles and meters it, and forwards it to
// the stage's upstream (see doc.go). It is safe for concurrent use.
type Proxy struct {
	src             ConfigSource
	ledger          Ledger
	clock           Clock
	epoch           time.Time // bucket time is measured from here
	transport       http.RoundTripper
	ownTransport    *http.Transport // the default transport, closed by Close
	upstreamTimeout time.Duration
	quotaWait       time.Duration
	maxBody         int64
	allowUnderscore bool
	upstreams       UpstreamPolicy
	nodeID          string
	log             *slog.Logger
	metrics         *metrics // nil without Config.Metrics
	rp              *httputil.ReverseProxy

	shares Shares
	ready  func() bool
	keys   func() (*sealing.Keys, error) // nil: no data key
	// ownKeys hash plain values (written before values were sealed)
	// while the cluster's keys are not known.
	ownKeys *sealing.Keys

	// Requests being served, when maxConcurrent > 0: one word every
	// request adds to, on a cache line of its own.
	maxConcurrent int64
	_             [56]byte
	inflight      atomic.Int64
	_             [56]byte

	table   atomic.Pointer[table]
	mu      sync.Mutex // held by the one goroutine rebuilding the table
	stateMu sync.Mutex // held while a key's state is made on its first request, and while a table carries states
	// states holds the state of every key that has one, by plan id and
	// key id (under stateMu): what the next table carries.
	states map[string]map[string]*keyState
}

// New returns a Proxy configured by cfg, after cfg.Validate. It builds the
// routing table of the configuration Source has now.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Proxy{
		src:             cfg.Source,
		ledger:          cfg.Ledger,
		clock:           cfg.Clock,
		transport:       cfg.Transport,
		upstreamTimeout: cfg.UpstreamTimeout,
		quotaWait:       cfg.QuotaWait,
		maxBody:         cfg.MaxBodyBytes,
		allowUnderscore: cfg.AllowUnderscoreHeaders,
		log:             cfg.Logger,
		shares:          cfg.Shares,
		ready:           cfg.Ready,
		keys:            cfg.Keys,
		maxConcurrent:   cfg.MaxConcurrent,
		upstreams:       cfg.Upstreams,
		nodeID:          cfg.NodeID,
	}
	if p.shares == nil {
		p.shares = &wholeShares{}
	}
	own, err := sealing.Derive(sealing.NewDataKey())
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.ownKeys = own
	p.epoch = p.clock.Now()
	if p.transport == nil {
		p.ownTransport = newTransport(p.upstreams.control)
		p.transport = p.ownTransport
	}
	if cfg.Metrics != nil {
		m, err := newMetrics(cfg.Metrics)
		if err != nil {
			return nil, fmt.Errorf("proxy: register metrics: %w", err)
		}
		p.metrics = m
	}
	p.rp = p.newReverseProxy()
	p.current()
	return p, nil
}

// Close closes the idle upstream connections of the proxy's default
// transport. The proxy keeps working after Close (it opens new ones).
func (p *Proxy) Close() error {
	if p.ownTransport != nil {
		p.ownTransport.CloseIdleConnections()
	}
	return nil
}

// current returns the routing table of the configuration Source has now,
// building it first when the configuration changed.
func (p *Proxy) current() *table {
	cfg := p.src.Config()
	t := p.table.Load()
	if t != nil && t.cfg == cfg && (t.keysErr == nil || !p.keysCame()) {
		return t
	}
	// The configuration changed: wait for the new table (one request
	// builds it, the others wait for it), so no request is decided on a
	// configuration older than what this node has applied. This costs only
	// at a change; in steady state the pointer comparison above is all.
	p.mu.Lock()
	defer p.mu.Unlock()
	if t = p.table.Load(); t != nil && t.cfg == cfg && t.keysErr == nil {
		return t
	}
	nt := p.next(cfg, t)
	p.table.Store(nt)
	return nt
}

// next returns the table of cfg after old: old updated for the keys that
// changed when only keys did, and the source says which, while the keys
// changed since old was built stay few; a new build otherwise.
func (p *Proxy) next(cfg *tollgatepb.Config, old *table) *table {
	src, ok := p.src.(KeyChanges)
	if !ok || old == nil || old.cfg == nil || cfg == nil || old.keysErr != nil {
		return p.build(cfg, old)
	}
	ids, ok := src.KeyChanges(old.cfg, cfg)
	if !ok || len(old.over)+len(ids) > maxOver(len(old.keys)) {
		return p.build(cfg, old)
	}
	if lookup, sealed, err := p.lookupKeys(); err != nil || lookup != old.lookup || sealed != old.sealed {
		return p.build(cfg, old)
	}
	return p.update(cfg, old, ids)
}

// maxOver is the most keys a table built with n keys takes changed before
// it is built again: a build costs about as much as copying n/64 changed
// keys forward on each of n/64 changes.
func maxOver(n int) int { return 4096 + n/64 }

// lookupKeys returns the keys values are looked up under: the cluster's,
// or the proxy's own (plain values only) with why the cluster's cannot be
// had (nil while the cluster has no data key).
func (p *Proxy) lookupKeys() (keys *sealing.Keys, sealed bool, err error) {
	if p.keys == nil {
		return p.ownKeys, false, nil
	}
	k, err := p.keys()
	switch {
	case err == nil:
		return k, true, nil
	case errors.Is(err, sealing.ErrNoDataKey):
		return p.ownKeys, false, nil
	}
	return p.ownKeys, false, err
}

// keysCame tells whether the cluster's keys, missing when the table was
// built, can be had now (the key-encryption key file was read again).
func (p *Proxy) keysCame() bool {
	_, sealed, _ := p.lookupKeys()
	return sealed
}

// ServeHTTP serves one data-plane request.
// refuse gives the request the proxy's own answer a (a refusal), logged
// under a new request id.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, ex *exchange, a *answer) {
	id := newRequestID()
	p.logAnswer(r, ex, a, id)
	ex.reply(w, a, id)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{}
	ex.now = p.clock.Now()
	ex.mono = int64(ex.now.Sub(p.epoch))
	defer p.record(ex)
	if p.maxConcurrent > 0 {
		n := p.inflight.Add(1)
		defer p.inflight.Add(-1)
		if n > p.maxConcurrent {
			ex.reason = "the node serves as many requests as it may (--max-requests)"
			ex.retry = time.Second
			p.refuse(w, r, ex, &ansOverloaded)
			return
		}
	}
	if p.ready != nil && !p.ready() {
		// A stale state would refuse valid keys: ask the client to retry.
		ex.reason = "this node has not caught up with the cluster since it started"
		ex.retry = time.Second
		p.refuse(w, r, ex, &ansUnavailable)
		return
	}
	if a := p.decide(ex, p.current(), r); a != nil {
		p.refuse(w, r, ex, a)
		return
	}
	p.forward(w, r, ex)
}

// record counts an answered request in the metrics.
func (p *Proxy) record(ex *exchange) {
	if p.metrics == nil || ex.status == 0 {
		return
	}
	s := p.metrics.unrouted
	if ex.stage != nil && ex.stage.stats != nil {
		s = ex.stage.stats
	}
	s.request(ex.status)
	switch {
	case ex.status == http.StatusTooManyRequests && ex.quotaShown:
		s.quota.Inc()
	case ex.status == http.StatusTooManyRequests:
		s.throttled[ex.level].Inc()
	}
}

// logAnswer logs why the proxy answered a request itself: refusals at
// debug level, its own failures above. Keys appear as their id, or the last
// four characters of an unknown value; never whole.
func (p *Proxy) logAnswer(r *http.Request, ex *exchange, a *answer, id string) {
	level := slog.LevelDebug
	switch a {
	case &ansInternal:
		level = slog.LevelError
	case &ansUnavailable:
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := append(logAttrsStage(ex.stage),
		slog.Int("status", a.status),
		slog.String("reason", ex.reason),
		slog.String("request_id", id),
		slog.String("method", r.Method),
	)
	if ex.key != nil {
		attrs = append(attrs, slog.String("key_id", ex.key.id))
	}
	if ex.bind != nil {
		attrs = append(attrs, slog.String("plan", ex.bind.plan.id))
	}
	if a == &ansThrottled {
		attrs = append(attrs, slog.String("level", levelNames[ex.level]))
	}
	if ex.retry > 0 {
		attrs = append(attrs, slog.Duration("retry_after", ex.retry))
	}
	p.log.LogAttrs(ctx, level, "request answered by the proxy", attrs...)
}
