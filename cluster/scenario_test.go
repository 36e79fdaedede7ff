package cluster

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// The numbered scenarios of the ledger's known failures, each as it was
// found: a test per scenario that failed before the ledger counted grants
// per period, took time from the leader only and numbered each node's
// batches, and passes now.

// TestScenario1PlanPeriodChangeMidPeriod: changing a plan's quota period
// (DAY→WEEK→DAY) or removing the quota and adding it back while a node
// holds units must not let the ledger grant them again.
func TestScenario1PlanPeriodChangeMidPeriod(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []*pb.QuotaSettings
	}{
		{"day week day", []*pb.QuotaSettings{quota(100, "WEEK", 0), quota(100, "DAY", 0)}},
		{"quota removed and added back", []*pb.QuotaSettings{nil, quota(100, "DAY", 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestFSM(t, t0)
			h.setup(quota(100, "DAY", 0))
			if g := h.grant("n1", "p1", "k1", 60); g.Granted != 60 {
				t.Fatalf("first grant: %v", g)
			}
			for _, q := range tc.edits {
				h.ok(cmdPlan("p1", false, q, "a1/prod"))
				h.grant("n3", "p1", "k1", 0) // the ledger meets the key under each plan
			}
			g := h.grant("n2", "p1", "k1", 100)
			t.Logf("after the edits n2 is granted %d while n1 holds 60 (limit 100)", g.Granted)
			if g.Granted+60 > 100 {
				t.Fatalf("granted %d + 60 held > limit 100", g.Granted)
			}
		})
	}
}

// TestScenario1SettledUnitsSurviveAnOffsetChange: units a crashed node held
// count as used; an offset change mid-period must not forget them.
func TestScenario1SettledUnitsSurviveAnOffsetChange(t *testing.T) {
	h := newTestFSM(t, t0) // 13 March
	h.setup(quota(100, "MONTH", 0))
	if g := h.grant("n1", "p1", "k1", 45); g.Granted != 45 {
		t.Fatalf("grant: %v", g)
	}
	h.ok(cmdLedger(&pb.LedgerBatch{NodeId: "n1", Settle: true})) // n1 restarted
	h.ok(cmdPlan("p1", false, quota(100, "MONTH", 1), "a1/prod"))
	g := h.grant("n2", "p1", "k1", 100)
	t.Logf("after the offset change n2 is granted %d; n1's 45 were settled (limit 100)", g.Granted)
	if g.Granted+45 > 100 {
		t.Fatalf("granted %d + 45 settled > limit 100", g.Granted)
	}
}

// TestScenario1PlanEditsUnderTrafficThroughPools: two nodes spend while the
// plan's period flips; what they admit in the day stays within the limit.
func TestScenario1PlanEditsUnderTrafficThroughPools(t *testing.T) {
	e := newQuotaEnv(t, quota(100, "DAY", 0), nil, nil)
	e.store.FSM().OnQuotaChange(e.pool.Event)
	p2 := e.newPool(t, "n2", e.store, nil)
	c1, c2 := e.pool.Counter("p1", "k1"), p2.Counter("p1", "k1")
	admitted := 0
	for i := 0; i < 30; i++ {
		if e.take(c1, time.Second).Status == limiter.QuotaAllowed {
			admitted++
		}
		e.clk.Advance(20 * time.Millisecond) // traffic, so grants grow
	}
	for _, q := range []*pb.QuotaSettings{quota(100, "WEEK", 0), quota(100, "DAY", 0), nil, quota(100, "DAY", 0)} {
		if res, err := e.store.Apply(context.Background(), cmdPlan("p1", false, q, "a1/prod")); err != nil || res.Code != 0 {
			t.Fatalf("edit: %v %v", err, res)
		}
		for i := 0; i < 40; i++ {
			for _, c := range []*Counter{c1, c2} {
				if d := e.take(c, time.Second); d.Status == limiter.QuotaAllowed && d.Limit >= 0 {
					admitted++
				}
			}
			e.clk.Advance(5 * time.Millisecond)
		}
	}
	t.Logf("admitted %d on a daily limit of 100 across four plan edits", admitted)
	if admitted > 100 {
		t.Fatalf("admitted %d on a limit of 100", admitted)
	}
}

// TestScenario2FollowerClockDoesNotMoveTheCalendar: a follower whose clock
// runs 30 days (or an hour) ahead proposes ledger batches; the ledger's
// time is the leader's all the same, and the follower spends today's quota.
func TestScenario2FollowerClockDoesNotMoveTheCalendar(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.start("n1", 1)
	waitFor(t, 10*time.Second, func() bool { return n1.IsLeader() })
	ahead := 30 * 24 * time.Hour
	cfg := tc.config("n2", 1, []string{n1.GossipAddr()})
	cfg.Now = func() time.Time { return time.Now().Add(ahead) }
	n2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	waitFor(t, 10*time.Second, func() bool { id, _ := n2.Leader(); return id == "n1" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cmd := range []*pb.Command{
		cmdCreateAPI("a1"), cmdDeploy("a1", "d1", "prod"), cmdKey("k1", "valueXofXkeyXoneX0000000"),
		cmdPlan("p1", true, quota(10, "DAY", 0), "a1/prod"), cmdAttach("p1", "k1"),
	} {
		if res, err := n2.Apply(ctx, cmd); err != nil || res.Code != 0 {
			t.Fatalf("setup through the follower: %v %v", err, res)
		}
	}
	pool, err := NewQuotaPool(QuotaPoolConfig{NodeID: "n2", Ledger: n2, Now: cfg.Now, ReportInterval: 20 * time.Millisecond, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	pool.Start()
	t.Cleanup(func() { _ = pool.Close(context.Background()) })
	c := pool.Counter("p1", "k1")
	admitted := 0
	for i := 0; i < 15; i++ {
		tctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d := c.Take(tctx, cfg.Now())
		cancel()
		if d.Status == limiter.QuotaAllowed {
			admitted++
		}
	}
	today := DayOf(time.Now().Unix())
	var l *pb.KeyLedger
	waitFor(t, 5*time.Second, func() bool {
		l = ledgerIn(n1.KeyLedgers("p1"), "k1")
		return l != nil && l.Daily[today] == int64(admitted)
	})
	off, skewed := pool.ClockOffset()
	t.Logf("follower 30 days ahead: %d admitted on a limit of 10, counted on today %d (ledger period starts day %d); measured offset %v, skewed %v",
		admitted, l.Daily[today], DayOf(l.PeriodStart), off.Round(time.Second), skewed)
	if admitted != 10 || DayOf(l.PeriodStart) != today || !skewed || off > -ahead+time.Minute {
		t.Fatalf("admitted %d (want 10), period day %d (want %d), offset %v skewed %v", admitted, DayOf(l.PeriodStart), today, off, skewed)
	}
}

// TestScenario2NodeAnHourAheadSpendsTodaysGrant: at 23:10 by the leader, a
// node whose clock says 00:10 spends today's quota, not tomorrow's.
func TestScenario2NodeAnHourAheadSpendsTodaysGrant(t *testing.T) {
	e := newQuotaEnv(t, quota(10, "DAY", 0), nil, nil)
	at := date(2024, time.March, 13, 23, 10, 0)
	e.clk.Set(at)
	ahead := func() time.Time { return e.clk.Now().Add(time.Hour) }
	pa := e.newPool(t, "n2", e.store, func(c *QuotaPoolConfig) { c.Now = ahead })
	ca, cb := pa.Counter("p1", "k1"), e.pool.Counter("p1", "k1")
	admitted := 0
	for i := 0; i < 15; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if ca.Take(ctx, ahead()).Status == limiter.QuotaAllowed {
			admitted++
		}
		cancel()
		if e.take(cb, time.Second).Status == limiter.QuotaAllowed {
			admitted++
		}
	}
	today, tomorrow := DayOf(at.Unix()), DayOf(at.Unix())+1
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		return l.GetDaily()[today]+l.GetDaily()[tomorrow] == int64(admitted)
	}, "every admitted request reported")
	l := e.ledger("p1", "k1")
	t.Logf("at 23:10, one node an hour ahead: %d admitted on a limit of 10; today %d, tomorrow %d", admitted, l.Daily[today], l.Daily[tomorrow])
	if admitted != 10 || l.Daily[today] != 10 || l.Daily[tomorrow] != 0 {
		t.Fatalf("admitted %d, today %d, tomorrow %d: want 10, 10, 0", admitted, l.Daily[today], l.Daily[tomorrow])
	}
}

// TestScenario3ReportsFollowTheGrantsPeriod: a node whose clock is past
// midnight reports requests it spent from yesterday's grant; they count on
// the grant's period and leave the grant, instead of being charged to
// another period or staying stuck in it.
func TestScenario3ReportsFollowTheGrantsPeriod(t *testing.T) {
	h := newTestFSM(t, date(2024, time.March, 13, 23, 59, 59))
	h.setup(quota(10, "DAY", 0))
	g := h.grant("n1", "p1", "k1", 8)
	today := DayOf(g.PeriodStart)
	h.report("n1", "p1", "k1", today+1, 5, g.PeriodStart, 0) // the node's clock says tomorrow
	l := h.ledger("p1", "k1")
	t.Logf("after the report: today %d, tomorrow %d, n1 holds %d", l.Daily[today], l.Daily[today+1], heldBy(l, "n1"))
	if l.Daily[today] != 5 || l.Daily[today+1] != 0 || heldBy(l, "n1") != 3 {
		t.Fatalf("want 5 counted today, 0 tomorrow, 3 held: %v", l)
	}
}

// TestScenario4UpdateUsageBelowWhatNodesHold: setting the remaining quota
// to 0 while nodes hold units revokes them: nothing more is admitted.
func TestScenario4UpdateUsageBelowWhatNodesHold(t *testing.T) {
	e := newQuotaEnv(t, quota(1000, "DAY", 0), nil, nil)
	pools := []*QuotaPool{e.pool, e.newPool(t, "n2", e.store, nil), e.newPool(t, "n3", e.store, nil)}
	e.store.FSM().OnQuotaChange(func(ev QuotaEvent) {
		for _, p := range pools { // every node applies the log
			p.Event(ev)
		}
	})
	for i := 0; i < 60; i++ {
		p := pools[i%3]
		c := p.Counter("p1", "k1")
		if d := e.take(c, 2*time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take %d: %+v", i, d)
		}
		e.clk.Advance(20 * time.Millisecond) // traffic, so grants grow
	}
	var held int64
	for _, p := range pools {
		held += heldUnits(p.Counter("p1", "k1"))
	}
	if res, err := e.store.Apply(context.Background(), cmdSetRemaining("p1", "k1", 0)); err != nil || res.Code != 0 {
		t.Fatalf("set remaining: %v %v", err, res)
	}
	after := 0
	for i := 0; i < 300; i++ {
		c := pools[i%3].Counter("p1", "k1")
		if e.take(c, 200*time.Millisecond).Status == limiter.QuotaAllowed {
			after++
		}
	}
	t.Logf("nodes held %d units when the remaining was set to 0; %d admitted after", held, after)
	if held == 0 || after != 0 {
		t.Fatalf("held %d, admitted %d after remaining 0: want some held, none admitted", held, after)
	}
	eventually(t, 5*time.Second, func() bool { return sumHeld(e.ledger("p1", "k1")) == 0 }, "the revoked units handed back")
}

// TestScenario5ClockPastThePeriodEndDoesNotSpin: a node whose clock is past
// midnight while the leader's is not must neither spin asking nor answer
// 503: it spends the leader's day.
func TestScenario5ClockPastThePeriodEndDoesNotSpin(t *testing.T) {
	e := newQuotaEnv(t, quota(100, "DAY", 0), nil, nil)
	e.clk.Set(date(2024, time.March, 13, 23, 30, 0))
	ahead := func() time.Time { return e.clk.Now().Add(time.Hour) }
	p := e.newPool(t, "n2", e.store, func(c *QuotaPoolConfig) { c.Now = ahead })
	c := p.Counter("p1", "k1")
	before := p.Batches.Load()
	admitted := 0
	start := time.Now()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if c.Take(ctx, ahead()).Status == limiter.QuotaAllowed {
			admitted++
		}
		cancel()
	}
	batches := p.Batches.Load() - before
	t.Logf("20 requests in %v: %d admitted, %d ledger batches", time.Since(start).Round(time.Millisecond), admitted, batches)
	if admitted != 20 || batches > 40 {
		t.Fatalf("admitted %d of 20 with %d batches: want all, and no ask loop", admitted, batches)
	}
}

// gatedLedger applies batches through next, and can lose the answer of one
// batch and then stay cut off until released.
type gatedLedger struct {
	next    LedgerClient
	mu      sync.Mutex
	lose    bool // lose the next answer, then cut off
	cut     bool
	resent  atomic.Int64 // batches refused while cut off
	applied atomic.Int64 // batches applied with their answer delivered
}

func (g *gatedLedger) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	g.mu.Lock()
	lose, cut := g.lose, g.cut
	if lose {
		g.lose, g.cut = false, true
	}
	g.mu.Unlock()
	if cut {
		g.resent.Add(1)
		return nil, ErrNotLeader
	}
	res, err := g.next.ApplyLedger(ctx, cmd)
	if lose && err == nil {
		return nil, ErrUnknownOutcome
	}
	if err == nil {
		g.applied.Add(1)
	}
	return res, err
}

// TestScenario6BatchResentAfterALongPartitionAppliesOnce: a batch whose
// answer was lost is resent after a partition longer than the old
// 10-minute de-duplication window; it applies once.
func TestScenario6BatchResentAfterALongPartitionAppliesOnce(t *testing.T) {
	var gate *gatedLedger
	e := newQuotaEnv(t, quota(100, "DAY", 0), func(s *MemStore) LedgerClient {
		gate = &gatedLedger{next: s}
		return gate
	}, nil)
	c := e.pool.Counter("p1", "k1")
	for i := 0; i < 6; i++ {
		if d := e.take(c, 2*time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take %d: %+v", i, d)
		}
	}
	// Once the six are reported and a unit is held ahead of need, the
	// seventh is admitted from it and its report goes in the batch whose
	// answer is lost: a node sends a batch only when it has something to
	// report or ask.
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		return l.GetDaily()[DayOf(e.clk.Now().Unix())] == 6 && heldBy(l, "n1") > 0
	}, "six reported, a unit held")
	gate.mu.Lock()
	gate.lose = true
	gate.mu.Unlock()
	if d := e.take(c, 2*time.Second); d.Status != limiter.QuotaAllowed {
		t.Fatalf("take 7: %+v", d)
	}
	eventually(t, 5*time.Second, func() bool { return gate.resent.Load() > 0 }, "the report applied, its answer lost, the node cut off")
	e.clk.Advance(11 * time.Minute)
	for i := 0; i < 1100; i++ { // enough entries for the log to prune what it remembers by time
		if _, err := e.store.Apply(context.Background(), &pb.Command{Body: &pb.Command_Noop{Noop: &pb.Noop{}}}); err != nil {
			t.Fatal(err)
		}
	}
	day := DayOf(e.clk.Now().Add(-11 * time.Minute).Unix())
	applied := gate.applied.Load()
	gate.mu.Lock()
	gate.cut = false
	gate.mu.Unlock()
	eventually(t, 5*time.Second, func() bool { return gate.applied.Load() > applied }, "the resend applied and answered")
	got := e.ledger("p1", "k1").GetDaily()[day]
	t.Logf("7 admitted; the ledger counts %d after the resend", got)
	if got != 7 {
		t.Fatalf("used %d for 7 admitted", got)
	}
}

// TestScenario7MidnightRequestsCountOnTheirGrantsDay: a node whose clock is
// 2s ahead admits requests in the last seconds of the leader's day: they
// count on that day and the new day's quota is whole.
func TestScenario7MidnightRequestsCountOnTheirGrantsDay(t *testing.T) {
	e := newQuotaEnv(t, quota(50, "DAY", 0), nil, nil)
	e.clk.Set(date(2024, time.March, 13, 23, 59, 59))
	ahead := func() time.Time { return e.clk.Now().Add(2 * time.Second) }
	p := e.newPool(t, "n2", e.store, func(c *QuotaPoolConfig) { c.Now = ahead })
	c := p.Counter("p1", "k1")
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		d := c.Take(ctx, ahead())
		cancel()
		if d.Status != limiter.QuotaAllowed {
			t.Fatalf("take %d at the day flip: %+v", i, d)
		}
	}
	day := DayOf(date(2024, time.March, 13, 0, 0, 0).Unix())
	e.clk.Set(date(2024, time.March, 14, 0, 0, 5))
	eventually(t, 5*time.Second, func() bool { return e.ledger("p1", "k1").GetDaily()[day] == 5 }, "the 5 requests counted on the 13th")
	l := e.ledger("p1", "k1")
	q, _ := limiter.ParseQuota("DAY", 0, 50)
	v := viewAt(l, q, e.clk.Now().Unix())
	t.Logf("13th: %d, 14th: %d; the 14th's quota: %d consumed, %d held, %d left of 50", l.Daily[day], l.Daily[day+1], v.consumed, v.held, max(v.avail(), 0))
	if l.Daily[day+1] != 0 || v.consumed != 0 || max(v.avail(), 0)+v.held != 50 {
		t.Fatalf("the new day's quota is not whole: %v", l)
	}
}

// TestScenario2SkewedLeaderStampsTheVotersTime: a node whose clock runs 30
// days ahead wins leadership; it stamps the log with the median of the
// voters' clocks, not its own, so the quota calendar does not move.
func TestScenario2SkewedLeaderStampsTheVotersTime(t *testing.T) {
	tc := newTestCluster(t)
	ahead := 30 * 24 * time.Hour
	open := func(id string, skew time.Duration, join ...string) *Node {
		cfg := tc.config(id, 3, join)
		cfg.Now = func() time.Time { return time.Now().Add(skew) }
		cfg.ClockProbe = 50 * time.Millisecond
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tc.nodes[id] = n
		t.Cleanup(func() { n.Close() })
		return n
	}
	n1 := open("n1", 0)
	n2 := open("n2", ahead, n1.GossipAddr())
	n3 := open("n3", -2*time.Second, n1.GossipAddr())
	waitFor(t, 15*time.Second, func() bool { return len(tc.voters()) == 3 && tc.leader() != nil })
	waitFor(t, 10*time.Second, func() bool {
		return n2.CalendarOffset() < -ahead+5*time.Second && n1.CalendarOffset().Abs() < 5*time.Second
	})
	if !n2.IsLeader() {
		if err := tc.leader().raft.LeadershipTransferToServer(raft.ServerID("n2"), raft.ServerAddress(n2.RaftAddr())).Error(); err != nil {
			t.Fatalf("transfer leadership to the skewed node: %v", err)
		}
	}
	waitFor(t, 10*time.Second, func() bool { return n2.IsLeader() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n3.Apply(ctx, cmdCreateAPI("a1"))
	if err != nil || res.Code != 0 {
		t.Fatalf("apply through the skewed leader: %v %v", err, res)
	}
	off := time.Until(time.Unix(0, res.TimeUnixNano))
	t.Logf("leader 30 days ahead; calendar offsets n1 %v, n2 %v, n3 %v; the entry's time is %v from the true time",
		n1.CalendarOffset().Round(time.Millisecond), n2.CalendarOffset().Round(time.Millisecond), n3.CalendarOffset().Round(time.Millisecond), off.Round(time.Millisecond))
	if off.Abs() > 5*time.Second {
		t.Fatalf("the skewed leader stamped a time %v off", off)
	}
}

func TestCalendarMedian(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{0}, 0},
		{[]int64{0, 100}, 0},
		{[]int64{0, -100}, 0},
		{[]int64{0, -100, -100}, -100},
		{[]int64{0, 5, -2}, 0},
		{[]int64{0, -90, -100, 7}, 0},
		{[]int64{0, -90, -100, -80}, -80},
	} {
		if got := median(slices.Clone(c.in)); got != c.want {
			t.Errorf("median(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}
