package cluster

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

func cmdDeleteStage(apiID, stage string, detach bool) *pb.Command {
	return &pb.Command{Body: &pb.Command_DeleteStage{DeleteStage: &pb.DeleteStage{RestApiId: apiID, StageName: stage, DetachPlans: detach}}}
}

// TestFSMDeleteStageDetachesPlans: deleting a stage a plan covers is
// refused without detach_plans (as commands written before it existed
// were), and with it the stage leaves every plan that covered it, each
// plan getting a new revision; the plan's keys stay attached.
func TestFSMDeleteStageDetachesPlans(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	h.ok(cmdPlan("p2", true, nil, "a1/prod", "a1/dev"))
	if res := h.apply(cmdDeleteStage("a1", "prod", false)); res.Code != codeBad || !strings.Contains(res.Message, "usage plans are associated") {
		t.Fatalf("delete without detach: %v %s", res.Code, res.Message)
	}
	h.ok(cmdDeleteStage("a1", "prod", true))
	c := h.f.Config()
	if c.Stages["a1/prod"] != nil {
		t.Fatal("stage still there")
	}
	if n := len(c.UsagePlans["p1"].ApiStages); n != 0 {
		t.Fatalf("p1 still has %d stages", n)
	}
	if got := c.UsagePlans["p2"].ApiStages; len(got) != 1 || got[0].Stage != "dev" {
		t.Fatalf("p2 stages %v, want only a1:dev", got)
	}
	if c.UsagePlans["p1"].Revision != h.index {
		t.Fatalf("p1 revision %d, want %d", c.UsagePlans["p1"].Revision, h.index)
	}
	if _, in := c.PlanKeys["p1"].GetKeys()["k1"]; !in {
		t.Fatal("k1 left p1")
	}
}

// TestFSMDeleteRestApiDetachesPlans: the same for deleting the API.
func TestFSMDeleteRestApiDetachesPlans(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	del := func(detach bool) *pb.Command {
		return &pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "a1", DetachPlans: detach}}}
	}
	if res := h.apply(del(false)); res.Code != codeBad {
		t.Fatalf("delete without detach: %v %s", res.Code, res.Message)
	}
	h.ok(del(true))
	c := h.f.Config()
	if c.RestApis["a1"] != nil || len(c.Stages) != 0 || len(c.Deployments) != 0 {
		t.Fatalf("API left things behind: %v %v", c.Stages, c.Deployments)
	}
	if n := len(c.UsagePlans["p1"].ApiStages); n != 0 {
		t.Fatalf("p1 still has %d stages", n)
	}
}

// TestFSMDeleteAndUpdateDeployment: a deployment a stage serves cannot be
// deleted (the original's message); one no stage serves can; an update
// sets the description and checks it; unknown ids answer not found.
func TestFSMDeleteAndUpdateDeployment(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	h.ok(cmdDeploy("a1", "d3", ""))
	del := func(id string) *pb.Command {
		return &pb.Command{Body: &pb.Command_DeleteDeployment{DeleteDeployment: &pb.DeleteDeployment{RestApiId: "a1", Id: id}}}
	}
	upd := func(id, desc string) *pb.Command {
		return &pb.Command{Body: &pb.Command_UpdateDeployment{UpdateDeployment: &pb.UpdateDeployment{RestApiId: "a1", Id: id, Description: desc}}}
	}
	if res := h.apply(del("d1")); res.Code != codeBad || res.Message != "Active stages pointing to this deployment must be moved or deleted" {
		t.Fatalf("delete of a served deployment: %v %s", res.Code, res.Message)
	}
	h.ok(upd("d3", "third"))
	if got := h.f.Config().Deployments["a1/d3"].Description; got != "third" {
		t.Fatalf("description %q", got)
	}
	if res := h.apply(upd("d3", strings.Repeat("x", 125001))); res.Code != codeBad {
		t.Fatalf("invalid description: %v %s", res.Code, res.Message)
	}
	h.ok(del("d3"))
	if h.f.Config().Deployments["a1/d3"] != nil {
		t.Fatal("deployment still there")
	}
	for _, cmd := range []*pb.Command{del("d3"), upd("d3", "x")} {
		if res := h.apply(cmd); res.Code != codeNotFound {
			t.Fatalf("%T of a missing deployment: %v %s", cmd.Body, res.Code, res.Message)
		}
	}
	if res := h.apply(del("d/3")); res.Code != codeBad {
		t.Fatalf("bad id: %v %s", res.Code, res.Message)
	}
}

// TestFSMDeleteKeyKeepsUsage: with keep_usage, a deleted key's ledgers
// stay and a DeletedApiKey records its name and customer; its id cannot be
// taken again; grants for it are refused; the record and its ledgers go
// once usage retention has passed, at a later key deletion. The state
// round-trips through a snapshot.
func TestFSMDeleteKeyKeepsUsage(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	h.grant("n1", "p1", "k1", 3)
	h.report("n1", "p1", "k1", DayOf(t0.Unix()), 2, 0, 0)
	h.ok(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k1", KeepUsage: true}}})
	c := h.f.Config()
	if d := c.DeletedApiKeys["k1"]; d == nil || d.Name != "key k1" || d.DeletedDate != t0.Unix() {
		t.Fatalf("deleted key record %v", d)
	}
	if l := h.ledger("p1", "k1"); l == nil || l.Daily[DayOf(t0.Unix())] != 2 {
		t.Fatalf("ledger not kept: %v", l)
	}
	if g := h.grant("n1", "p1", "k1", 1); g.Granted != 0 || !g.Unknown {
		t.Fatalf("grant for a deleted key: %v", g)
	}
	if res := h.apply(cmdKey("k1", "anotherXvalueXforXk1XX")); res.Code != codeConflict {
		t.Fatalf("re-creating id k1: %v %s", res.Code, res.Message)
	}
	// A key without usage leaves no record.
	h.ok(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k3", KeepUsage: true}}})
	if h.f.Config().DeletedApiKeys["k3"] != nil {
		t.Fatal("a key without usage left a record")
	}

	data := persist(t, h.f)
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !proto.Equal(g.Config(), h.f.Config()) {
		t.Fatal("restored configuration differs")
	}
	if l := ledgerIn(g.KeyLedgers("p1"), "k1"); l == nil || l.Daily[DayOf(t0.Unix())] != 2 {
		t.Fatalf("the deleted key's ledger after Restore: %v", l)
	}

	h.now = t0.Add((usageRetentionDays + 2) * 24 * time.Hour)
	h.ok(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k2", KeepUsage: true}}})
	if h.f.Config().DeletedApiKeys["k1"] != nil || h.ledger("p1", "k1") != nil {
		t.Fatal("k1's record outlived usage retention")
	}
}

// TestFSMStoresCosmeticFields: the fields Tollgate stores and shows without
// acting on them are checked by the FSM and survive a snapshot.
func TestFSMStoresCosmeticFields(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	st := proto.Clone(h.f.Config().Stages["a1/prod"]).(*pb.Stage)
	st.TracingEnabled, st.CacheClusterEnabled, st.CacheClusterSize = true, true, "0.5"
	st.AccessLogSettings = &pb.AccessLogSettings{Format: "$context.requestId", DestinationArn: "arn:aws:logs:us-east-1:1:log-group:g"}
	st.MethodSettings = map[string]*pb.MethodSetting{"/pets/GET": {CachingEnabled: true, CacheTtlInSeconds: 300, CacheDataEncrypted: true, UnauthorizedCacheControlHeaderStrategy: "FAIL_WITH_403"}}
	h.ok(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: st}}})
	bad := proto.Clone(st).(*pb.Stage)
	bad.CacheClusterSize = "2"
	if res := h.apply(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: bad}}}); res.Code != codeBad {
		t.Fatalf("cache size 2: %v %s", res.Code, res.Message)
	}
	bad = proto.Clone(st).(*pb.Stage)
	bad.MethodSettings["/pets/GET"].CacheTtlInSeconds = 3601
	if res := h.apply(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: bad}}}); res.Code != codeBad {
		t.Fatalf("cache TTL 3601: %v %s", res.Code, res.Message)
	}
	h.ok(&pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{CloudwatchRoleArn: "arn:aws:iam::1:role/r"}}}})
	api := proto.Clone(h.f.Config().RestApis["a1"]).(*pb.RestApi)
	api.EndpointTypes, api.DisableExecuteApiEndpoint = []string{"EDGE"}, true
	h.ok(&pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: api}}})
	api.EndpointTypes = []string{"LOCAL"}
	if res := h.apply(&pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: api}}}); res.Code != codeBad {
		t.Fatalf("endpoint type LOCAL: %v %s", res.Code, res.Message)
	}
	data := persist(t, h.f)
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !proto.Equal(g.Config(), h.f.Config()) {
		t.Fatal("restored configuration differs")
	}
}
