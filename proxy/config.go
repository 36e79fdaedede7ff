package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/limiter"
	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// ConfigSource gives the current configuration. The value returned is
// immutable: the proxy never mutates it. The pointer changes on every
// configuration change, and the proxy rebuilds its routing table when it
// sees a new one. A nil configuration serves nothing (every request is
// refused with 403).
type ConfigSource interface {
	Config() *tollgatepb.Config
}

// KeyChanges is what a ConfigSource may also tell: which keys changed
// between two configurations it gave, from older to newer, when nothing
// else did (ok). A key may be listed more than once.
type KeyChanges interface {
	KeyChanges(from, to *tollgatepb.Config) (keys []string, ok bool)
}

// Ledger hands out the quota counter of one key in one plan. Counters are
// long-lived and cached by the implementation: the same pointer for the
// same (plan, key). The proxy asks for a counter when it first sees a key in
// a plan that covers a stage, and keeps it while the key stays in the plan.
type Ledger interface {
	Counter(planID, keyID string) QuotaCounter
}

// QuotaCounter meters one key in one plan on this node.
type QuotaCounter interface {
	// Take spends one unit of the key's quota. It waits (bounded by ctx)
	// only when this node holds no unit yet. The proxy starts the wait bound
	// (Config.QuotaWait) when Take first calls ctx.Done or ctx.Deadline, so
	// a Take that does not wait costs no timer.
	Take(ctx context.Context, now time.Time) limiter.QuotaDecision
	// Count records one admitted request of a plan without a quota (usage
	// only).
	Count(now time.Time)
}

// Clock tells the time. The proxy reads it once per request: the time
// stamps quota decisions, and its distance from the proxy's start, in
// nanoseconds, drives the token buckets. A fake clock therefore drives both.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

// Defaults of Config.
const (
	DefaultUpstreamTimeout = 29 * time.Second
	DefaultMaxBodyBytes    = 10 << 20
	DefaultQuotaWait       = 2 * time.Second

	// DefaultAccountRate and DefaultAccountBurst are the account throttle
	// used when the configuration sets none (the original's defaults).
	DefaultAccountRate  = 10000
	DefaultAccountBurst = 5000
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("proxy: invalid config")

// Config configures a Proxy. The zero value of every optional field means
// its default.
type Config struct {
	// Source gives the current configuration. Required.
	Source ConfigSource
	// Ledger meters keys in plans. Required.
	Ledger Ledger
	// Clock tells the time. Default: the system clock (time.Now, whose
	// monotonic reading drives the buckets).
	Clock Clock
	// Transport carries requests to upstreams. Default: newTransport's,
	// its dials checked by Upstreams. The proxy closes the idle connections
	// of its default transport on Close, never those of one given here.
	// A transport given here dials as it likes: only stage urls with an IP
	// address are checked against Upstreams.
	Transport http.RoundTripper
	// Upstreams says which upstream addresses may be reached. Default:
	// everything but link-local and cloud metadata addresses.
	Upstreams UpstreamPolicy
	// UpstreamTimeout is the longest the proxy waits, after it starts to
	// forward a request, for the upstream's response headers (connecting
	// and sending the request body included); then it answers 504. The
	// response body is streamed without a bound. Default 29s, the original's
	// longest integration timeout.
	UpstreamTimeout time.Duration
	// MaxBodyBytes is the largest request body forwarded; a larger one is
	// refused with 413 (up front when Content-Length says so, otherwise as
	// soon as the limit is crossed). Default 10 MiB.
	MaxBodyBytes int64
	// QuotaWait bounds the wait for a first quota grant when this node
	// holds no unit of a key's quota; then the proxy answers 503. Default 2s.
	QuotaWait time.Duration
	// AllowUnderscoreHeaders lets requests with header names containing "_"
	// through. Default false: such a request is refused with 400, because
	// upstreams that map "_" and "-" to the same name could be handed a
	// header ("X_Api_Key") the proxy did not check or strip.
	AllowUnderscoreHeaders bool
	// Logger receives the proxy's log lines; 403 reasons at debug level
	// (key id or the last four characters of an unknown key, never a key).
	// Default: discard.
	Logger *slog.Logger
	// Metrics, when set, receives the proxy's collectors (see doc.go).
	// Default: no metrics.
	Metrics prometheus.Registerer
	// Shares gives this node's share of every cluster-wide throttle: the
	// account's, the stages' method settings, each key's plan throttle
	// and each key's per-method overrides, each divided between the nodes
	// by its own demand. Default: every share whole, a cluster of one.
	Shares Shares
	// MaxConcurrent caps the requests this proxy serves at once (forwarded
	// or answered); beyond it a request is answered 503 with Retry-After 1
	// at once. Default 0: no cap.
	MaxConcurrent int64
	// Keys gives the keys of the cluster's data key: a caller's x-api-key
	// is found by its lookup hash under them (package sealing), the only
	// form in which the configuration holds sealed values. An error other
	// than sealing.ErrNoDataKey (this node cannot unwrap the data key)
	// makes an unknown key answer 503 with Retry-After rather than 403;
	// the proxy asks again until the keys come. Keys written before values
	// were sealed are found by their plain value under keys of the proxy's
	// own. It is read when the configuration changes. Default: no data key
	// (plain values only).
	Keys func() (*sealing.Keys, error)
	// NodeID names this node to upstreams in the X-Tollgate-Node header of
	// every forwarded request. Default "": no such header.
	NodeID string
	// Ready tells whether this node's state is current enough to serve
	// (a node that restarted has applied its log again). While it says
	// no, every request is answered 503 with Retry-After. It must be cheap
	// (it is read on every request). Default: always ready.
	Ready func() bool
}

// Validate reports the first problem of c, wrapping ErrInvalidConfig.
// Zero optional fields are valid (they mean their defaults).
func (c *Config) Validate() error {
	switch {
	case c.Source == nil:
		return fmt.Errorf("%w: Source is required", ErrInvalidConfig)
	case c.Ledger == nil:
		return fmt.Errorf("%w: Ledger is required", ErrInvalidConfig)
	case c.UpstreamTimeout < 0:
		return fmt.Errorf("%w: UpstreamTimeout %v is negative", ErrInvalidConfig, c.UpstreamTimeout)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("%w: MaxBodyBytes %d is negative", ErrInvalidConfig, c.MaxBodyBytes)
	case c.QuotaWait < 0:
		return fmt.Errorf("%w: QuotaWait %v is negative", ErrInvalidConfig, c.QuotaWait)
	case c.MaxConcurrent < 0:
		return fmt.Errorf("%w: MaxConcurrent %d is negative", ErrInvalidConfig, c.MaxConcurrent)
	}
	return nil
}

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = ClockFunc(time.Now)
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.QuotaWait == 0 {
		c.QuotaWait = DefaultQuotaWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// newTransport returns the transport a Proxy uses by default, its dials
// checked by control: keep-alives with up to 256 idle connections per
// upstream host, a 10s dial timeout, a 10s TLS handshake timeout and a 30s
// response header timeout (a backstop behind Config.UpstreamTimeout). It
// ignores the HTTP_PROXY family of environment variables: upstreams are
// reached directly.
func newTransport(control func(network, address string, c syscall.RawConn) error) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}
