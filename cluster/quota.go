package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// LedgerClient applies a ledger batch through Raft (each batch carries its
// own request id, so a resent batch applies once) and answers this node's
// shares of the throttles of the keys whose demand the batch reported.
type LedgerClient interface {
	ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, []*pb.KeyShare, error)
}

// QuotaPoolConfig configures a QuotaPool.
type QuotaPoolConfig struct {
	// NodeID names this node in the ledger's grants. Required.
	NodeID string
	// Ledger applies batches. Required.
	Ledger LedgerClient
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// ReportInterval is the longest a count waits before it is reported.
	// Default 500ms.
	ReportInterval time.Duration
	// Horizon is how long a grant should last at the key's recent rate on
	// this node. Default 2s.
	Horizon time.Duration
	// MaxGrant caps one grant. Default 10000.
	MaxGrant int64
	// IdleRelease hands back what a key holds when it has seen no request
	// for this long. Default 5s.
	IdleRelease time.Duration
	// BatchTimeout bounds one batch's trip through Raft. Default 2s.
	BatchTimeout time.Duration
	// LiveNodes tells how many nodes share quotas. Default: always 1.
	LiveNodes func() int
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *QuotaPoolConfig) Validate() error {
	if c.NodeID == "" {
		return errors.New("quota pool: node id is required")
	}
	if c.Ledger == nil {
		return errors.New("quota pool: ledger is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ReportInterval <= 0 {
		c.ReportInterval = 500 * time.Millisecond
	}
	if c.Horizon <= 0 {
		c.Horizon = 2 * time.Second
	}
	if c.MaxGrant <= 0 {
		c.MaxGrant = 10000
	}
	if c.IdleRelease <= 0 {
		c.IdleRelease = 5 * time.Second
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 2 * time.Second
	}
	if c.LiveNodes == nil {
		c.LiveNodes = func() int { return 1 }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// QuotaPool is a node's side of the quota ledger: for every (plan, key) it
// holds a grant of units handed out by the ledger, spends them on the
// request path with atomic operations only, refills them ahead of need and
// reports what it spent. One goroutine batches all of the node's grant
// requests and reports into one Raft entry at a time.
type QuotaPool struct {
	cfg QuotaPoolConfig
	log *slog.Logger

	mu       sync.Mutex
	counters map[counterKey]*Counter

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// pending is the batch in flight; it is resent as it is (same request
	// id) until it applies, so a batch is never counted twice.
	pending *pb.Command
	// more: the last batch was full; what did not fit goes next.
	more    bool
	settled bool
	started atomic.Bool

	// Batches counts the batches applied (for tests and metrics).
	Batches atomic.Int64
}

type counterKey struct{ plan, key string }

// maxBatchItems caps the reports and grant requests of one batch.
const maxBatchItems = 2000

// maxAskEvery caps an exhausted key's re-ask interval, in report intervals.
const maxAskEvery = 8

// Nudge makes exhausted counters ask the ledger again at once: the log
// says a key's grantable quota may have grown (empty ids: any key's).
func (p *QuotaPool) Nudge(planID, keyID string) {
	nudged := false
	p.mu.Lock()
	if planID == "" && keyID == "" {
		for _, c := range p.counters {
			nudged = c.nudge() || nudged
		}
	} else if c := p.counters[counterKey{planID, keyID}]; c != nil {
		nudged = c.nudge()
	}
	p.mu.Unlock()
	if nudged {
		p.poke()
	}
}

// NewQuotaPool returns a pool; Start runs it.
func NewQuotaPool(cfg QuotaPoolConfig) (*QuotaPool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &QuotaPool{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "quota"),
		counters: map[counterKey]*Counter{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Start runs the refill loop. Its first batch settles whatever the ledger
// still counts as granted to this node from an earlier run.
func (p *QuotaPool) Start() {
	if !p.started.CompareAndSwap(false, true) {
		return
	}
	go p.run()
}

// Close stops the loop after a last batch that reports every count and
// hands back every unit held, so a clean restart loses nothing.
func (p *QuotaPool) Close(ctx context.Context) error {
	if !p.started.Load() {
		return nil
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("quota pool: final report: %w", ctx.Err())
	}
	return nil
}

// Counter returns the (cached) counter of a key in a plan.
func (p *QuotaPool) Counter(planID, keyID string) *Counter {
	k := counterKey{planID, keyID}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counters[k]
	if c == nil {
		c = &Counter{pool: p, planID: planID, keyID: keyID, waitCh: make(chan struct{})}
		c.packedShare.Store(packShare(1/float64(p.cfg.LiveNodes()), 1))
		c.periodEnd.Store(-1 << 62)
		c.lastUse.Store(p.cfg.Now().UnixNano())
		p.counters[k] = c
	}
	return c
}

func (p *QuotaPool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *QuotaPool) run() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.ReportInterval)
	defer t.Stop()
	p.cycle(false)
	for {
		select {
		case <-p.stop:
			p.finalFlush()
			return
		case <-p.wake:
		case <-t.C:
		}
		p.cycle(false)
	}
}

// finalFlush reports and releases everything, retrying within a bound.
func (p *QuotaPool) finalFlush() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p.cycle(true) {
			if !p.more {
				return
			}
			continue
		}
		time.Sleep(50 * time.Millisecond) // retry pause while no leader answers
	}
	p.log.Warn("quota pool: could not report the last counts before shutdown; the ledger keeps this node's grants as used")
}

func (p *QuotaPool) snapshotCounters() []*Counter {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Counter, 0, len(p.counters))
	for _, c := range p.counters {
		out = append(out, c)
	}
	return out
}

// cycle sends the batch still pending, if any, then a new one with what
// is due now. It reports whether everything due went through.
func (p *QuotaPool) cycle(final bool) bool {
	if p.pending != nil && !p.send() {
		return false
	}
	cmd := p.buildBatch(p.cfg.Now(), final)
	if cmd == nil {
		return true
	}
	p.pending = cmd
	ok := p.send()
	if ok && p.more && !final {
		p.poke()
	}
	return ok
}

// send applies the pending batch and hands its grants to the counters.
func (p *QuotaPool) send() bool {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.BatchTimeout)
	res, shares, err := p.cfg.Ledger.ApplyLedger(ctx, p.pending)
	cancel()
	if err == nil && res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		err = fmt.Errorf("ledger refused the batch: %s", res.Message)
	}
	if err != nil {
		p.log.Debug("quota batch not applied; it will be resent", "err", err)
		return false
	}
	p.pending = nil
	p.settled = true
	p.Batches.Add(1)
	now := p.cfg.Now()
	for _, g := range res.GetLedger().GetGrants() {
		p.Counter(g.PlanId, g.KeyId).applyGrant(g, now)
	}
	for _, sh := range shares {
		p.Counter(sh.PlanId, sh.KeyId).setShare(sh.Share, now)
	}
	return true
}

// buildBatch collects every count since the last batch and the grants that
// counters asked for. It returns nil when there is nothing to send.
func (p *QuotaPool) buildBatch(now time.Time, final bool) *pb.Command {
	b := &pb.LedgerBatch{NodeId: p.cfg.NodeID, Settle: !p.settled}
	live := p.cfg.LiveNodes()
	p.more = false
	for _, c := range p.snapshotCounters() {
		if len(b.Reports)+len(b.Grants) >= maxBatchItems {
			// The rest goes in the next batch, at once: a Raft entry
			// stays small however many keys see traffic.
			p.more = true
			break
		}
		n := len(b.Reports)
		b.Reports = c.collectReports(b.Reports)
		if d, due := c.demand(now, p.cfg.ReportInterval, live); due {
			if len(b.Reports) > n {
				b.Reports[len(b.Reports)-1].Demand = d
			} else {
				b.Reports = append(b.Reports, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, Day: DayOf(now.Unix()), Demand: d})
			}
		}
		if final {
			if n := c.drain(); n > 0 {
				b.Reports = append(b.Reports, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: c.periodStart.Load(), Day: DayOf(now.Unix()), Release: n})
			}
			continue
		}
		if g := c.grantRequest(now, live, p.cfg); g != nil {
			b.Grants = append(b.Grants, g)
			continue
		}
		if rel := c.idleRelease(now, p.cfg.IdleRelease); rel != nil {
			b.Reports = append(b.Reports, rel)
		}
	}
	if !b.Settle && len(b.Reports) == 0 && len(b.Grants) == 0 {
		return nil
	}
	return &pb.Command{RequestId: newRequestID(), Body: &pb.Command_Ledger{Ledger: b}}
}

// Counter states.
const (
	stateNone      int32 = iota // no grant held yet
	stateActive                 // holding a grant of the current period
	stateExhausted              // the ledger had nothing left to grant
	stateUnknown                // the key is not in the plan
	stateNoQuota                // the plan has no quota: count only
)

// recheckAfter is how long a "no quota" or "unknown key" answer is trusted.
const recheckAfter = time.Second

// Counter is one key's quota in one plan on this node. Take and Count are
// the request path: atomic operations, no lock shared by all requests, no
// allocation.
type Counter struct {
	pool          *QuotaPool
	planID, keyID string

	avail       atomic.Int64 // units of the held grant not yet spent
	state       atomic.Int32
	periodStart atomic.Int64 // of the held grant, Unix seconds
	periodEnd   atomic.Int64 // Unix seconds; past it the grant lapses
	limit       atomic.Int64
	remaining   atomic.Int64 // cluster-wide, beyond what this node holds
	lowWater    atomic.Int64
	wantRefill  atomic.Bool

	day      atomic.Int64 // the day count is for
	count    atomic.Int64 // admitted on day, not yet reported
	admitted atomic.Int64 // admitted since the counter was made (demand)
	lastUse  atomic.Int64 // Unix nanoseconds of the last request

	mu        sync.Mutex
	otherDays map[int64]int64 // counts of earlier days not yet reported
	waitCh    chan struct{}   // closed when a grant answer arrives
	inflight  bool
	lastAsk   time.Time
	// askEvery is how often an exhausted key asks again: it doubles while
	// the answer stays "nothing left" (up to maxAskEvery), and a Nudge
	// from the log (an extension, units handed back, a plan change) makes
	// it ask at once.
	askEvery time.Duration
	lastSeen int64 // admitted at the last refill decision
	meter    limiter.DemandMeter

	// Throttle share: the node's share of the key's plan throttle, packed
	// with a version so one atomic load reads both (see packShare).
	attempts     atomic.Int64 // requests for the key here, throttled too
	packedShare  atomic.Uint64
	seenAttempts int64 // attempts at the last demand reading (under mu)
	attemptMeter limiter.DemandMeter
	lastDemand   time.Time // when demand was last reported
	shareAt      time.Time // when the leader last set the share
}

// packShare packs a share (0, 1] with a version: the high 32 bits hold
// the version, the low 32 bits the share in billionths.
func packShare(share float64, version uint32) uint64 {
	return uint64(version)<<32 | uint64(uint32(min(max(share, 1e-9), 1)*1e9))
}

// Attempt records one request for the key on this node, throttled or not.
func (c *Counter) Attempt() { c.attempts.Add(1) }

// Share is this node's share of the key's plan throttle and its version.
func (c *Counter) Share() (float64, uint64) {
	p := c.packedShare.Load()
	return float64(uint32(p)) / 1e9, p >> 32
}

// setShare stores a new share when it moved by more than 1%.
func (c *Counter) setShare(share float64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shareAt = now
	old := c.packedShare.Load()
	cur := float64(uint32(old)) / 1e9
	if share <= 0 || share > 1 || (share > cur*0.99 && share < cur*1.01) {
		return
	}
	c.packedShare.Store(packShare(share, uint32(old>>32)+1))
}

// demand returns the key's recent offered rate on this node, and whether
// it is due in this batch (at most once a report interval, while the key
// sees traffic). When the leader has not set a share lately, the share
// falls back to an even split between the live nodes.
func (c *Counter) demand(now time.Time, every time.Duration, live int) (float64, bool) {
	c.mu.Lock()
	a := c.attempts.Load()
	c.attemptMeter.Observe(a-c.seenAttempts, now)
	c.seenAttempts = a
	rate := c.attemptMeter.Rate()
	stale := now.Sub(c.shareAt) > shareStale
	due := rate > 0.01 && now.Sub(c.lastDemand) >= every
	if due {
		c.lastDemand = now
	}
	c.mu.Unlock()
	if stale {
		c.setShare(1/float64(max(live, 1)), time.Time{})
	}
	return rate, due
}

// Take spends one unit of the key's quota. It waits (bounded by ctx) only
// when this node holds no unit and the ledger has not said the quota is
// spent.
func (c *Counter) Take(ctx context.Context, now time.Time) limiter.QuotaDecision {
	sec := now.Unix()
	for {
		st := c.state.Load()
		end := c.periodEnd.Load()
		switch st {
		case stateNoQuota:
			if sec < end {
				c.record(now)
				return limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: -1, Remaining: -1}
			}
		case stateUnknown:
			if sec < end {
				return limiter.QuotaDecision{Status: limiter.QuotaUnknown}
			}
		case stateActive, stateExhausted:
			if sec >= end {
				c.expire(sec)
				break
			}
			if left := c.avail.Add(-1); left >= 0 {
				c.record(now)
				if left < c.lowWater.Load() {
					c.askRefill()
				}
				return limiter.QuotaDecision{
					Status:    limiter.QuotaAllowed,
					Limit:     c.limit.Load(),
					Remaining: c.remaining.Load() + left,
					ResetAt:   time.Unix(end, 0),
				}
			}
			c.avail.Add(1)
			if st == stateExhausted {
				c.askRefill()
				return limiter.QuotaDecision{
					Status:     limiter.QuotaExhausted,
					Limit:      c.limit.Load(),
					ResetAt:    time.Unix(end, 0),
					RetryAfter: time.Unix(end, 0).Sub(now),
				}
			}
		}
		ch := c.waitChan()
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return limiter.QuotaDecision{Status: limiter.QuotaUnavailable, RetryAfter: time.Second}
		}
	}
}

// Count records one admitted request of a plan without a quota.
func (c *Counter) Count(now time.Time) { c.record(now) }

func (c *Counter) record(now time.Time) {
	c.admitted.Add(1)
	c.lastUse.Store(now.UnixNano())
	day := DayOf(now.Unix())
	if c.day.Load() != day {
		c.mu.Lock()
		if old := c.day.Load(); old != day {
			if n := c.count.Swap(0); n > 0 {
				if c.otherDays == nil {
					c.otherDays = map[int64]int64{}
				}
				c.otherDays[old] += n
			}
			c.day.Store(day)
		}
		c.mu.Unlock()
	}
	c.count.Add(1)
}

// nudge lets an exhausted counter ask again at once.
func (c *Counter) nudge() bool {
	if c.state.Load() != stateExhausted {
		return false
	}
	c.mu.Lock()
	c.lastAsk, c.askEvery = time.Time{}, 0
	c.mu.Unlock()
	c.wantRefill.Store(true)
	return true
}

func (c *Counter) askRefill() {
	if !c.wantRefill.Load() {
		c.wantRefill.Store(true)
		c.pool.poke()
	}
}

// waitChan returns the channel to wait on for the next grant answer, or
// nil when the caller should look again: units arrived meanwhile, or the
// ledger said the quota is spent (an exhausted key is asked for again only
// every ReportInterval, so waiting would outlast most deadlines). Units
// count only with a grant state: a Take that undoes its decrement after a
// drain can leave a unit behind in any state, and retrying on it would spin.
func (c *Counter) waitChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st := c.state.Load(); {
	case st == stateExhausted, st == stateActive && c.avail.Load() > 0:
		return nil
	}
	c.wantRefill.Store(true)
	c.pool.poke()
	return c.waitCh
}

// drain takes every unit held, leaving transient decrements of racing
// Takes to undo themselves.
func (c *Counter) drain() int64 {
	for {
		v := c.avail.Load()
		if v <= 0 {
			return 0
		}
		if c.avail.CompareAndSwap(v, 0) {
			return v
		}
	}
}

// expire drops a grant whose period is over: the ledger starts the new
// period without it.
func (c *Counter) expire(sec int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sec < c.periodEnd.Load() {
		return
	}
	c.drain()
	c.state.Store(stateNone)
}

// collectReports appends the counts not yet reported.
func (c *Counter) collectReports(out []*pb.UsageReport) []*pb.UsageReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, n := range c.otherDays {
		out = append(out, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: c.periodStart.Load(), Day: d, Count: n})
	}
	clear(c.otherDays)
	if n := c.count.Swap(0); n > 0 {
		out = append(out, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: c.periodStart.Load(), Day: c.day.Load(), Count: n})
	}
	return out
}

// grantRequest returns the grant this counter needs now, if any.
func (c *Counter) grantRequest(now time.Time, live int, cfg QuotaPoolConfig) *pb.GrantRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	adm := c.admitted.Load()
	c.meter.Observe(adm-c.lastSeen, now)
	c.lastSeen = adm
	if !c.wantRefill.Load() || c.inflight {
		return nil
	}
	if st := c.state.Load(); st == stateExhausted && now.Sub(c.lastAsk) < max(c.askEvery, cfg.ReportInterval) {
		return nil // ask an exhausted ledger again at most every interval
	}
	remaining := int64(-1)
	if c.state.Load() == stateActive || c.state.Load() == stateExhausted {
		remaining = c.remaining.Load()
	}
	want := limiter.GrantSize(limiter.GrantInput{
		DemandPerSec: c.meter.Rate(),
		Horizon:      cfg.Horizon,
		Remaining:    remaining,
		LiveNodes:    live,
		Max:          cfg.MaxGrant,
	})
	if remaining < 0 {
		want = 1 // the first ask of a period: learn what is left first
	}
	c.inflight = true
	c.wantRefill.Store(false)
	c.lastAsk = now
	return &pb.GrantRequest{PlanId: c.planID, KeyId: c.keyID, Want: want}
}

// idleRelease hands back the units of a key that is no longer used here.
func (c *Counter) idleRelease(now time.Time, idle time.Duration) *pb.UsageReport {
	if c.state.Load() != stateActive || now.UnixNano()-c.lastUse.Load() < int64(idle) {
		return nil
	}
	n := c.drain()
	if n == 0 {
		return nil
	}
	c.state.Store(stateNone)
	return &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: c.periodStart.Load(), Day: DayOf(now.Unix()), Release: n}
}

// applyGrant takes the ledger's answer to a grant request.
func (c *Counter) applyGrant(r *pb.GrantResult, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = false
	switch {
	case r.Unknown:
		c.drain()
		c.periodEnd.Store(now.Add(recheckAfter).Unix())
		c.state.Store(stateUnknown)
	case r.Limit < 0:
		c.drain()
		c.periodEnd.Store(now.Add(recheckAfter).Unix())
		c.state.Store(stateNoQuota)
	default:
		if r.PeriodStart != c.periodStart.Load() {
			c.drain() // units of another period lapse
			c.periodStart.Store(r.PeriodStart)
		}
		c.limit.Store(r.Limit)
		c.remaining.Store(r.Remaining)
		c.lowWater.Store(limiter.LowWatermark(r.Granted))
		c.periodEnd.Store(r.PeriodEnd)
		c.avail.Add(r.Granted)
		if r.Granted > 0 || c.avail.Load() > 0 {
			c.state.Store(stateActive)
			c.askEvery = 0
		} else {
			c.state.Store(stateExhausted)
			c.askEvery = min(max(2*c.askEvery, c.pool.cfg.ReportInterval), maxAskEvery*c.pool.cfg.ReportInterval)
		}
	}
	close(c.waitCh)
	c.waitCh = make(chan struct{})
}
