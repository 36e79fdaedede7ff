package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/limiter"
)

// exchange is the state of one request, from decision to answer. It is the
// context of the forwarded request too (see forward.go), so that Rewrite,
// ModifyResponse and ErrorHandler find it without another allocation.
type exchange struct {
	context.Context // set when forwarding: the request's context, cancelable

	now  time.Time
	mono int64 // bucket time: nanoseconds since the proxy's epoch

	stage  *stageEntry
	rest   string // escaped path to forward, "" or starting with "/"
	route  *route // the resource method, when the stage has resources
	params [maxRouteParams]span
	key    *keyEntry
	bind   *binding
	state  *keyState // bind's key state

	// What the limit headers show: the key's own bucket (the plan's
	// per-method override when one applies, else the plan throttle) and
	// the quota decision when there was one.
	keyBucket  *limiter.Bucket
	policy     string
	xLimit     string
	quota      limiter.QuotaDecision
	quotaShown bool

	taken  [numLevels]*limiter.Bucket // buckets Allow took a token from
	ntaken int

	retry   time.Duration // Retry-After of a 429 or 503
	level   int           // the throttle level that refused, for a 429 Too Many Requests
	reason  string        // why the proxy answered itself (log lines)
	status  int           // status code sent
	upgrade bool          // an allowed WebSocket upgrade

	// Forwarding.
	parent   context.Context // the inbound request's context
	cancel   context.CancelCauseFunc
	timer    *time.Timer
	fwdStart time.Time

	wait quotaWait
}

type exchangeKey struct{}

// Value returns the exchange itself for exchangeKey{}, so that it can be
// found under the contexts ReverseProxy wraps around it.
func (ex *exchange) Value(k any) any {
	if _, ok := k.(exchangeKey); ok {
		return ex
	}
	return ex.Context.Value(k)
}

// decide runs the checks of one request in order: path, route, body size,
// key, upstream, throttles, quota. It returns the answer the proxy makes
// itself, or nil to forward. It takes no lock shared by all requests and
// allocates nothing on the way to forwarding, except what the quota counter
// or a first use of a bucket do.
func (p *Proxy) decide(ex *exchange, t *table, r *http.Request) *answer {
	path, ok := cleanPath(r.URL.EscapedPath())
	if !ok {
		ex.reason = "path refused: dot segment, encoded slash or bad escape"
		return &ansBadRequest
	}
	if !p.allowUnderscore && underscoreHeader(r.Header) {
		ex.reason = "header name with an underscore"
		return &ansBadRequest
	}
	st, rest := t.route(r.Host, path)
	if st == nil {
		ex.reason = "no such API or stage"
		return &ansForbidden
	}
	ex.stage, ex.rest = st, rest
	keyRequired := !st.keyless
	if st.routes != nil {
		if ex.route = st.routes.find(rest, 0, r.Method, &ex.params, 0); ex.route == nil {
			ex.reason = "no resource and method match the request"
			return &ansMissingToken
		}
		keyRequired = ex.route.keyRequired
	}
	if r.ContentLength > p.maxBody {
		ex.reason = "body larger than the limit"
		return &ansTooLarge
	}
	if keyRequired {
		if a := p.checkKey(ex, t, r); a != nil {
			return a
		}
	}
	switch {
	case ex.route != nil && ex.route.target == nil:
		ex.reason = "method has no valid integration: " + ex.route.targetErr
		return &ansInternal
	case ex.route == nil && st.target == nil:
		ex.reason = "stage has no valid upstream url: " + st.targetErr
		return &ansInternal
	}
	if up := r.Header["Upgrade"]; len(up) > 0 {
		if a := checkUpgrade(ex, r, up); a != nil {
			return a
		}
	}
	if a := p.throttle(ex, t, r); a != nil {
		return a
	}
	if ex.bind != nil {
		return p.meter(ex, r)
	}
	return nil
}

// checkKey finds the caller's key and its plan on the stage.
func (p *Proxy) checkKey(ex *exchange, t *table, r *http.Request) *answer {
	vals := r.Header["X-Api-Key"]
	if len(vals) == 0 || vals[0] == "" {
		ex.reason = "no API key"
		return &ansForbidden
	}
	v := vals[0]
	for _, o := range vals[1:] {
		if o != v {
			ex.reason = "two different API keys"
			return &ansForbidden
		}
	}
	var k *keyEntry
	if sum, ok := t.lookup.Lookup(v); ok {
		k = t.keys[sum]
	}
	if k == nil && t.keysErr != nil {
		// The key may be one this node cannot see: say so, not 403.
		ex.reason = "API key not found, and this node cannot unwrap the cluster's data key"
		ex.retry = time.Second
		return &ansUnavailable
	}
	if k == nil {
		ex.reason = "unknown API key " + lastFour(v)
		return &ansForbidden
	}
	ex.key = k
	if !k.enabled {
		ex.reason = "API key is disabled"
		return &ansForbidden
	}
	b := k.plans[ex.stage]
	if b == nil {
		ex.reason = "API key is in no plan covering the stage"
		return &ansForbidden
	}
	ex.bind = b
	ex.state = p.keyState(b)
	ex.keyBucket, ex.policy, ex.xLimit = nil, b.plan.policy, b.plan.xLimit
	if ex.state.throttle != nil {
		ex.keyBucket = ex.state.throttle.bucket
	}
	return nil
}

// methodKeyBuf holds "{resourcePath}/{METHOD}" while looking it up.
const methodKeyBuf = 256

// throttle takes a token at each level: account, stage method setting, plan
// per key, plan per method, each from the node's share of the level's
// cluster-wide throttle. The first level that refuses answers 429 and the
// tokens already taken are refunded.
func (p *Proxy) throttle(ex *exchange, t *table, r *http.Request) *answer {
	st, b := ex.stage, ex.bind
	var stage *stageSetting
	var ovr *override
	if st.methods != nil || (b != nil && b.overrides != nil) {
		var buf [methodKeyBuf]byte
		var mk []byte
		if ex.route != nil {
			mk = methodKey(buf[:0], ex.route.resPath, ex.route.verb)
		} else {
			mk = methodKey(buf[:0], ex.rest, r.Method)
		}
		if st.methods != nil {
			stage = st.methods[string(mk)]
		}
		if b != nil && b.overrides != nil {
			ovr = b.overrides[string(mk)]
		}
	}
	if stage == nil {
		stage = st.anyMethod
	}
	var method *sharedBucket
	if ovr != nil {
		method = ex.state.method(ovr, p.shares)
		ex.keyBucket, ex.policy, ex.xLimit = method.bucket, ovr.policy, ovr.xLimit
	}
	if !ex.take(p, r, t.account, t.accountLimit, levelAccount) {
		return &ansThrottled
	}
	if stage != nil && !ex.take(p, r, stage.th, stage.lim, levelStage) {
		return &ansThrottled
	}
	if b != nil && ex.state.throttle != nil && !ex.take(p, r, ex.state.throttle, b.plan.lim, levelPlan) {
		return &ansThrottled
	}
	if method != nil && !ex.take(p, r, method, ovr.lim, levelMethod) {
		return &ansThrottled
	}
	return nil
}

// take takes a token from th's bucket, holding the node's share of lim;
// when it refuses, it refunds the tokens taken so far and records the level
// and retry hint.
func (ex *exchange) take(p *Proxy, r *http.Request, th *sharedBucket, lim *limit, level int) bool {
	if !th.ready(p, ex, r, lim) {
		ex.refund()
		ex.level, ex.retry = level, time.Second
		ex.reason = "throttled: no share of the cluster-wide throttle yet"
		return false
	}
	ok, retry := th.bucket.Allow(ex.mono)
	if ok {
		ex.taken[ex.ntaken] = th.bucket
		ex.ntaken++
		return true
	}
	ex.refund()
	ex.level, ex.retry = level, time.Duration(retry)
	ex.reason = "throttled"
	return false
}

// refund gives back every token taken for this request.
func (ex *exchange) refund() {
	for i := range ex.ntaken {
		ex.taken[i].Refund(ex.mono)
		ex.taken[i] = nil
	}
	ex.ntaken = 0
}

// methodKey appends the method setting key of a request to dst:
// "{resourcePath}/{METHOD}", where the resource path is the escaped path
// within the stage without a trailing slash, "/" for the root: "/pets/GET",
// "//GET".
func methodKey(dst []byte, rest, method string) []byte {
	if len(rest) > 1 && rest[len(rest)-1] == '/' {
		rest = rest[:len(rest)-1]
	}
	if rest == "" {
		rest = "/"
	}
	dst = append(dst, rest...)
	dst = append(dst, '/')
	return append(dst, method...)
}

// meter spends a unit of the key's quota, or counts the request when the
// plan has none. A refused request gets its throttle tokens back.
func (p *Proxy) meter(ex *exchange, r *http.Request) *answer {
	b := ex.bind
	if !b.plan.quota {
		ex.state.counter.Count(ex.now)
		return nil
	}
	ex.wait = quotaWait{parent: r.Context(), d: p.quotaWait}
	d := ex.state.counter.Take(&ex.wait, ex.now)
	ex.wait.release()
	ex.quota = d
	switch d.Status {
	case limiter.QuotaAllowed:
		// A negative limit: the ledger knows no quota for the key (yet);
		// there is nothing to show.
		ex.quotaShown = d.Limit >= 0
		return nil
	case limiter.QuotaExhausted:
		ex.refund()
		ex.quotaShown = true
		ex.retry = d.RetryAfter
		if !d.ResetAt.IsZero() {
			ex.retry = d.ResetAt.Sub(ex.now)
		}
		ex.reason = "quota exhausted"
		return &ansLimitExceeded
	case limiter.QuotaUnavailable:
		ex.refund()
		ex.retry = d.RetryAfter
		ex.reason = "quota unavailable"
		return &ansUnavailable
	default:
		ex.refund()
		ex.reason = "quota ledger does not know the key in the plan"
		return &ansForbidden
	}
}

// WebSocketVariable is the stage variable that lets WebSocket upgrades
// through to the stage's upstream when it is "true".
const WebSocketVariable = "tollgate_websocket"

// checkUpgrade decides a request that asks to switch protocols (an Upgrade
// header): a WebSocket upgrade goes on where the stage allows it; an
// upgrade to h2c is ignored, as RFC 9113 lets a server do, by removing the
// header: the request is served as HTTP/1.1 and no HTTP/2 connection is
// ever opened to the upstream on its behalf; anything else (WebSocket
// where the stage does not allow it, other protocols, several) is refused
// with 400.
func checkUpgrade(ex *exchange, r *http.Request, up []string) *answer {
	v := strings.TrimSpace(up[0])
	switch {
	case len(up) != 1:
	case strings.EqualFold(v, "websocket") && ex.stage.websocket:
		ex.upgrade = true
		return nil
	case strings.EqualFold(v, "h2c"):
		delete(r.Header, "Upgrade")
		delete(r.Header, "Http2-Settings")
		return nil
	}
	ex.reason = "protocol upgrade not allowed on the stage: " + strconv.Quote(v)
	return &ansUpgrade
}

func underscoreHeader(h http.Header) bool {
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 {
			return true
		}
	}
	return false
}

// quotaWait is the context given to QuotaCounter.Take: the request's
// context, bounded by Config.QuotaWait from the moment Take first asks for
// Done or Deadline. A Take that never waits therefore costs no timer.
type quotaWait struct {
	parent  context.Context
	d       time.Duration
	once    sync.Once
	started atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
}

func (w *quotaWait) start() {
	w.once.Do(func() {
		w.ctx, w.cancel = context.WithTimeout(w.parent, w.d)
		w.started.Store(true)
	})
}

func (w *quotaWait) Deadline() (time.Time, bool) { w.start(); return w.ctx.Deadline() }
func (w *quotaWait) Done() <-chan struct{}       { w.start(); return w.ctx.Done() }
func (w *quotaWait) Value(k any) any             { return w.parent.Value(k) }

func (w *quotaWait) Err() error {
	if w.started.Load() {
		return w.ctx.Err()
	}
	return w.parent.Err()
}

// release stops the wait's timer, if it started one.
func (w *quotaWait) release() {
	if w.started.Load() {
		w.cancel()
	}
}
