package cluster

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// The ledger simulation: real QuotaPools and Counters and the real FSM,
// driven step by step from one seeded random source, with a fake clock per
// node and a fake network between the nodes and the leader.
//
// Faults: clocks skewed (±2s, ±1h, +30 days) and jumping back and forth;
// batches dropped before the leader, applied with the answer lost, applied
// and delivered again much later (up to hours: past the old dedup window);
// nodes cut off from the leader for up to 20 minutes; leader changes (the
// ledger's time is the new leader's clock); node restarts (a new run that
// settles); the log's quota events reaching each node late. Admin edits are
// interleaved: the plan's period, offset and limit, removing the quota and
// adding it back, UpdateUsage up and down, a key detached and attached.
//
// After every step it checks, for every key and the period that contains
// the ledger's time:
//
//   - the ledger never counts less than the truth: reported + settled +
//     held (by grants overlapping the period) ≥ the requests admitted on
//     the period's days + the units nodes can still spend in it. This is
//     what makes a grant decision safe: no unit is spendable twice;
//   - admitted on the period's days ≤ the highest limit + extension the
//     period had (or, for a period that a plan edit or a clock brought in,
//     what the ledger counted in it when it came in: requests admitted
//     under the old calendar and units nodes held then);
//   - no grant holds a negative or zero amount.
//
// At the end it heals every fault and checks that every key with quota
// left is admitted again (nothing stuck in a grant nobody spends).
//
// It runs 2000 seeds (150 under the race detector or -short; .ci/run runs
// the 2000 without it). A failing seed is printed with the last steps;
// TOLLGATE_SIM_SEED=n replays it alone, TOLLGATE_SIM_SEEDS=n runs more.

const (
	simNodes = 3
	simSteps = 150
)

var simKeys = []string{"k1", "k2"}

type simNode struct {
	id       string
	skew     time.Duration
	pool     *QuotaPool
	events   []simEvent
	cutUntil time.Time
}

type simEvent struct {
	at time.Time
	ev QuotaEvent
}

type simStash struct {
	at  time.Time
	cmd *pb.Command
}

type simStats struct {
	steps, batches, dropped, lostReplies, redelivered, cuts, leaderChanges,
	restarts, edits, admitted, exhausted, skews int
}

func (a *simStats) add(b simStats) {
	a.steps += b.steps
	a.batches += b.batches
	a.dropped += b.dropped
	a.lostReplies += b.lostReplies
	a.redelivered += b.redelivered
	a.cuts += b.cuts
	a.leaderChanges += b.leaderChanges
	a.restarts += b.restarts
	a.edits += b.edits
	a.admitted += b.admitted
	a.exhausted += b.exhausted
	a.skews += b.skews
}

type simPeriod struct {
	key        string
	start, end int64
}

type sim struct {
	t      testing.TB
	seed   int64
	rng    *rand.Rand
	now    time.Time // true time
	fsm    *FSM
	index  uint64
	leader int
	nodes  []*simNode
	stash  []simStash
	trace  []string
	stats  simStats
	failed bool

	admitted map[string]map[int64]int64 // key -> day -> admitted from quota grants
	maxEff   map[simPeriod]int64
	current  map[string]simPeriod // key -> the period the last check was in
}

// simDone is a context already done: a Take that would wait answers at
// once (the simulation runs one step at a time, in one goroutine).
var simDone = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func newSim(t testing.TB, seed int64) *sim {
	s := &sim{
		t: t, seed: seed, rng: rand.New(rand.NewSource(seed)),
		now:      date(2024, time.February, 27, 20, 0, 0).Add(time.Duration(seed%86400) * time.Second),
		fsm:      NewFSM(),
		admitted: map[string]map[int64]int64{},
		maxEff:   map[simPeriod]int64{},
		current:  map[string]simPeriod{},
	}
	s.fsm.OnQuotaChange(s.onQuota)
	for i := 0; i < simNodes; i++ {
		n := &simNode{id: fmt.Sprintf("n%d", i+1)}
		n.pool = s.newPool(n)
		s.nodes = append(s.nodes, n)
	}
	for _, cmd := range []*pb.Command{
		cmdCreateAPI("a1"),
		cmdDeploy("a1", "d1", "prod"),
		cmdKey("k1", "valueXofXkeyXoneX0000000"),
		cmdKey("k2", "valueXofXkeyXtwoX0000000"),
		cmdPlan("p1", true, quota(int64(20+s.rng.Intn(200)), "DAY", 0), "a1/prod"),
		cmdAttach("p1", "k1"),
		cmdAttach("p1", "k2"),
	} {
		if res := s.propose(cmd); res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("setup: %v", res)
		}
	}
	return s
}

func (s *sim) newPool(n *simNode) *QuotaPool {
	p, err := NewQuotaPool(QuotaPoolConfig{
		NodeID:         n.id,
		Ledger:         simClient{s, n},
		Now:            func() time.Time { return s.now.Add(n.skew) },
		ReportInterval: 500 * time.Millisecond,
		Horizon:        2 * time.Second,
		IdleRelease:    5 * time.Second,
		LiveNodes:      func() int { return simNodes },
		Logger:         discardLogger(),
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%s  ", s.now.Format("01-02 15:04:05.000"))+fmt.Sprintf(format, args...))
	if len(s.trace) > 60 {
		s.trace = s.trace[len(s.trace)-60:]
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.failed = true
	s.t.Fatalf("seed %d: %s\nreplay: TOLLGATE_SIM_SEED=%d go test ./cluster -run TestLedgerSimulation\nlast steps:\n%s",
		s.seed, fmt.Sprintf(format, args...), s.seed, strings.Join(s.trace, "\n"))
}

func (s *sim) leaderNow() time.Time { return s.now.Add(s.nodes[s.leader].skew) }

// propose applies a command as the leader would: stamped with the
// leader's clock, encoded, decoded, applied at the next index.
func (s *sim) propose(cmd *pb.Command) *pb.Result {
	stamp(cmd, s.leaderNow())
	data, err := proto.Marshal(cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	var dec pb.Command
	if err := proto.Unmarshal(data, &dec); err != nil {
		s.t.Fatal(err)
	}
	s.index++
	return s.fsm.ApplyCommand(s.index, &dec)
}

// onQuota queues a QuotaEvent for every node, in log order, to reach it a
// little later (a node applies the log after the leader).
func (s *sim) onQuota(ev QuotaEvent) {
	for _, n := range s.nodes {
		at := s.now.Add(time.Duration(s.rng.Intn(1500)) * time.Millisecond)
		if k := len(n.events); k > 0 && n.events[k-1].at.After(at) {
			at = n.events[k-1].at
		}
		n.events = append(n.events, simEvent{at, ev})
	}
}

// simClient is a node's way to the leader through the fake network.
type simClient struct {
	s *sim
	n *simNode
}

func (c simClient) ApplyLedger(_ context.Context, cmd *pb.Command) (*pb.Result, error) {
	s := c.s
	if s.now.Before(c.n.cutUntil) {
		return nil, ErrNotLeader
	}
	b := cmd.GetLedger()
	switch r := s.rng.Intn(100); {
	case r < 5:
		s.stats.dropped++
		s.logf("%s batch %d dropped on the way", c.n.id, b.GetSeq())
		return nil, ErrTimeout
	case r < 10:
		s.propose(cmd)
		s.stats.lostReplies++
		s.logf("%s batch %d applied, answer lost", c.n.id, b.GetSeq())
		return nil, ErrUnknownOutcome
	case r < 16 && !b.GetSettle():
		late := time.Duration(s.rng.Int63n(int64(3 * time.Hour)))
		s.stash = append(s.stash, simStash{s.now.Add(late), proto.Clone(cmd).(*pb.Command)})
	}
	res := s.propose(cmd)
	s.stats.batches++
	s.logf("%s batch %d (%d reports, %d grants) -> %s", c.n.id, b.GetSeq(), len(b.GetReports()), len(b.GetGrants()), grantsText(res))
	return res, nil
}

func grantsText(res *pb.Result) string {
	var parts []string
	for _, g := range res.GetLedger().GetGrants() {
		parts = append(parts, fmt.Sprintf("%s:%d/%d[%d,%d)", g.KeyId, g.Granted, g.Remaining, g.PeriodStart, g.PeriodEnd))
	}
	if res.GetLedger().GetStaleRun() {
		parts = append(parts, "stale run")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// step runs a few random actions and checks the invariants.
func (s *sim) step() {
	s.stats.steps++
	s.now = s.now.Add(time.Duration(s.rng.Intn(1500)) * time.Millisecond)
	if s.rng.Intn(100) < 3 {
		s.now = s.now.Add(time.Duration(1+s.rng.Intn(30)) * time.Hour)
		s.logf("time jumps ahead")
	}
	for a := 0; a < 4; a++ {
		switch r := s.rng.Intn(100); {
		case r < 40:
			s.traffic()
		case r < 75:
			n := s.nodes[s.rng.Intn(len(s.nodes))]
			n.pool.cycle(false)
		case r < 85:
			s.deliverEvents()
		case r < 88:
			s.redeliver()
		case r < 91:
			s.edit()
		case r < 93:
			s.leader = s.rng.Intn(len(s.nodes))
			s.stats.leaderChanges++
			s.logf("leader is now %s (clock %+v)", s.nodes[s.leader].id, s.nodes[s.leader].skew)
		case r < 95:
			s.skew()
		case r < 97:
			n := s.nodes[s.rng.Intn(len(s.nodes))]
			n.cutUntil = s.now.Add(time.Duration(1+s.rng.Intn(1200)) * time.Second)
			s.stats.cuts++
			s.logf("%s cut off from the leader until %s", n.id, n.cutUntil.Format("15:04:05"))
		case r < 98:
			n := s.nodes[s.rng.Intn(len(s.nodes))]
			n.pool = s.newPool(n)
			n.events = nil // a new process applies the log afresh
			s.stats.restarts++
			s.logf("%s restarts", n.id)
		}
		s.check()
	}
}

func (s *sim) traffic() {
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	key := simKeys[s.rng.Intn(len(simKeys))]
	c := n.pool.Counter("p1", key)
	now := s.now.Add(n.skew)
	k := s.rng.Intn(25)
	got := 0
	for i := 0; i < k; i++ {
		d := c.Take(simDone, now)
		switch {
		case d.Status == limiter.QuotaAllowed && d.Limit >= 0:
			s.admit(key, DayOf(n.pool.ledgerSec(now)))
			got++
			s.stats.admitted++
		case d.Status == limiter.QuotaExhausted:
			s.stats.exhausted++
		}
	}
	if k > 0 {
		s.logf("%s %d requests for %s: %d admitted", n.id, k, key, got)
	}
}

func (s *sim) admit(key string, day int64) {
	m := s.admitted[key]
	if m == nil {
		m = map[int64]int64{}
		s.admitted[key] = m
	}
	m[day]++
}

func (s *sim) deliverEvents() {
	for _, n := range s.nodes {
		i := 0
		for ; i < len(n.events) && !n.events[i].at.After(s.now); i++ {
			n.pool.Event(n.events[i].ev)
		}
		n.events = n.events[i:]
	}
}

func (s *sim) redeliver() {
	keep := s.stash[:0]
	for _, st := range s.stash {
		if st.at.After(s.now) {
			keep = append(keep, st)
			continue
		}
		b := st.cmd.GetLedger()
		res := s.propose(proto.Clone(st.cmd).(*pb.Command))
		s.stats.redelivered++
		s.logf("%s batch %d of run %.6s delivered again, late -> %s", b.NodeId, b.Seq, b.Run, grantsText(res))
	}
	s.stash = keep
}

func (s *sim) skew() {
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	choices := []time.Duration{0, 0, 0, 300 * time.Millisecond, -2 * time.Second, 2 * time.Second, time.Hour, -time.Hour, 30 * 24 * time.Hour}
	n.skew = choices[s.rng.Intn(len(choices))]
	s.stats.skews++
	s.logf("%s clock now off by %v", n.id, n.skew)
}

func (s *sim) edit() {
	s.stats.edits++
	plan := proto.Clone(s.fsm.Config().UsagePlans["p1"]).(*pb.UsagePlan)
	var cmd *pb.Command
	switch r := s.rng.Intn(6); r {
	case 0, 1:
		periods := []string{"DAY", "WEEK", "MONTH"}
		p := periods[s.rng.Intn(3)]
		var off int32
		switch p {
		case "WEEK":
			off = int32(s.rng.Intn(7))
		case "MONTH":
			off = int32(s.rng.Intn(28))
		}
		plan.Quota = quota(int64(s.rng.Intn(300)), p, off)
		if r == 1 && s.rng.Intn(3) == 0 {
			plan.Quota = nil
		}
		cmd = &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: plan}}}
		s.logf("plan quota set to %v", plan.Quota)
	case 2, 3:
		key := simKeys[s.rng.Intn(len(simKeys))]
		rem := int64(s.rng.Intn(150))
		cmd = cmdSetRemaining("p1", key, rem)
		s.logf("remaining of %s set to %d", key, rem)
	case 4:
		cmd = cmdDetach("p1", "k2")
		s.logf("k2 detached")
	case 5:
		cmd = cmdAttach("p1", "k2")
		s.logf("k2 attached")
	}
	res := s.propose(cmd)
	if res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		s.logf("  refused: %s", res.Message)
	}
}

// spendable is what nodes can still spend of a key in a period.
func (s *sim) spendable(key string, span limiter.Span) int64 {
	var sum int64
	for _, n := range s.nodes {
		n.pool.mu.Lock()
		c := n.pool.counters[counterKey{"p1", key}]
		n.pool.mu.Unlock()
		if c == nil {
			continue
		}
		if g := c.cur.Load(); g != nil && g.span.End != 0 && g.span.Overlaps(span) {
			sum += max(g.avail.Load(), 0)
		}
	}
	return sum
}

func (s *sim) check() {
	s.t.Helper()
	if s.failed {
		return
	}
	cfg := s.fsm.Config()
	q, ok := PlanQuota(cfg.UsagePlans["p1"])
	sec := floorDiv(s.leaderNow().UnixNano(), 1e9)
	for _, key := range simKeys {
		l := ledgerIn(s.fsm.KeyLedgers("p1"), key)
		if l == nil {
			l = &pb.KeyLedger{}
		}
		for _, g := range l.Grants {
			if g.Units <= 0 || g.End <= g.Start {
				s.fail("%s: a grant %v", key, g)
			}
		}
		if !ok {
			continue
		}
		v := viewAt(l, q, sec)
		span := v.span
		var admitted int64
		first, last := span.Days()
		for d := first; d <= last; d++ {
			admitted += s.admitted[key][d]
		}
		truth := admitted + s.spendable(key, span)
		if counted := v.consumed + v.held; counted < truth {
			s.fail("%s in [%s, %s): the ledger counts %d (consumed %d + held %d), but %d were admitted and %d more can be spent\nledger: %v",
				key, time.Unix(v.span.Start, 0).UTC().Format(time.DateTime), time.Unix(v.span.End, 0).UTC().Format(time.DateTime),
				counted, v.consumed, v.held, admitted, truth-admitted, l)
		}
		// A period that a plan edit (or the leader's clock) brings in may
		// already count more than its limit (requests admitted under the
		// old calendar, units nodes hold): from then on only those held
		// units may still be spent in it, until nodes apply the edit.
		p := simPeriod{key, v.span.Start, v.span.End}
		if s.current[key] != p {
			s.current[key] = p
			s.maxEff[p] = max(s.maxEff[p], v.consumed+v.held)
		}
		s.maxEff[p] = max(s.maxEff[p], v.limit)
		if admitted > s.maxEff[p] {
			s.fail("%s: %d admitted in [%d, %d), whose limit never exceeded %d", key, admitted, v.span.Start, v.span.End, s.maxEff[p])
		}
	}
}

// heal ends every fault and checks that every key the ledger has quota
// left for is admitted again.
func (s *sim) heal() {
	for _, n := range s.nodes {
		n.skew, n.cutUntil = 0, time.Time{}
	}
	s.stash = nil
	s.logf("healed")
	for i := 0; i < 30; i++ {
		s.now = s.now.Add(500 * time.Millisecond)
		s.deliverEvents()
		for _, n := range s.nodes {
			n.pool.cycle(false)
		}
	}
	cfg := s.fsm.Config()
	q, ok := PlanQuota(cfg.UsagePlans["p1"])
	if !ok {
		return
	}
	for _, key := range simKeys {
		if !keyInPlan(cfg, "p1", key) {
			continue
		}
		l := ledgerIn(s.fsm.KeyLedgers("p1"), key)
		if l == nil {
			l = &pb.KeyLedger{}
		}
		v := viewAt(l, q, floorDiv(s.now.UnixNano(), 1e9))
		if v.held != 0 {
			s.fail("%s: nodes still hold %d units after 15s without traffic: %v", key, v.held, l)
		}
		if max(v.avail(), 0) == 0 {
			continue
		}
		n := s.nodes[0]
		c := n.pool.Counter("p1", key)
		admitted := false
		for i := 0; i < 10 && !admitted; i++ {
			s.now = s.now.Add(500 * time.Millisecond)
			d := c.Take(simDone, s.now)
			admitted = d.Status == limiter.QuotaAllowed
			if admitted {
				s.admit(key, DayOf(n.pool.ledgerSec(s.now)))
			}
			n.pool.cycle(false)
		}
		if !admitted {
			s.fail("%s: the ledger has %d left, but a healed node admits nothing: %v", key, max(v.avail(), 0), l)
		}
		s.check()
	}
}

func simSeeds(t *testing.T) (first, count int64) {
	if v := os.Getenv("TOLLGATE_SIM_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("TOLLGATE_SIM_SEED=%q: %v", v, err)
		}
		return n, 1
	}
	count = 2000
	if raceEnabled || testing.Short() {
		count = 150
	}
	if v := os.Getenv("TOLLGATE_SIM_SEEDS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			t.Fatalf("TOLLGATE_SIM_SEEDS=%q: want a count", v)
		}
		count = n
	}
	return 1, count
}

func TestLedgerSimulation(t *testing.T) {
	first, count := simSeeds(t)
	var total simStats
	start := time.Now()
	for seed := first; seed < first+count; seed++ {
		s := newSim(t, seed)
		for i := 0; i < simSteps && !s.failed; i++ {
			s.step()
		}
		s.heal()
		total.add(s.stats)
	}
	t.Logf("%d seeds, %d steps in %v: %d batches applied, %d dropped, %d answers lost, %d delivered again late, %d cut-offs, %d leader changes, %d restarts, %d clock changes, %d admin edits; %d requests admitted, %d refused over quota",
		count, total.steps, time.Since(start).Round(time.Millisecond), total.batches, total.dropped, total.lostReplies, total.redelivered,
		total.cuts, total.leaderChanges, total.restarts, total.skews, total.edits, total.admitted, total.exhausted)
}
