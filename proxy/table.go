package proxy

import (
	"log/slog"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tollgate/tollgate/limiter"
	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
	"github.com/tollgate/tollgate/sealing"
)

// table is everything the request path reads, built from one configuration
// and never changed after it is published. State that must outlive a
// configuration change (token buckets, quota counters, metric handles) is
// carried from the previous table by id.
type table struct {
	cfg      *tollgatepb.Config
	apis     map[string]*apiEntry                   // API id → API
	hostAPIs map[string]*apiEntry                   // lower-case API id → API (host form)
	keys     map[[sealing.LookupSize]byte]*keyEntry // lookup hash of the value → key
	lookup   *sealing.Keys                          // the keys the hashes are under
	// keysErr is why sealed values cannot be looked up: this node cannot
	// unwrap the cluster's data key. nil otherwise.
	keysErr error

	account      *sharedBucket
	accountLimit *limit

	// Carried across rebuilds, keyed by id strings.
	stageThrottles map[string]*sharedBucket // api \x00 stage \x00 setting key
	slots          map[string]*keySlot      // plan \x00 key, for every key in a plan
	stats          map[string]*stageStats   // api \x00 stage
}

type apiEntry struct {
	id     string
	stages map[string]*stageEntry
}

type stageEntry struct {
	api, name string
	keyless   bool
	websocket bool // WebSocketVariable is "true": WebSocket upgrades are forwarded

	// The upstream; target is nil when the stage variable "url" is missing
	// or not an absolute http(s) URL (targetErr says why).
	target     *url.URL
	targetPath string // target's escaped path
	targetErr  string

	// Stage method settings: exact "{resourcePath}/{METHOD}" keys, then
	// "*/*" (nil when unset).
	methods   map[string]*stageSetting
	anyMethod *stageSetting

	stats *stageStats // nil without metrics

	// The resources of the stage's deployment (routes.go); nil when it
	// has none: every path goes to target.
	routes *routeNode
}

// stageSetting is a stage method setting's throttle.
type stageSetting struct {
	th  *sharedBucket
	lim *limit
}

type keyEntry struct {
	id      string
	enabled bool
	plans   map[*stageEntry]*binding // the plan covering each stage
}

// planEntry is what a usage plan means to the request path.
type planEntry struct {
	id string

	throttle    bool   // the plan has a per-key throttle
	lim         *limit // the plan's cluster-wide limits; planLimit takes this node's share
	burstWindow int64  // seconds, for RateLimit-Policy

	quota       bool
	quotaLimit  int64
	quotaWindow int64 // nominal seconds of the period

	// Header values computed once: RateLimit-Policy, and X-RateLimit-Limit
	// when it shows the plan throttle.
	policy string
	xLimit string
}

// override is a plan's per-method throttle on one stage.
type override struct {
	id     string // api \x00 stage \x00 method key: unique within the plan
	lim    *limit
	policy string // RateLimit-Policy with this bucket (and the plan's quota)
	xLimit string
}

// binding is a key's plan on one stage.
type binding struct {
	plan      *planEntry
	slot      *keySlot
	overrides map[string]*override // method key → override; nil when none
}

// keySlot holds the state of one key in one plan, made on the key's first
// request (keyState): a key that sees no traffic costs no counter, bucket
// or share.
type keySlot struct {
	id    string // plan \x00 key
	key   string // key id
	state atomic.Pointer[keyState]
}

// keyState is the state of one key in one plan. Each table has its own
// (immutable) keyState; what it points to outlives rebuilds.
type keyState struct {
	id       string // plan \x00 key
	counter  QuotaCounter
	throttle *sharedBucket // the plan's per-key throttle; nil when the plan has none
	methods  *methodThrottles
}

// loadState returns the slot's state, nil when the key saw no request (or
// the slot is nil).
func (s *keySlot) loadState() *keyState {
	if s == nil {
		return nil
	}
	return s.state.Load()
}

// keyState returns the state of the binding's key in its plan, making it
// on the key's first request.
func (p *Proxy) keyState(b *binding) *keyState {
	if ks := b.slot.state.Load(); ks != nil {
		return ks
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if ks := b.slot.state.Load(); ks != nil {
		return ks
	}
	ks := &keyState{id: b.slot.id, counter: p.ledger.Counter(b.plan.id, b.slot.key), methods: &methodThrottles{}}
	if b.plan.throttle {
		ks.throttle = newThrottle(keyShareID(ks.id), b.plan.lim, p.shares) // full
	}
	b.slot.state.Store(ks)
	return ks
}

// methodThrottles are the throttles of a key's per-method overrides in one
// plan, created on first use: a copy-on-write map read without a lock.
// Each has its own share, divided by the demand for that method.
type methodThrottles struct {
	mu sync.Mutex // serialises additions
	m  atomic.Pointer[map[string]*sharedBucket]
}

// get returns the throttle of override o for key state ks, creating it on
// first use.
func (ks *keyState) method(o *override, shares Shares) *sharedBucket {
	if m := ks.methods.m.Load(); m != nil {
		if th := (*m)[o.id]; th != nil {
			return th
		}
	}
	ks.methods.mu.Lock()
	defer ks.methods.mu.Unlock()
	old := ks.methods.m.Load()
	if old != nil {
		if th := (*old)[o.id]; th != nil {
			return th
		}
	}
	m := make(map[string]*sharedBucket, 1)
	if old != nil {
		maps.Copy(m, *old)
	}
	th := newThrottle(methodShareID(ks.id, o.id), o.lim, shares)
	m[o.id] = th
	ks.methods.m.Store(&m)
	return th
}

// planLimit turns a cluster-wide throttle (plan, plan method, account or
// stage method setting) into the limit of this node's bucket: the node's
// share of the rate and burst. It is the one place where that happens.
func planLimit(rate float64, burst int64, share float64) (float64, int64) {
	if share >= 1 {
		return rate, burst
	}
	return limiter.ShareLimit(rate, burst, share)
}

// accountLimit returns the account throttle: the configured one, or the
// original's default while none is set. A configured 0/0 blocks every
// request, as at every other level.
func accountLimit(cfg *tollgatepb.Config) (float64, int64) {
	t := cfg.GetAccount().GetThrottle()
	if t == nil {
		return DefaultAccountRate, DefaultAccountBurst
	}
	return t.GetRateLimit(), int64(t.GetBurstLimit())
}

// newLimit is the limit of a throttle as configured: a rate given without
// a burst gets limiter.DefaultBurst; 0/0 stays and denies every request.
func newLimit(rate float64, burst int64) *limit {
	return &limit{rate: rate, burst: limiter.DefaultBurst(rate, burst)}
}

// setLimit sets a carried bucket's limit when it changed.
func setLimit(b *limiter.Bucket, rate float64, burst int64) {
	if r, bu := b.Limit(); r != rate || bu != burst {
		b.SetLimit(rate, burst)
	}
}

// quotaWindow is the nominal length in seconds of a quota period, for
// RateLimit-Policy; RateLimit's "t" gives the exact reset.
func quotaWindow(period string) int64 {
	switch period {
	case "WEEK":
		return 7 * 86400
	case "MONTH":
		return 30 * 86400
	default:
		return 86400
	}
}

// refillWindow is the seconds a bucket takes to refill its burst, at least
// one: the window of its RateLimit-Policy item.
func refillWindow(rate float64, burst int64) int64 {
	if !(rate > 0) || burst <= 0 {
		return 1
	}
	w := math.Round(float64(burst) / rate)
	if w < 1 {
		return 1
	}
	if w > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(w)
}

// policies computes the RateLimit-Policy value of a bucket (when
// throttled) and a quota (when set), and the bucket's X-RateLimit-Limit
// (the quota's depends on the decision: see limitHeaders).
func policies(throttled bool, burst, window int64, quota bool, limit, qwindow int64) (policy, xLimit string) {
	var b []byte
	if throttled {
		b = append(b, `"burst";q=`...)
		b = strconv.AppendInt(b, max(burst, 0), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, window, 10)
		xLimit = strconv.FormatInt(max(burst, 0), 10)
	}
	if quota {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `"quota";q=`...)
		b = strconv.AppendInt(b, max(limit, 0), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, qwindow, 10)
	}
	return string(b), xLimit
}

// build makes the table of cfg, carrying state from old (nil at first).
func (p *Proxy) build(cfg *tollgatepb.Config, old *table) *table {
	if old == nil {
		old = &table{}
	}
	t := &table{
		cfg:            cfg,
		apis:           make(map[string]*apiEntry, len(cfg.GetRestApis())),
		hostAPIs:       make(map[string]*apiEntry, len(cfg.GetRestApis())),
		keys:           make(map[[sealing.LookupSize]byte]*keyEntry, len(cfg.GetApiKeys())),
		stageThrottles: make(map[string]*sharedBucket),
		slots:          make(map[string]*keySlot),
		stats:          make(map[string]*stageStats),
	}
	arate, aburst := accountLimit(cfg)
	t.accountLimit = newLimit(arate, aburst)
	if t.account = old.account; t.account == nil {
		t.account = newThrottle(accountShareID(), t.accountLimit, p.shares)
	}

	for id := range cfg.GetRestApis() {
		t.apis[id] = &apiEntry{id: id, stages: make(map[string]*stageEntry)}
	}
	// Case-insensitive host labels: an id that is already lower case keeps
	// its spelling; others take what is left, smaller id first.
	ids := slices.Sorted(maps.Keys(cfg.GetRestApis()))
	for _, id := range ids {
		if !hasUpper(id) {
			t.hostAPIs[id] = t.apis[id]
		}
	}
	for _, id := range ids {
		if low := lower(id); t.hostAPIs[low] == nil {
			t.hostAPIs[low] = t.apis[id]
		}
	}
	for _, st := range cfg.GetStages() {
		api := t.apis[st.GetRestApiId()]
		if api == nil || st.GetStageName() == "" {
			continue
		}
		api.stages[st.GetStageName()] = p.buildStage(t, old, st, arate, aburst)
	}

	// Keys by the lookup hash of their value: stored for a sealed value,
	// computed for a plain one. Values are unique by construction; should
	// two keys share one, the smaller id wins so that the choice is stable.
	var sealedOK bool
	t.lookup, sealedOK, t.keysErr = p.lookupKeys()
	keysByID := make(map[string]*keyEntry, len(cfg.GetApiKeys()))
	for _, id := range slices.Sorted(maps.Keys(cfg.GetApiKeys())) {
		k := cfg.GetApiKeys()[id]
		var sum [sealing.LookupSize]byte
		switch {
		case k.GetValue() != "":
			var ok bool
			if sum, ok = t.lookup.Lookup(k.GetValue()); !ok {
				continue
			}
		case sealedOK && len(k.GetValueLookup()) == sealing.LookupSize:
			sum = [sealing.LookupSize]byte(k.GetValueLookup())
		default:
			continue
		}
		e := &keyEntry{id: id, enabled: k.GetEnabled()}
		keysByID[id] = e
		if t.keys[sum] == nil {
			t.keys[sum] = e
		}
	}

	// Plans, in id order: a key may be in one plan per stage; should the
	// configuration break that rule, the plan with the smaller id wins.
	for _, pid := range slices.Sorted(maps.Keys(cfg.GetUsagePlans())) {
		p.bindPlan(t, old, cfg, cfg.GetUsagePlans()[pid], keysByID)
	}
	return t
}

func (p *Proxy) buildStage(t, old *table, st *tollgatepb.Stage, arate float64, aburst int64) *stageEntry {
	e := &stageEntry{
		api:     st.GetRestApiId(),
		name:    st.GetStageName(),
		keyless: st.GetApiKeyNotRequired(),
		// The stage variable alone: the Stage model has no setting for it,
		// and variables already carry the stage's upstream.
		websocket: st.GetVariables()[WebSocketVariable] == "true",
	}
	e.target, e.targetErr = parseTarget(st.GetVariables()["url"])
	if e.target != nil {
		if err := p.upstreams.checkURL(e.target); err != nil {
			e.target, e.targetErr = nil, "stage variable url: "+err.Error()
		}
	}
	if e.target != nil {
		e.targetPath = e.target.EscapedPath()
	} else if !rules.TreeHasMethods(t.cfg.GetDeploymentResources()[st.GetRestApiId()+"/"+st.GetDeploymentId()]) {
		p.log.Warn("stage has no valid upstream url", "api", e.api, "stage", e.name, "problem", e.targetErr)
	}
	dep := t.cfg.GetDeploymentResources()[st.GetRestApiId()+"/"+st.GetDeploymentId()]
	e.routes = p.buildRoutes(dep, st)
	for key, ms := range st.GetMethodSettings() {
		rate, burst := arate, aburst
		if ms.ThrottlingRateLimit != nil {
			rate = ms.GetThrottlingRateLimit()
		}
		if ms.ThrottlingBurstLimit != nil {
			burst = int64(ms.GetThrottlingBurstLimit())
		}
		id := e.api + "\x00" + e.name + "\x00" + key
		lim := newLimit(rate, burst)
		th := carryThrottle(old.stageThrottles, stageShareID(id), lim, p.shares)
		t.stageThrottles[id] = th
		ss := &stageSetting{th: th, lim: lim}
		if key == "*/*" {
			e.anyMethod = ss
			continue
		}
		if e.methods == nil {
			e.methods = make(map[string]*stageSetting)
		}
		e.methods[key] = ss
	}
	if p.metrics != nil {
		id := e.api + "\x00" + e.name
		s := old.stats[id]
		if s == nil {
			s = p.metrics.stage(e.api, e.name)
		}
		t.stats[id] = s
		e.stats = s
	}
	return e
}

func (p *Proxy) bindPlan(t, old *table, cfg *tollgatepb.Config, up *tollgatepb.UsagePlan, keysByID map[string]*keyEntry) {
	pe := &planEntry{id: up.GetId()}
	if th := up.GetThrottle(); th != nil {
		pe.throttle = true
		pe.lim = newLimit(th.GetRateLimit(), int64(th.GetBurstLimit()))
		pe.burstWindow = refillWindow(pe.lim.rate, pe.lim.burst)
	}
	if q := up.GetQuota(); q != nil {
		pe.quota = true
		pe.quotaLimit = q.GetLimit()
		pe.quotaWindow = quotaWindow(q.GetPeriod())
	}
	var burst int64
	if pe.lim != nil {
		burst = pe.lim.burst
	}
	pe.policy, pe.xLimit = policies(pe.throttle, burst, pe.burstWindow,
		pe.quota, pe.quotaLimit, pe.quotaWindow)

	type covered struct {
		stage     *stageEntry
		overrides map[string]*override
	}
	var stages []covered
	for _, as := range up.GetApiStages() {
		api := t.apis[as.GetApiId()]
		if api == nil {
			continue
		}
		st := api.stages[as.GetStage()]
		if st == nil {
			continue
		}
		c := covered{stage: st}
		for mk, th := range as.GetThrottle() {
			if th == nil {
				continue
			}
			o := &override{id: st.api + "\x00" + st.name + "\x00" + mk}
			o.lim = newLimit(th.GetRateLimit(), int64(th.GetBurstLimit()))
			o.policy, o.xLimit = policies(true, o.lim.burst,
				refillWindow(o.lim.rate, o.lim.burst),
				pe.quota, pe.quotaLimit, pe.quotaWindow)
			if c.overrides == nil {
				c.overrides = make(map[string]*override)
			}
			c.overrides[mk] = o
		}
		stages = append(stages, c)
	}
	if len(stages) == 0 {
		return
	}
	for _, kid := range slices.Sorted(maps.Keys(cfg.GetPlanKeys()[up.GetId()].GetKeys())) {
		ke := keysByID[kid]
		if ke == nil {
			continue
		}
		id := up.GetId() + "\x00" + kid
		slot := &keySlot{id: id, key: kid}
		if prev := old.slots[id].loadState(); prev != nil {
			// The key saw traffic: its state carries over.
			ks := &keyState{id: id, counter: prev.counter, methods: prev.methods}
			if pe.throttle {
				ks.throttle = prev.throttle // ready sets its limit
				if ks.throttle == nil {
					ks.throttle = newThrottle(keyShareID(id), pe.lim, p.shares) // full
				}
			}
			slot.state.Store(ks)
		}
		t.slots[id] = slot
		for _, c := range stages {
			if ke.plans == nil {
				ke.plans = make(map[*stageEntry]*binding, len(stages))
			}
			if prev := ke.plans[c.stage]; prev != nil {
				p.log.Warn("key is in two plans covering one stage; the first plan applies",
					"key_id", kid, "api", c.stage.api, "stage", c.stage.name,
					"plan", prev.plan.id, "ignored_plan", up.GetId())
				continue
			}
			ke.plans[c.stage] = &binding{plan: pe, slot: slot, overrides: c.overrides}
		}
	}
}

// parseTarget reads a stage's upstream base URL.
func parseTarget(raw string) (*url.URL, string) {
	if raw == "" {
		return nil, "stage variable url is not set"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, "stage variable url does not parse: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "stage variable url is not http or https: " + strconv.Quote(u.Scheme)
	case u.Host == "":
		return nil, "stage variable url has no host"
	case u.Fragment != "" || u.User != nil:
		return nil, "stage variable url has a fragment or user info"
	}
	return u, ""
}

func lower(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lastFour is the hint logged in place of a key value.
func lastFour(v string) string {
	if len(v) <= 4 {
		return "****"
	}
	return "****" + v[len(v)-4:]
}

// logAttrsStage are the attributes naming a stage in log lines.
func logAttrsStage(st *stageEntry) []slog.Attr {
	if st == nil {
		return nil
	}
	return []slog.Attr{slog.String("api", st.api), slog.String("stage", st.name)}
}
