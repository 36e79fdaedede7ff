package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

var quotaT0 = date(2024, time.March, 13, 10, 0, 0)

// quotaEnv is a quota pool on a MemStore, both on one fake clock.
type quotaEnv struct {
	clk   *fakeClock
	store *MemStore
	pool  *QuotaPool
}

// newQuotaEnv sets up plan p1 (quota q, on a1/prod, with k1) and plan free
// (no quota, on a1/dev, with k1) and starts a pool for node n1. ledger, when
// set, wraps the store; cfg, when set, changes the pool's configuration.
func newQuotaEnv(t testing.TB, q *pb.QuotaSettings, ledger func(*MemStore) LedgerClient, cfg func(*QuotaPoolConfig)) *quotaEnv {
	t.Helper()
	e := &quotaEnv{clk: newFakeClock(quotaT0), store: NewMemStore()}
	e.store.SetClock(e.clk.Now)
	memStoreSetup(t, e.store, q)
	var lc LedgerClient = e.store
	if ledger != nil {
		lc = ledger(e.store)
	}
	e.pool = e.newPool(t, "n1", lc, cfg)
	return e
}

func (e *quotaEnv) newPool(t testing.TB, node string, lc LedgerClient, cfg func(*QuotaPoolConfig)) *QuotaPool {
	t.Helper()
	c := QuotaPoolConfig{
		NodeID:         node,
		Ledger:         lc,
		Now:            e.clk.Now,
		ReportInterval: 10 * time.Millisecond,
		Logger:         discardLogger(),
	}
	if cfg != nil {
		cfg(&c)
	}
	p, err := NewQuotaPool(c)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close pool %s: %v", node, err)
		}
	})
	return p
}

func (e *quotaEnv) ledger(planID, keyID string) *pb.KeyLedger {
	return ledgerIn(e.store.KeyLedgers(planID), keyID)
}

// take spends one unit at the fake clock's time, waiting at most timeout.
func (e *quotaEnv) take(c *Counter, timeout time.Duration) limiter.QuotaDecision {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Take(ctx, e.clk.Now())
}

// takeUntilExhausted takes until the quota says exhausted and returns how
// many were allowed. Any other answer fails the test.
func (e *quotaEnv) takeUntilExhausted(t testing.TB, c *Counter, max int) int {
	t.Helper()
	for n := 0; n <= max; n++ {
		switch d := e.take(c, 5*time.Second); d.Status {
		case limiter.QuotaAllowed:
		case limiter.QuotaExhausted:
			return n
		default:
			t.Fatalf("take %d: %+v", n, d)
		}
	}
	t.Fatalf("more than %d allowed", max)
	return 0
}

func TestQuotaExactLimitThenExhausted(t *testing.T) {
	e := newQuotaEnv(t, quota(50, "DAY", 0), nil, nil)
	c := e.pool.Counter("p1", "k1")
	midnight := date(2024, time.March, 14, 0, 0, 0)
	prev := int64(50)
	for i := 0; i < 50; i++ {
		d := e.take(c, 5*time.Second)
		if d.Status != limiter.QuotaAllowed || d.Limit != 50 || !d.ResetAt.Equal(midnight) {
			t.Fatalf("take %d: %+v", i, d)
		}
		if d.Remaining < 0 || d.Remaining > prev { // last known: it never grows
			t.Fatalf("take %d: remaining %d after %d", i, d.Remaining, prev)
		}
		prev = d.Remaining
	}
	if prev != 0 {
		t.Fatalf("remaining %d after the last unit", prev)
	}
	for i := 0; i < 5; i++ {
		d := e.take(c, 5*time.Second)
		if d.Status != limiter.QuotaExhausted || d.Limit != 50 || !d.ResetAt.Equal(midnight) || d.RetryAfter != 14*time.Hour {
			t.Fatalf("take past the quota: %+v", d)
		}
	}
	day := DayOf(quotaT0.Unix())
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		return usedNow(l) == 50 && l.GetDaily()[day] == 50 && len(l.GetGrants()) == 0
	}, "the ledger counts 50 used on the day and no grant")
}

func TestQuotaConcurrentTakesNeverOverAdmit(t *testing.T) {
	const limit = 300
	e := newQuotaEnv(t, quota(limit, "DAY", 0), nil, nil)
	c := e.pool.Counter("p1", "k1")
	// One day with a moving clock (grants grow with demand), then days on
	// a frozen clock (grants of one unit, many waits at exhaustion).
	for day := 0; day < 12; day++ {
		e.clk.Set(quotaT0.AddDate(0, 0, day))
		tick := time.Duration(0)
		if day == 0 {
			tick = time.Millisecond
		}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					d := c.Take(ctx, e.clk.Advance(tick))
					cancel()
					switch d.Status {
					case limiter.QuotaAllowed:
						allowed.Add(1)
					case limiter.QuotaExhausted:
						return
					default:
						errs <- fmt.Sprintf("unexpected decision %+v", d)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for msg := range errs {
			t.Fatalf("day %d: %s", day, msg)
		}
		if n := allowed.Load(); n != limit {
			t.Fatalf("day %d: %d allowed, want exactly %d", day, n, limit)
		}
		if day == 0 {
			if b := e.pool.Batches.Load(); b >= limit/2 {
				t.Fatalf("%d batches for %d requests: grants did not grow with demand", b, limit)
			}
		}
	}
	first := DayOf(quotaT0.Unix())
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		for d := first; d < first+12; d++ {
			if l.GetDaily()[d] != limit {
				return false
			}
		}
		return usedNow(l) == limit
	}, "the ledger counts every admitted request on its day")
}

func TestQuotaSetRemainingThenRollover(t *testing.T) {
	e := newQuotaEnv(t, quota(50, "DAY", 0), nil, nil)
	c := e.pool.Counter("p1", "k1")
	if n := e.takeUntilExhausted(t, c, 100); n != 50 {
		t.Fatalf("%d allowed, want 50", n)
	}
	day := DayOf(quotaT0.Unix())
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		return usedNow(l) == 50 && len(l.GetGrants()) == 0
	}, "every count reported")

	res, err := e.store.Apply(context.Background(), cmdSetRemaining("p1", "k1", 20))
	if err != nil || res.Code != codeNone {
		t.Fatalf("set remaining: %v %v", err, res)
	}
	e.clk.Advance(time.Second)
	more := 0
	eventually(t, 1500*time.Millisecond, func() bool {
		if e.take(c, 50*time.Millisecond).Status == limiter.QuotaAllowed {
			more++
		}
		return more > 0
	}, "the extension lets requests through")
	more += e.takeUntilExhausted(t, c, 100)
	if more != 20 {
		t.Fatalf("%d allowed after the extension to 20", more)
	}

	// The next day brings a fresh quota.
	e.clk.Set(date(2024, time.March, 14, 0, 0, 1))
	next := date(2024, time.March, 15, 0, 0, 0)
	d := e.take(c, 5*time.Second)
	if d.Status != limiter.QuotaAllowed || d.Limit != 50 || !d.ResetAt.Equal(next) {
		t.Fatalf("first take of the new day: %+v", d)
	}
	if n := e.takeUntilExhausted(t, c, 100); n != 49 {
		t.Fatalf("%d more allowed on the new day, want 49", n)
	}
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		return l.GetDaily()[day] == 70 && l.GetDaily()[day+1] == 50 && usedNow(l) == 50
	}, "usage of both days in the ledger")
}

func TestQuotaCloseReportsAndReleases(t *testing.T) {
	e := newQuotaEnv(t, quota(50, "DAY", 0), nil, nil)
	c := e.pool.Counter("p1", "k1")
	for i := 0; i < 7; i++ {
		if d := e.take(c, 5*time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take %d: %+v", i, d)
		}
		e.clk.Advance(100 * time.Millisecond) // some demand: grants grow
	}
	eventually(t, 5*time.Second, func() bool { return heldUnits(c) > 0 }, "the node holds units it did not spend")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l := e.ledger("p1", "k1")
	if usedNow(l) != 7 || l.Daily[DayOf(quotaT0.Unix())] != 7 || len(l.Grants) != 0 {
		t.Fatalf("after close: %v, want 7 used and no grant", l)
	}
	res, err := e.store.Apply(context.Background(), cmdLedger(&pb.LedgerBatch{NodeId: "n2", Grants: []*pb.GrantRequest{grantReq("p1", "k1", 100)}}))
	if err != nil || res.GetLedger().GetGrants()[0].GetGranted() != 43 {
		t.Fatalf("what another node can get after close: %v %v", res, err)
	}
	if err := e.pool.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestQuotaPoolCloseWithoutStart(t *testing.T) {
	p, err := NewQuotaPool(QuotaPoolConfig{NodeID: "n1", Ledger: NewMemStore(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []QuotaPoolConfig{{Ledger: NewMemStore()}, {NodeID: "n1"}} {
		if _, err := NewQuotaPool(cfg); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

// ledgerMode is what a switchLedger does with a batch.
type ledgerMode int

const (
	ledgerUp        ledgerMode = iota
	ledgerDown                 // refuse: not applied
	ledgerLostReply            // apply, then lose the answer (then back up)
	ledgerBlackhole            // answer success, apply nothing (a dead node's view)
)

// switchLedger is a LedgerClient that can fail on demand.
type switchLedger struct {
	next LedgerClient

	mu   sync.Mutex
	mode ledgerMode
	lose int            // answers still to lose in ledgerLostReply
	sent map[string]int // request id -> times sent
}

func (s *switchLedger) set(m ledgerMode, lose int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode, s.lose = m, lose
}

// maxSent is the most times one request id was sent.
func (s *switchLedger) maxSent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.sent {
		n = max(n, v)
	}
	return n
}

func (s *switchLedger) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	s.mu.Lock()
	if s.sent == nil {
		s.sent = map[string]int{}
	}
	s.sent[cmd.RequestId]++
	mode := s.mode
	if mode == ledgerLostReply {
		if s.lose--; s.lose <= 0 {
			s.mode = ledgerUp
		}
	}
	s.mu.Unlock()
	switch mode {
	case ledgerDown:
		return nil, ErrNotLeader
	case ledgerBlackhole:
		return &pb.Result{}, nil
	}
	res, err := s.next.ApplyLedger(ctx, cmd)
	if mode == ledgerLostReply && err == nil {
		return nil, ErrUnknownOutcome
	}
	return res, err
}

func TestQuotaUnavailableThenResentBatchAppliesOnce(t *testing.T) {
	sw := &switchLedger{}
	e := newQuotaEnv(t, quota(1000, "DAY", 0), func(s *MemStore) LedgerClient { sw.next = s; return sw }, nil)
	c := e.pool.Counter("p1", "k1")

	// No ledger: a node without units cannot admit.
	sw.set(ledgerDown, 0)
	began := time.Now()
	d := e.take(c, 100*time.Millisecond)
	if d.Status != limiter.QuotaUnavailable || d.RetryAfter != time.Second {
		t.Fatalf("take with the ledger down: %+v", d)
	}
	if waited := time.Since(began); waited < 100*time.Millisecond {
		t.Fatalf("unavailable after %v, before the context expired", waited)
	}

	sw.set(ledgerUp, 0)
	var allowed int64
	for allowed < 10 {
		if d := e.take(c, 5*time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take %d: %+v", allowed, d)
		}
		allowed++
		e.clk.Advance(10 * time.Millisecond) // demand: bigger grants
	}
	eventually(t, 5*time.Second, func() bool { return heldUnits(c) >= 20 }, "the node holds a grant")

	// The ledger goes away; the node spends what it holds.
	sw.set(ledgerDown, 0)
	for i := 0; i < 15; i++ {
		if d := e.take(c, time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take from a held grant with the ledger down: %+v", d)
		}
		allowed++
	}
	// It comes back, but the first answer is lost: the batch is resent.
	sw.set(ledgerLostReply, 1)
	eventually(t, 5*time.Second, func() bool { return sw.maxSent() >= 2 }, "a batch resent")
	day := DayOf(quotaT0.Unix())
	eventually(t, 5*time.Second, func() bool { return e.ledger("p1", "k1").GetDaily()[day] == allowed }, "every count reported")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l := e.ledger("p1", "k1")
	if usedNow(l) != allowed || l.Daily[day] != allowed || len(l.Grants) != 0 {
		t.Fatalf("after close: %v, want %d used once and no grant", l, allowed)
	}
}

func TestQuotaCrashedNodeSettlesOnRestart(t *testing.T) {
	const limit = 50
	sw := &switchLedger{}
	e := newQuotaEnv(t, quota(limit, "DAY", 0), func(s *MemStore) LedgerClient { sw.next = s; return sw }, nil)
	c1 := e.pool.Counter("p1", "k1")
	allowed1 := 0
	for i := 0; i < 10; i++ {
		if d := e.take(c1, 5*time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take %d: %+v", i, d)
		}
		allowed1++
		e.clk.Advance(100 * time.Millisecond)
	}
	eventually(t, 5*time.Second, func() bool { return heldUnits(c1) > 0 }, "the node holds units")

	// The node dies: nothing it sends from now on reaches the ledger.
	sw.set(ledgerBlackhole, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.ledger("p1", "k1")
	lost := heldBy(before, "n1")
	if lost <= 0 || usedNow(before)+lost > limit {
		t.Fatalf("ledger at the crash: %v", before)
	}

	// It restarts with the same id: its old grant counts as used.
	p2 := e.newPool(t, "n1", e.store, nil)
	c2 := p2.Counter("p1", "k1")
	allowed2 := e.takeUntilExhausted(t, c2, limit)
	if int64(allowed2) != limit-usedNow(before)-lost {
		t.Fatalf("%d allowed after the restart, want %d - %d used - %d lost", allowed2, limit, usedNow(before), lost)
	}
	if allowed1+allowed2 > limit {
		t.Fatalf("%d + %d admitted over a limit of %d", allowed1, allowed2, limit)
	}
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("p1", "k1")
		return usedNow(l) == limit && len(l.GetGrants()) == 0
	}, "the ledger counts the lost grant and every new request as used")
}

func TestQuotaWithoutQuotaCountsOnly(t *testing.T) {
	e := newQuotaEnv(t, quota(50, "DAY", 0), nil, nil)
	c := e.pool.Counter("free", "k1")
	for i := 0; i < 5; i++ {
		d := e.take(c, 5*time.Second)
		if d.Status != limiter.QuotaAllowed || d.Limit != -1 || d.Remaining != -1 {
			t.Fatalf("take %d without a quota: %+v", i, d)
		}
	}
	for i := 0; i < 3; i++ {
		c.Count(e.clk.Now())
	}
	day := DayOf(quotaT0.Unix())
	eventually(t, 5*time.Second, func() bool {
		l := e.ledger("free", "k1")
		return l.GetDaily()[day] == 8
	}, "usage without a quota reaches the ledger")

	// A key that is not in the plan.
	if d := e.take(e.pool.Counter("p1", "k2"), 5*time.Second); d.Status != limiter.QuotaUnknown {
		t.Fatalf("take of a key not in the plan: %+v", d)
	}
}

// TestCounterTakeRecoversLeftoverUnits: units a counter holds while it has
// no grant state (left by a Take racing a drain) must not make Take spin:
// it asks the ledger and answers.
func TestCounterTakeRecoversLeftoverUnits(t *testing.T) {
	e := newQuotaEnv(t, quota(50, "DAY", 0), nil, nil)
	c := e.pool.Counter("p1", "k1")
	if d := e.take(c, 5*time.Second); d.Status != limiter.QuotaAllowed {
		t.Fatalf("first take: %+v", d)
	}
	eventually(t, 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state.Load() == stateActive && !c.inflight && !c.wantRefill.Load() && heldUnits(c) > 0
	}, "the counter holds a grant and asks for nothing")
	// The state a Take that undid its decrement after an idle release
	// leaves behind: no grant state, one unit.
	c.mu.Lock()
	c.state.Store(stateNone)
	c.cur.Load().avail.Store(1)
	c.mu.Unlock()
	done := make(chan limiter.QuotaDecision, 1)
	go func() { done <- e.take(c, 2*time.Second) }()
	select {
	case d := <-done:
		if d.Status != limiter.QuotaAllowed {
			t.Fatalf("take: %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Take spun past its context's deadline")
	}
}

func TestCounterTakeDoesNotAllocate(t *testing.T) {
	e := newQuotaEnv(t, quota(1_000_000_000, "DAY", 0), nil, func(c *QuotaPoolConfig) {
		c.ReportInterval = time.Hour // no ticks during the measurement
		c.Horizon = time.Hour
		c.MaxGrant = 1_000_000
	})
	c := e.pool.Counter("p1", "k1")
	eventually(t, 5*time.Second, func() bool {
		if d := e.take(c, time.Second); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take: %+v", d)
		}
		e.clk.Advance(10 * time.Millisecond)
		return heldUnits(c) > 20_000
	}, "a large grant held")
	ctx := context.Background()
	now := e.clk.Now()
	allocs := testing.AllocsPerRun(10_000, func() {
		if d := c.Take(ctx, now); d.Status != limiter.QuotaAllowed {
			t.Fatalf("take: %+v", d)
		}
	})
	if allocs != 0 {
		t.Fatalf("Take allocates %v times per call with a grant held", allocs)
	}
}

func BenchmarkCounterTake(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			store := NewMemStore()
			memStoreSetup(b, store, quota(limiter.MaxQuotaLimit, "MONTH", 0))
			pool, err := NewQuotaPool(QuotaPoolConfig{NodeID: "n1", Ledger: store, Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			pool.Start()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := pool.Close(ctx); err != nil {
					b.Error(err)
				}
			}()
			c := pool.Counter("p1", "k1")
			ctx := context.Background()
			if d := c.Take(ctx, time.Now()); d.Status != limiter.QuotaAllowed {
				b.Fatalf("warm-up take: %+v", d)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if !parallel {
				for i := 0; i < b.N; i++ {
					if d := c.Take(ctx, time.Now()); d.Status != limiter.QuotaAllowed {
						b.Fatalf("take: %+v", d)
					}
				}
				return
			}
			b.RunParallel(func(p *testing.PB) {
				for p.Next() {
					if d := c.Take(ctx, time.Now()); d.Status != limiter.QuotaAllowed {
						b.Errorf("take: %+v", d)
						return
					}
				}
			})
		})
	}
}

// recordingLedger remembers the size of every batch it passes on.
type recordingLedger struct {
	next  LedgerClient
	mu    sync.Mutex
	sizes []int
}

func (r *recordingLedger) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	b := cmd.GetLedger()
	r.mu.Lock()
	r.sizes = append(r.sizes, len(b.GetReports())+len(b.GetGrants()))
	r.mu.Unlock()
	return r.next.ApplyLedger(ctx, cmd)
}

// TestBatchesStaySmall: counts of more keys than one batch holds go in
// several batches, none over maxBatchItems, and none is lost.
func TestBatchesStaySmall(t *testing.T) {
	keys := maxBatchItems + 500
	rec := &recordingLedger{}
	e := newQuotaEnv(t, nil, func(s *MemStore) LedgerClient { rec.next = s; return rec }, func(c *QuotaPoolConfig) {
		c.ReportInterval = time.Hour // only the final flush reports
	})
	imp := &pb.ImportApiKeys{}
	for i := range keys {
		imp.Keys = append(imp.Keys, &pb.ImportedKey{
			Key:          &pb.ApiKey{Id: fmt.Sprintf("bk%05d", i), Value: fmt.Sprintf("bulkKeyValue%010d", i), Enabled: true},
			UsagePlanIds: []string{"free"},
		})
	}
	if res, err := e.store.Apply(context.Background(), &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: imp}}); err != nil || res.Code != 0 || len(res.Warnings) != 0 {
		t.Fatalf("import: %v %v", err, res)
	}
	for i := range keys {
		e.pool.Counter("free", fmt.Sprintf("bk%05d", i)).Count(e.clk.Now())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var reported int64
	for _, l := range e.store.KeyLedgers("free") {
		for _, n := range l.Daily {
			reported += n
		}
	}
	if reported != int64(keys) {
		t.Fatalf("%d of %d counts reached the ledger", reported, keys)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	big := 0
	for _, n := range rec.sizes {
		if n > maxBatchItems {
			t.Fatalf("a batch of %d items (cap %d)", n, maxBatchItems)
		}
		if n > 0 {
			big++
		}
	}
	if big < 2 {
		t.Fatalf("%d keys went in %d batches %v", keys, big, rec.sizes)
	}
}

// TestNudgeAsksAgainAtOnce: an exhausted key asks the ledger again as soon
// as the log frees quota (here an extension), not at its next poll: with
// polls an hour apart, the extension still gets through.
func TestNudgeAsksAgainAtOnce(t *testing.T) {
	e := newQuotaEnv(t, quota(10, "DAY", 0), nil, func(c *QuotaPoolConfig) { c.ReportInterval = time.Hour })
	e.store.FSM().OnQuotaChange(e.pool.Event)
	c := e.pool.Counter("p1", "k1")
	if n := e.takeUntilExhausted(t, c, 100); n != 10 {
		t.Fatalf("%d allowed, want 10", n)
	}
	if d := e.take(c, time.Second); d.Status != limiter.QuotaExhausted {
		t.Fatalf("before the extension: %+v", d)
	}
	if res, err := e.store.Apply(context.Background(), cmdSetRemaining("p1", "k1", 5)); err != nil || res.Code != codeNone {
		t.Fatalf("set remaining: %v %v", err, res)
	}
	more := 0
	eventually(t, 2*time.Second, func() bool {
		if e.take(c, 50*time.Millisecond).Status == limiter.QuotaAllowed {
			more++
		}
		return more > 0
	}, "the extension to be admitted without a poll")
	more += e.takeUntilExhausted(t, c, 100)
	if more > 5 {
		t.Fatalf("%d admitted after an extension to 5", more)
	}
}

// TestCounterDropsGrantsDecidedBeforeARevocation: a grant decided at an
// index at or before a revocation the node already applied is handed back,
// not spent.
func TestCounterDropsGrantsDecidedBeforeARevocation(t *testing.T) {
	e := newQuotaEnv(t, quota(100, "DAY", 0), nil, func(c *QuotaPoolConfig) {
		c.ReportInterval = time.Hour // no batch of its own during the test
	})
	c := e.pool.Counter("p1", "k1")
	c.revoke(50)
	start, end := limiter.Quota{Period: limiter.PeriodDay, Limit: 100}.Bounds(quotaT0.Unix())
	c.applyGrant(&pb.GrantResult{PlanId: "p1", KeyId: "k1", Granted: 7, PeriodStart: start, PeriodEnd: end, Limit: 100}, 49, quotaT0.Unix())
	c.mu.Lock()
	var release int64
	for _, g := range c.retired {
		release += g.release
	}
	c.mu.Unlock()
	if heldUnits(c) != 0 || release != 7 {
		t.Fatalf("a grant decided before the revocation: %d spendable, %d to hand back; want 0 and 7", heldUnits(c), release)
	}
}

// TestBatchLooksAtChangedCountersOnly: a batch takes the counters that
// have something to say (counts, units to hand back, a grant to ask for),
// oldest first, not every counter the node holds: after 3,000 keys are
// reported, one more request puts one counter in the next batch's list.
func TestBatchLooksAtChangedCountersOnly(t *testing.T) {
	const keys = 3000
	e := newQuotaEnv(t, nil, nil, func(c *QuotaPoolConfig) { c.ReportInterval = time.Hour })
	imp := &pb.ImportApiKeys{}
	for i := range keys {
		imp.Keys = append(imp.Keys, &pb.ImportedKey{
			Key:          &pb.ApiKey{Id: fmt.Sprintf("bk%05d", i), Value: fmt.Sprintf("bulkKeyValue%010d", i), Enabled: true},
			UsagePlanIds: []string{"free"},
		})
	}
	if res, err := e.store.Apply(context.Background(), &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: imp}}); err != nil || res.Code != 0 {
		t.Fatalf("import: %v %v", err, res)
	}
	// A pool of its own, not started: the test builds its batches.
	pool, err := NewQuotaPool(QuotaPoolConfig{NodeID: "n2", Ledger: e.store, Now: e.clk.Now, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.pool = pool
	counters := make([]*Counter, keys)
	for i := range keys {
		counters[i] = e.pool.Counter("free", fmt.Sprintf("bk%05d", i))
		counters[i].Count(e.clk.Now())
	}
	dirty := func() int {
		e.pool.dirtyMu.Lock()
		defer e.pool.dirtyMu.Unlock()
		return len(e.pool.dirty)
	}
	if n := dirty(); n != keys {
		t.Fatalf("%d counters listed after %d keys counted, want %d", n, keys, keys)
	}
	// The first counters marked go first: the batch cap leaves the
	// newest for the next batch.
	cmd := e.pool.buildBatch(e.clk.Now(), false)
	if got := cmd.GetLedger().Reports; len(got) != maxBatchItems || got[0].KeyId != "bk00000" {
		t.Fatalf("first batch: %d reports, first for %s", len(got), got[0].KeyId)
	}
	e.pool.pending = nil
	cmd = e.pool.buildBatch(e.clk.Now(), false)
	if got := len(cmd.GetLedger().Reports); got != keys-maxBatchItems {
		t.Fatalf("second batch: %d reports, want %d", got, keys-maxBatchItems)
	}
	if n := dirty(); n != 0 {
		t.Fatalf("%d counters listed with nothing to say", n)
	}
	counters[1234].Count(e.clk.Now())
	if n := dirty(); n != 1 {
		t.Fatalf("%d counters listed after one request, want 1", n)
	}
	cmd = e.pool.buildBatch(e.clk.Now(), false)
	if got := cmd.GetLedger().Reports; len(got) != 1 || got[0].KeyId != "bk01234" {
		t.Fatalf("third batch: %v", got)
	}
}
