package cluster

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// eventually polls cond until it holds, and fails the test when it still
// does not after timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}

// fakeClock is a test clock that moves only when told to. Each test makes
// its own.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func date(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
}

// testFSM feeds an FSM Raft log entries the way Raft does, with a clock the
// test sets.
type testFSM struct {
	t     testing.TB
	f     *FSM
	index uint64
	now   time.Time
}

func newTestFSM(t testing.TB, now time.Time) *testFSM {
	return &testFSM{t: t, f: NewFSM(), now: now}
}

// apply stamps cmd with the test's time (unless it has one), encodes it and
// applies it at the next index.
func (h *testFSM) apply(cmd *pb.Command) *pb.Result {
	h.t.Helper()
	if cmd.TimeUnixNano == 0 {
		cmd.TimeUnixNano = h.now.UnixNano()
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		h.t.Fatalf("marshal: %v", err)
	}
	h.index++
	out := h.f.Apply(&raft.Log{Type: raft.LogCommand, Index: h.index, Data: data})
	res, ok := out.(*pb.Result)
	if !ok {
		h.t.Fatalf("Apply returned %T, want *pb.Result", out)
	}
	if res.Index != h.index && cmd.RequestId == "" {
		h.t.Fatalf("result index %d, want %d", res.Index, h.index)
	}
	return res
}

// ok applies cmd and fails the test unless it succeeded.
func (h *testFSM) ok(cmd *pb.Command) *pb.Result {
	h.t.Helper()
	res := h.apply(cmd)
	if res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		h.t.Fatalf("command %T failed: %v %s", cmd.Body, res.Code, res.Message)
	}
	return res
}

// ledger returns a copy of a key's ledger in a plan, or nil.
func (h *testFSM) ledger(planID, keyID string) *pb.KeyLedger {
	for _, l := range h.f.KeyLedgers(planID) {
		if l.KeyId == keyID {
			return l
		}
	}
	return nil
}

// ledgerIn picks a key's ledger out of a list, or nil.
func ledgerIn(ls []*pb.KeyLedger, keyID string) *pb.KeyLedger {
	for _, l := range ls {
		if l.KeyId == keyID {
			return l
		}
	}
	return nil
}

// Command builders.

func cmdCreateAPI(id string) *pb.Command {
	return &pb.Command{Body: &pb.Command_CreateRestApi{CreateRestApi: &pb.CreateRestApi{Api: &pb.RestApi{Id: id, Name: "api " + id}}}}
}

func cmdDeploy(apiID, depID, stage string) *pb.Command {
	var s *pb.Stage
	if stage != "" {
		s = &pb.Stage{StageName: stage, Variables: map[string]string{"url": "http://127.0.0.1:1/" + stage}}
	}
	return &pb.Command{Body: &pb.Command_CreateDeployment{CreateDeployment: &pb.CreateDeployment{
		Deployment: &pb.Deployment{Id: depID, RestApiId: apiID}, Stage: s,
	}}}
}

func apiStages(stages ...string) []*pb.ApiStage {
	var out []*pb.ApiStage
	for _, s := range stages {
		for i := 0; i < len(s); i++ {
			if s[i] == '/' {
				out = append(out, &pb.ApiStage{ApiId: s[:i], Stage: s[i+1:]})
				break
			}
		}
	}
	return out
}

func quota(limit int64, period string, offset int32) *pb.QuotaSettings {
	return &pb.QuotaSettings{Limit: limit, Period: period, Offset: offset}
}

func cmdPlan(id string, create bool, q *pb.QuotaSettings, stages ...string) *pb.Command {
	return &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{
		Plan:   &pb.UsagePlan{Id: id, Name: "plan " + id, Quota: q, ApiStages: apiStages(stages...)},
		Create: create,
	}}}
}

func cmdKey(id, value string) *pb.Command {
	return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{
		Key: &pb.ApiKey{Id: id, Value: value, Name: "key " + id, Enabled: true}, Create: true,
	}}}
}

func cmdAttach(planID, keyID string) *pb.Command {
	return &pb.Command{Body: &pb.Command_CreateUsagePlanKey{CreateUsagePlanKey: &pb.CreateUsagePlanKey{PlanId: planID, KeyId: keyID}}}
}

func cmdDetach(planID, keyID string) *pb.Command {
	return &pb.Command{Body: &pb.Command_DeleteUsagePlanKey{DeleteUsagePlanKey: &pb.DeleteUsagePlanKey{PlanId: planID, KeyId: keyID}}}
}

func cmdSetRemaining(planID, keyID string, remaining int64) *pb.Command {
	return &pb.Command{Body: &pb.Command_SetRemaining{SetRemaining: &pb.SetRemaining{PlanId: planID, KeyId: keyID, Remaining: remaining}}}
}

func cmdLedger(b *pb.LedgerBatch) *pb.Command {
	return &pb.Command{Body: &pb.Command_Ledger{Ledger: b}}
}

func grantReq(planID, keyID string, want int64) *pb.GrantRequest {
	return &pb.GrantRequest{PlanId: planID, KeyId: keyID, Want: want}
}

// grant asks the ledger for want units of a key for a node and returns the
// answer.
func (h *testFSM) grant(node, planID, keyID string, want int64) *pb.GrantResult {
	h.t.Helper()
	res := h.ok(cmdLedger(&pb.LedgerBatch{NodeId: node, Grants: []*pb.GrantRequest{grantReq(planID, keyID, want)}}))
	gs := res.GetLedger().GetGrants()
	if len(gs) != 1 {
		h.t.Fatalf("%d grant results, want 1", len(gs))
	}
	return gs[0]
}

// report tells the ledger a node admitted count requests on day and hands
// back release units of the grant of periodStart.
func (h *testFSM) report(node, planID, keyID string, day, count, periodStart, release int64) {
	h.t.Helper()
	h.ok(cmdLedger(&pb.LedgerBatch{NodeId: node, Reports: []*pb.UsageReport{{
		PlanId: planID, KeyId: keyID, Day: day, Count: count, PeriodStart: periodStart, Release: release,
	}}}))
}

// setup gives an FSM an API "a1" with stages "prod" and "dev", keys k1..k3
// and a plan "p1" on a1/prod with quota q (nil: none) that holds k1.
func (h *testFSM) setup(q *pb.QuotaSettings) {
	h.t.Helper()
	h.ok(cmdCreateAPI("a1"))
	h.ok(cmdDeploy("a1", "d1", "prod"))
	h.ok(cmdDeploy("a1", "d2", "dev"))
	h.ok(cmdKey("k1", "valueXofXkeyXoneX0000000"))
	h.ok(cmdKey("k2", "valueXofXkeyXtwoX0000000"))
	h.ok(cmdKey("k3", "valueXofXkeyXthreeX00000"))
	h.ok(cmdPlan("p1", true, q, "a1/prod"))
	h.ok(cmdAttach("p1", "k1"))
}

// memStoreSetup applies the same configuration through a MemStore.
func memStoreSetup(t testing.TB, s *MemStore, q *pb.QuotaSettings) {
	t.Helper()
	for _, cmd := range []*pb.Command{
		cmdCreateAPI("a1"),
		cmdDeploy("a1", "d1", "prod"),
		cmdDeploy("a1", "d2", "dev"),
		cmdKey("k1", "valueXofXkeyXoneX0000000"),
		cmdKey("k2", "valueXofXkeyXtwoX0000000"),
		cmdPlan("p1", true, q, "a1/prod"),
		cmdAttach("p1", "k1"),
		cmdPlan("free", true, nil, "a1/dev"),
		cmdAttach("free", "k1"),
	} {
		res, err := s.Apply(context.Background(), cmd)
		if err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("setup %T: %v %v", cmd.Body, err, res)
		}
	}
}

// heldBy is what the ledger counts a node as holding of a key, over every
// period.
func heldBy(l *pb.KeyLedger, node string) int64 {
	var s int64
	for _, g := range l.GetGrants() {
		if g.NodeId == node {
			s += g.Units
		}
	}
	return s
}

// sumHeld is what every node holds of a key.
func sumHeld(l *pb.KeyLedger) int64 {
	var s int64
	for _, g := range l.GetGrants() {
		s += g.Units
	}
	return s
}

// usedNow is what the ledger counts as consumed (reported and settled) in
// the period it last decided a grant or an extension in.
func usedNow(l *pb.KeyLedger) int64 {
	if l.GetPeriodEnd() <= l.GetPeriodStart() {
		return 0
	}
	var s int64
	for d := DayOf(l.PeriodStart); d < DayOf(l.PeriodEnd-1)+1; d++ {
		s += l.Daily[d]
	}
	for _, g := range l.Settled {
		if g.Start < l.PeriodEnd && l.PeriodStart < g.End {
			s += g.Units
		}
	}
	return s
}

// extraNow is the extension of that period.
func extraNow(l *pb.KeyLedger) int64 { return l.GetPeriodExtra()[l.GetPeriodStart()] }

// heldUnits is what a counter holds of its grant in force.
func heldUnits(c *Counter) int64 {
	if g := c.cur.Load(); g != nil {
		return g.avail.Load()
	}
	return 0
}
