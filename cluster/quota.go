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
// own request id, so a resent batch applies once).
type LedgerClient interface {
	ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error)
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
	// MaxClockSkew is how far this node's clock may differ from the
	// leader's before the node says so (log, ClockOffset). Quota periods
	// are decided on the leader's clock whatever the skew. Default 1s.
	MaxClockSkew time.Duration
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
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = time.Second
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
	byKey    map[string][]*Counter // key id → its counters, one per plan

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// pending is the batch in flight; it is resent as it is (same run and
	// sequence number) until it applies, so a batch is never counted twice.
	pending *pb.Command
	// more: the last batch was full; what did not fit goes next.
	more    bool
	settled bool
	runID   string // this run's id; its first batch settles (see Start)
	seq     uint64 // the last batch's sequence number in the run
	started atomic.Bool

	// offset is the leader's clock minus this node's, in nanoseconds, as
	// measured by the last batch: quota periods follow the leader's clock.
	offset   atomic.Int64
	skewWarn time.Time // when the skew was last logged (run loop only)
	skewed   atomic.Bool

	// Batches counts the batches applied (for tests and metrics).
	Batches atomic.Int64
}

type counterKey struct{ plan, key string }

// maxBatchItems caps the reports and grant requests of one batch.
const maxBatchItems = 2000

// maxAskEvery caps an exhausted key's re-ask interval, in report intervals.
const maxAskEvery = 8

// Event takes a QuotaEvent of the log this node applies: exhausted keys
// ask again at once when quota may have grown, and a revocation makes
// keys hand back what they hold (and drop grants decided before it).
func (p *QuotaPool) Event(ev QuotaEvent) {
	poke := false
	touch := func(c *Counter) {
		if ev.Revoke {
			poke = c.revoke(ev.Index) || poke
		} else {
			poke = c.nudge() || poke
		}
	}
	p.mu.Lock()
	switch {
	case ev.PlanID != "" && ev.KeyID != "":
		// One key: every ledger batch that hands units back says so
		// for each key, so this must not look at every counter.
		if c := p.counters[counterKey{ev.PlanID, ev.KeyID}]; c != nil {
			touch(c)
		}
	case ev.KeyID != "":
		for _, c := range p.byKey[ev.KeyID] {
			touch(c)
		}
	default:
		for k, c := range p.counters {
			if ev.PlanID == "" || k.plan == ev.PlanID {
				touch(c)
			}
		}
	}
	p.mu.Unlock()
	if poke {
		p.poke()
	}
}

// ClockOffset is the leader's clock minus this node's as last measured,
// and whether it is beyond MaxClockSkew.
func (p *QuotaPool) ClockOffset() (time.Duration, bool) {
	return time.Duration(p.offset.Load()), p.skewed.Load()
}

// ledgerSec is the ledger's time (the leader's clock) at this node's now,
// in Unix seconds.
func (p *QuotaPool) ledgerSec(now time.Time) int64 {
	return floorDiv(now.UnixNano()+p.offset.Load(), 1e9)
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
		byKey:    map[string][]*Counter{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		runID:    newRequestID(),
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
		c.lastUse.Store(p.cfg.Now().UnixNano())
		p.counters[k] = c
		p.byKey[keyID] = append(p.byKey[keyID], c)
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
	sent := p.cfg.Now()
	res, err := p.cfg.Ledger.ApplyLedger(ctx, p.pending)
	cancel()
	if err == nil && res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		err = fmt.Errorf("ledger refused the batch: %s", res.Message)
	}
	if err != nil {
		p.log.Debug("quota batch not applied; it will be resent", "err", err)
		return false
	}
	now := p.cfg.Now()
	p.pending = nil
	if res.GetLedger().GetStaleRun() {
		// The ledger settled this node since (it was removed and came
		// back): what it holds counts as used there. Drop it all and
		// start a new run, whose first batch settles.
		p.log.Warn("quota ledger no longer follows this node's batches (it was removed from the cluster and came back); starting afresh")
		for _, c := range p.snapshotCounters() {
			c.reset()
		}
		p.settled, p.runID, p.seq = false, newRequestID(), 0
		return false
	}
	p.settled = true
	p.Batches.Add(1)
	p.measureSkew(res.GetTimeUnixNano(), sent, now)
	for _, g := range res.GetLedger().GetGrants() {
		p.Counter(g.PlanId, g.KeyId).applyGrant(g, res.GetIndex(), p.ledgerSec(now))
	}
	return true
}

// measureSkew takes the leader's time of an applied batch: the leader
// stamped it between sent and got, so the leader's clock minus this
// node's is about stamp − (sent+got)/2, within half the round trip.
func (p *QuotaPool) measureSkew(stamp int64, sent, got time.Time) {
	if stamp == 0 {
		return
	}
	mid := sent.UnixNano() + got.Sub(sent).Nanoseconds()/2
	off := stamp - mid
	p.offset.Store(off)
	skewed := time.Duration(max(off, -off)) > p.cfg.MaxClockSkew
	p.skewed.Store(skewed)
	if skewed && got.Sub(p.skewWarn) > time.Minute {
		p.skewWarn = got
		p.log.Warn("this node's clock differs from the leader's beyond --max-clock-skew; quota periods follow the leader's clock",
			"offset", time.Duration(off), "max_clock_skew", p.cfg.MaxClockSkew)
	}
}

// buildBatch collects every count since the last batch and the grants that
// counters asked for. It returns nil when there is nothing to send.
func (p *QuotaPool) buildBatch(now time.Time, final bool) *pb.Command {
	b := &pb.LedgerBatch{NodeId: p.cfg.NodeID, Settle: !p.settled, Run: p.runID}
	live := p.cfg.LiveNodes()
	p.more = false
	for _, c := range p.snapshotCounters() {
		if len(b.Reports)+len(b.Grants) >= maxBatchItems {
			// The rest goes in the next batch, at once: a Raft entry
			// stays small however many keys see traffic.
			p.more = true
			break
		}
		if final {
			c.retireAll()
		} else {
			c.idleRelease(now, p.cfg.IdleRelease)
		}
		b.Reports = c.collectReports(b.Reports, now)
		if final {
			continue
		}
		if g := c.grantRequest(now, live, p.cfg); g != nil {
			b.Grants = append(b.Grants, g)
		}
	}
	if !b.Settle && len(b.Reports) == 0 && len(b.Grants) == 0 {
		return nil
	}
	p.seq++
	b.Seq = p.seq
	return &pb.Command{RequestId: newRequestID(), Body: &pb.Command_Ledger{Ledger: b}}
}

// Counter states.
const (
	stateNone      int32 = iota // no grant held
	stateActive                 // holding a grant of the current period
	stateExhausted              // the ledger had nothing left to grant
	stateUnknown                // the key is not in the plan
	stateNoQuota                // the plan has no quota: count only
)

// recheckAfter is how long a "no quota" or "unknown key" answer is trusted.
const recheckAfter = time.Second

// retiredLinger is how long a retired grant stays on its counter after its
// last report, so a Take that spent one of its units as it was retired
// still has its count reported.
const retiredLinger = 2 * time.Second

// grant is what this node holds of a key's quota for one period, and the
// requests admitted from it not yet reported. A request counts on a day
// of the grant's period: the day follows the grant it spent.
type grant struct {
	span     limiter.Span // [0, 0) for the counts of a plan without a quota
	avail    atomic.Int64 // units not yet spent
	received time.Time    // when the first units arrived (pool clock)

	day   atomic.Int64 // the day count is for
	count atomic.Int64 // admitted on day, not yet reported

	// Under the counter's mu.
	otherDays map[int64]int64 // counts of other days not yet reported
	release   int64           // units handed back, not yet reported
	retiredAt time.Time       // zero while the grant is in force
}

// record counts one request admitted from the grant on a day.
func (g *grant) record(c *Counter, day int64) {
	if g.day.Load() != day {
		c.mu.Lock()
		if old := g.day.Load(); old != day {
			if n := g.count.Swap(0); n > 0 {
				if g.otherDays == nil {
					g.otherDays = map[int64]int64{}
				}
				g.otherDays[old] += n
			}
			g.day.Store(day)
		}
		c.mu.Unlock()
	}
	g.count.Add(1)
}

// drain takes every unit left, leaving transient decrements of racing
// Takes to undo themselves.
func (g *grant) drain() int64 {
	for {
		v := g.avail.Load()
		if v <= 0 {
			return 0
		}
		if g.avail.CompareAndSwap(v, 0) {
			return v
		}
	}
}

// Counter is one key's quota in one plan on this node. Take and Count are
// the request path: atomic operations, no lock shared by all requests, no
// allocation.
type Counter struct {
	pool          *QuotaPool
	planID, keyID string

	cur        atomic.Pointer[grant] // the grant in force, or the no-quota counts
	state      atomic.Int32
	checkUntil atomic.Int64 // ledger second until which Unknown / NoQuota hold
	limit      atomic.Int64
	remaining  atomic.Int64 // cluster-wide, beyond what this node holds
	lowWater   atomic.Int64
	wantRefill atomic.Bool

	admitted atomic.Int64 // admitted since the counter was made (demand)
	lastUse  atomic.Int64 // Unix nanoseconds of the last request

	mu        sync.Mutex
	retired   []*grant      // grants no longer in force, with counts or units to report
	revokedAt uint64        // grants decided at or before this log index are void
	waitCh    chan struct{} // closed when a grant answer arrives
	inflight  bool
	lastAsk   time.Time
	// askEvery is how often an exhausted key asks again: it doubles while
	// the answer stays "nothing left" (up to maxAskEvery), and an Event
	// from the log (an extension, units handed back, a plan change) makes
	// it ask at once.
	askEvery time.Duration
	lastSeen int64 // admitted at the last refill decision
	meter    limiter.DemandMeter
}

// Take spends one unit of the key's quota. It waits (bounded by ctx) only
// when this node holds no unit and the ledger has not said the quota is
// spent. Periods are decided on the ledger's clock (the leader's), not on
// this node's.
func (c *Counter) Take(ctx context.Context, now time.Time) limiter.QuotaDecision {
	for {
		// Again after each wait: a grant answer also measures the offset
		// to the leader's clock.
		sec := c.pool.ledgerSec(now)
		st := c.state.Load()
		g := c.cur.Load()
		switch st {
		case stateNoQuota:
			if c.fresh(sec) && g != nil {
				c.use(now)
				g.record(c, DayOf(sec))
				return limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: -1, Remaining: -1}
			}
		case stateUnknown:
			if c.fresh(sec) {
				return limiter.QuotaDecision{Status: limiter.QuotaUnknown}
			}
		case stateActive, stateExhausted:
			if g == nil || !g.span.Contains(sec) {
				c.expire(g, sec)
				break
			}
			end := time.Unix(g.span.End, 0).Add(-time.Duration(c.pool.offset.Load()))
			if left := g.avail.Add(-1); left >= 0 {
				c.use(now)
				g.record(c, DayOf(sec))
				if left < c.lowWater.Load() {
					c.askRefill()
				}
				return limiter.QuotaDecision{
					Status:    limiter.QuotaAllowed,
					Limit:     c.limit.Load(),
					Remaining: c.remaining.Load() + left,
					ResetAt:   end,
				}
			}
			g.avail.Add(1)
			if st == stateExhausted {
				c.askRefill()
				return limiter.QuotaDecision{
					Status:     limiter.QuotaExhausted,
					Limit:      c.limit.Load(),
					ResetAt:    end,
					RetryAfter: end.Sub(now),
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

// fresh tells whether a "no quota" or "unknown key" answer still holds at
// ledger second sec: for recheckAfter after it came, and not if the clock
// went back before it.
func (c *Counter) fresh(sec int64) bool {
	until := c.checkUntil.Load()
	return sec < until && sec >= until-int64(recheckAfter/time.Second)
}

// Count records one admitted request of a plan without a quota.
func (c *Counter) Count(now time.Time) {
	g := c.cur.Load()
	if g == nil || g.span.End != 0 {
		g = c.noQuotaGrant()
	}
	c.use(now)
	g.record(c, DayOf(c.pool.ledgerSec(now)))
}

func (c *Counter) use(now time.Time) {
	c.admitted.Add(1)
	c.lastUse.Store(now.UnixNano())
}

// noQuotaGrant installs the counts of a plan without a quota.
func (c *Counter) noQuotaGrant() *grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.cur.Load()
	if g != nil && g.span.End == 0 {
		return g
	}
	c.retireLocked()
	g = &grant{}
	c.cur.Store(g)
	return g
}

// retireLocked takes the grant in force out of service: its units left
// are handed back in the next batch, its counts reported. mu is held.
func (c *Counter) retireLocked() {
	g := c.cur.Swap(nil)
	if g == nil {
		return
	}
	g.release += g.drain()
	g.retiredAt = c.pool.cfg.Now()
	c.retired = append(c.retired, g)
}

// retireAll hands back everything held (a clean stop).
func (c *Counter) retireAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retireLocked()
	c.state.Store(stateNone)
}

// reset forgets every grant without handing anything back: the ledger has
// settled them.
func (c *Counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.cur.Swap(nil); g != nil {
		g.drain()
	}
	c.retired = nil
	c.inflight = false
	c.state.Store(stateNone)
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

// revoke hands back what the counter holds: the log changed the key's
// quota at index, and grants decided before that are void. A key in use
// asks for a new grant at once.
func (c *Counter) revoke(index uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revokedAt = max(c.revokedAt, index)
	if c.cur.Load() == nil && c.state.Load() == stateNone {
		return false
	}
	c.retireLocked()
	c.state.Store(stateNone)
	c.lastAsk, c.askEvery = time.Time{}, 0
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
// every ReportInterval, so waiting would outlast most deadlines).
func (c *Counter) waitChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.cur.Load()
	switch st := c.state.Load(); {
	case st == stateExhausted && g != nil:
		return nil
	case st == stateActive && g != nil && g.avail.Load() > 0:
		return nil
	}
	c.wantRefill.Store(true)
	c.pool.poke()
	return c.waitCh
}

// expire takes a grant out of service when the ledger's clock is outside
// its period: the ledger starts the new period without it.
func (c *Counter) expire(g *grant, sec int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.cur.Load(); cur != g || (g != nil && g.span.Contains(sec)) {
		return // another Take got there first
	}
	if g != nil && c.pool.cfg.Now().Sub(g.received) < c.pool.cfg.ReportInterval {
		// A grant this fresh should be in force: the clocks disagree
		// (the offset is being measured again). Ask again, but not in
		// a loop.
		c.backoff()
		c.lastAsk = c.pool.cfg.Now()
	}
	c.retireLocked()
	c.state.Store(stateNone)
}

// collectReports appends the counts not yet reported and the units handed
// back, and forgets retired grants with nothing left to say.
func (c *Counter) collectReports(out []*pb.UsageReport, now time.Time) []*pb.UsageReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.cur.Load(); g != nil {
		out = c.reportsOf(out, g)
	}
	keep := c.retired[:0]
	for _, g := range c.retired {
		n := len(out)
		out = c.reportsOf(out, g)
		if g.release > 0 {
			out = append(out, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: g.span.Start, PeriodEnd: g.span.End, Day: g.span.ClampDay(g.day.Load()), Release: g.release})
			g.release = 0
		}
		if len(out) > n || now.Sub(g.retiredAt) < retiredLinger {
			keep = append(keep, g)
		}
	}
	clear(c.retired[len(keep):])
	c.retired = keep
	return out
}

// reportsOf appends a grant's counts not yet reported; mu is held.
func (c *Counter) reportsOf(out []*pb.UsageReport, g *grant) []*pb.UsageReport {
	for d, n := range g.otherDays {
		out = append(out, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: g.span.Start, PeriodEnd: g.span.End, Day: d, Count: n})
	}
	clear(g.otherDays)
	if n := g.count.Swap(0); n > 0 {
		out = append(out, &pb.UsageReport{PlanId: c.planID, KeyId: c.keyID, PeriodStart: g.span.Start, PeriodEnd: g.span.End, Day: g.day.Load(), Count: n})
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
	if d := now.Sub(c.lastAsk); d >= 0 && d < c.askEvery {
		return nil // an exhausted or lapsed answer: ask again after askEvery (at once if the clock went back)
	}
	remaining := int64(-1)
	if g := c.cur.Load(); g != nil && g.span.End != 0 {
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
func (c *Counter) idleRelease(now time.Time, idle time.Duration) {
	last := c.lastUse.Load()
	if last > now.UnixNano() {
		c.lastUse.CompareAndSwap(last, now.UnixNano()) // the clock went back: idle from now
		return
	}
	if c.state.Load() != stateActive || now.UnixNano()-last < int64(idle) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() != stateActive {
		return
	}
	c.retireLocked()
	c.state.Store(stateNone)
}

// backoff doubles the wait before the next ask, from ReportInterval up to
// maxAskEvery of them; mu is held.
func (c *Counter) backoff() {
	ri := c.pool.cfg.ReportInterval
	c.askEvery = min(max(2*c.askEvery, ri), maxAskEvery*ri)
}

// applyGrant takes the ledger's answer to a grant request, decided at log
// index and received at ledger second sec.
func (c *Counter) applyGrant(r *pb.GrantResult, index uint64, sec int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = false
	defer func() {
		close(c.waitCh)
		c.waitCh = make(chan struct{})
	}()
	span := limiter.Span{Start: r.PeriodStart, End: r.PeriodEnd}
	switch {
	case index <= c.revokedAt:
		// Decided before a revocation this node applied already: hand the
		// units straight back and ask again.
		if r.Granted > 0 {
			c.retired = append(c.retired, &grant{span: span, release: r.Granted, retiredAt: c.pool.cfg.Now()})
		}
		c.wantRefill.Store(true)
		return
	case r.Unknown:
		c.retireLocked()
		c.checkUntil.Store(sec + int64(recheckAfter/time.Second))
		c.state.Store(stateUnknown)
		return
	case r.Limit < 0:
		if g := c.cur.Load(); g == nil || g.span.End != 0 {
			c.retireLocked()
			c.cur.Store(&grant{})
		}
		c.checkUntil.Store(sec + int64(recheckAfter/time.Second))
		c.state.Store(stateNoQuota)
		return
	}
	g := c.cur.Load()
	if g == nil || g.span != span {
		c.retireLocked()
		g = &grant{span: span, received: c.pool.cfg.Now()}
		g.day.Store(span.ClampDay(DayOf(sec)))
		c.cur.Store(g)
	}
	c.limit.Store(r.Limit)
	c.remaining.Store(r.Remaining)
	c.lowWater.Store(limiter.LowWatermark(r.Granted))
	g.avail.Add(r.Granted)
	switch {
	case !span.Contains(sec):
		// The ledger's period is not the one this node's clock is in: the
		// clock offset was just measured again, so ask again, but not in
		// a loop.
		c.state.Store(stateActive)
		c.backoff()
		c.lastAsk = c.pool.cfg.Now()
	case r.Granted > 0 || g.avail.Load() > 0:
		c.state.Store(stateActive)
		c.askEvery = 0
	default:
		c.state.Store(stateExhausted)
		c.backoff()
	}
}
