package cluster

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

var t0 = date(2024, time.March, 13, 12, 0, 0) // a Wednesday

const (
	codeNone = pb.ErrorCode_ERROR_CODE_NONE
)

func TestFSMRestApiLifecycle(t *testing.T) {
	h := newTestFSM(t, t0)
	res := h.ok(cmdCreateAPI("a1"))
	if res.Id != "a1" || res.Index != 1 || res.TimeUnix != t0.Unix() {
		t.Fatalf("create result %v", res)
	}
	api := h.f.Config().RestApis["a1"]
	if api.CreatedDate != t0.Unix() || api.Revision != 1 || api.ApiKeySource != "HEADER" {
		t.Fatalf("created api %v", api)
	}
	if h.f.Config().Index != 1 || h.f.AppliedIndex() != 1 {
		t.Fatalf("config index %d, applied %d, want 1", h.f.Config().Index, h.f.AppliedIndex())
	}

	h.now = t0.Add(time.Hour)
	h.ok(&pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{
		Api: &pb.RestApi{Id: "a1", Name: "renamed", ApiKeySource: "HEADER"}, IfRevision: 1,
	}}})
	api = h.f.Config().RestApis["a1"]
	if api.Name != "renamed" || api.CreatedDate != t0.Unix() || api.Revision != 2 {
		t.Fatalf("updated api %v", api)
	}

	h.ok(cmdDeploy("a1", "d1", "prod"))
	h.ok(cmdPlan("p1", true, nil, "a1/prod"))
	if res := h.apply(&pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "a1"}}}); res.Code != codeBad {
		t.Fatalf("delete of an API a plan uses: %v", res)
	}
	h.ok(cmdPlan("p1", false, nil)) // the plan leaves the stage
	h.ok(&pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "a1"}}})
	c := h.f.Config()
	if len(c.RestApis) != 0 || len(c.Stages) != 0 || len(c.Deployments) != 0 {
		t.Fatalf("delete left %d apis, %d stages, %d deployments", len(c.RestApis), len(c.Stages), len(c.Deployments))
	}
}

func TestFSMDeploymentsAndStages(t *testing.T) {
	h := newTestFSM(t, t0)
	h.ok(cmdCreateAPI("a1"))
	h.ok(cmdDeploy("a1", "d1", "prod"))
	c := h.f.Config()
	if c.Deployments["a1/d1"].GetCreatedDate() != t0.Unix() {
		t.Fatalf("deployment %v", c.Deployments["a1/d1"])
	}
	s := c.Stages["a1/prod"]
	if s.GetDeploymentId() != "d1" || s.RestApiId != "a1" || s.CreatedDate != t0.Unix() || s.Revision != 2 {
		t.Fatalf("stage made by the deployment: %v", s)
	}

	// Redeploying moves the stage and merges the given variables.
	h.ok(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: &pb.Stage{
		RestApiId: "a1", StageName: "prod", DeploymentId: "d1", Description: "live",
		Variables: map[string]string{"url": "http://u", "keep": "me"},
	}}}})
	h.now = t0.Add(time.Minute)
	h.ok(&pb.Command{Body: &pb.Command_CreateDeployment{CreateDeployment: &pb.CreateDeployment{
		Deployment: &pb.Deployment{Id: "d2", RestApiId: "a1"},
		Stage:      &pb.Stage{StageName: "prod", Variables: map[string]string{"url": "http://v"}},
	}}})
	s = h.f.Config().Stages["a1/prod"]
	if s.DeploymentId != "d2" || s.Description != "live" || s.Variables["url"] != "http://v" || s.Variables["keep"] != "me" {
		t.Fatalf("redeployed stage %v", s)
	}
	if s.CreatedDate != t0.Unix() || s.LastUpdatedDate != t0.Add(time.Minute).Unix() || s.Revision != 4 {
		t.Fatalf("redeployed stage dates/revision: %v", s)
	}

	// PutStage create and update.
	h.ok(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Create: true, Stage: &pb.Stage{RestApiId: "a1", StageName: "qa", DeploymentId: "d1"}}}})
	rev := h.f.Config().Stages["a1/qa"].Revision
	h.now = t0.Add(2 * time.Minute)
	h.ok(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{IfRevision: rev, Stage: &pb.Stage{RestApiId: "a1", StageName: "qa", DeploymentId: "d2", Description: "x"}}}})
	qa := h.f.Config().Stages["a1/qa"]
	if qa.DeploymentId != "d2" || qa.CreatedDate != t0.Add(time.Minute).Unix() || qa.LastUpdatedDate != t0.Add(2*time.Minute).Unix() {
		t.Fatalf("updated stage %v", qa)
	}
	h.ok(&pb.Command{Body: &pb.Command_DeleteStage{DeleteStage: &pb.DeleteStage{RestApiId: "a1", StageName: "qa"}}})
	if _, ok := h.f.Config().Stages["a1/qa"]; ok {
		t.Fatal("stage still there after delete")
	}
}

func TestFSMUsagePlanAndKeys(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	c := h.f.Config()
	p := c.UsagePlans["p1"]
	if p.CreatedDate != t0.Unix() || p.Quota.GetLimit() != 100 || len(p.ApiStages) != 1 || p.IsDefault {
		t.Fatalf("plan %v", p)
	}
	if got := c.PlanKeys["p1"].GetKeys()["k1"]; got != h.index {
		t.Fatalf("k1 attached at index %d, want %d", got, h.index)
	}
	k := c.ApiKeys["k1"]
	if !k.Enabled || k.CreatedDate != t0.Unix() || k.Value != "valueXofXkeyXoneX0000000" {
		t.Fatalf("key %v", k)
	}

	// An update keeps the created date; the default flag cannot be set by it.
	h.now = t0.Add(time.Hour)
	upd := cmdPlan("p1", false, quota(200, "WEEK", 1), "a1/prod", "a1/dev")
	upd.GetPutUsagePlan().IfRevision = p.Revision
	upd.GetPutUsagePlan().Plan.IsDefault = true
	h.ok(upd)
	p = h.f.Config().UsagePlans["p1"]
	if p.CreatedDate != t0.Unix() || p.Quota.GetLimit() != 200 || len(p.ApiStages) != 2 || p.IsDefault || p.Revision != h.index {
		t.Fatalf("updated plan %v", p)
	}

	// A key update keeps value and created date.
	h.ok(&pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: &pb.ApiKey{Id: "k1", Value: "changed", Name: "n", Enabled: false}}}})
	k = h.f.Config().ApiKeys["k1"]
	if k.Value != "valueXofXkeyXoneX0000000" || k.Name != "n" || k.Enabled || k.CreatedDate != t0.Unix() || k.LastUpdatedDate != t0.Add(time.Hour).Unix() {
		t.Fatalf("updated key %v", k)
	}

	// Detach.
	h.ok(cmdDetach("p1", "k1"))
	if _, in := h.f.Config().PlanKeys["p1"].GetKeys()["k1"]; in {
		t.Fatal("k1 still in p1 after detach")
	}

	// Account.
	h.ok(&pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{Throttle: &pb.ThrottleSettings{RateLimit: 10, BurstLimit: 5}}}}})
	if a := h.f.Config().Account; a.GetThrottle().GetRateLimit() != 10 || a.GetThrottle().GetBurstLimit() != 5 {
		t.Fatalf("account %v", a)
	}
}

// TestFSMErrors applies each business failure to a fresh FSM and checks its
// code and message, and that the configuration did not change.
func TestFSMErrors(t *testing.T) {
	const conflictK1 = "API Key k1 is already associated with usage plan p1 on API Stage a1:prod; a key can be in only one usage plan for each stage"
	cases := []struct {
		name string
		prep func(h *testFSM)
		cmd  func(h *testFSM) *pb.Command
		code pb.ErrorCode
		msg  string
	}{
		{"create api without id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_CreateRestApi{CreateRestApi: &pb.CreateRestApi{}}}
		}, codeBad, "RestApi id is missing"},
		{"create api twice", nil, func(*testFSM) *pb.Command { return cmdCreateAPI("a1") }, codeConflict, "RestApi a1 already exists"},
		{"update api missing body", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{}}}
		}, codeBad, "RestApi is missing"},
		{"update unknown api", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: &pb.RestApi{Id: "zz", Name: "n"}}}}
		}, codeNotFound, "Invalid API identifier specified"},
		{"update api stale revision", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: &pb.RestApi{Id: "a1", Name: "n"}, IfRevision: 999}}}
		}, codeConflict, "RestApi a1 was changed concurrently; retry"},
		{"delete unknown api", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "zz"}}}
		}, codeNotFound, "Invalid API identifier specified"},
		{"delete api a plan uses", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "a1"}}}
		}, codeBad, "Cannot delete API a1 because usage plans are associated with its stage prod, including p1"},
		{"deployment without id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_CreateDeployment{CreateDeployment: &pb.CreateDeployment{}}}
		}, codeBad, "Deployment id is missing"},
		{"deployment of unknown api", nil, func(*testFSM) *pb.Command { return cmdDeploy("zz", "d9", "") }, codeNotFound, "Invalid API identifier specified"},
		{"deployment twice", nil, func(*testFSM) *pb.Command { return cmdDeploy("a1", "d1", "") }, codeConflict, "Deployment d1 already exists"},
		{"stage without name", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Create: true, Stage: &pb.Stage{RestApiId: "a1"}}}}
		}, codeBad, "Stage name is missing"},
		{"stage of unknown api", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Create: true, Stage: &pb.Stage{RestApiId: "zz", StageName: "qa"}}}}
		}, codeNotFound, "Invalid API identifier specified"},
		{"stage of unknown deployment", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Create: true, Stage: &pb.Stage{RestApiId: "a1", StageName: "qa", DeploymentId: "d9"}}}}
		}, codeNotFound, "Invalid deployment identifier specified"},
		{"create stage twice", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Create: true, Stage: &pb.Stage{RestApiId: "a1", StageName: "prod"}}}}
		}, codeConflict, "Stage already exists"},
		{"update unknown stage", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: &pb.Stage{RestApiId: "a1", StageName: "qa"}}}}
		}, codeNotFound, "Invalid Stage identifier specified"},
		{"update stage stale revision", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{IfRevision: 999, Stage: &pb.Stage{RestApiId: "a1", StageName: "prod"}}}}
		}, codeConflict, "Stage prod was changed concurrently; retry"},
		{"delete unknown stage", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteStage{DeleteStage: &pb.DeleteStage{RestApiId: "a1", StageName: "qa"}}}
		}, codeNotFound, "Invalid Stage identifier specified"},
		{"delete stage a plan uses", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteStage{DeleteStage: &pb.DeleteStage{RestApiId: "a1", StageName: "prod"}}}
		}, codeBad, "Cannot delete Stage prod of API a1 because usage plans are associated with it, including p1"},
		{"plan without id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Create: true}}}
		}, codeBad, "Usage plan id is missing"},
		{"create plan twice", nil, func(*testFSM) *pb.Command { return cmdPlan("p1", true, nil) }, codeConflict, "Usage plan p1 already exists"},
		{"update unknown plan", nil, func(*testFSM) *pb.Command { return cmdPlan("p9", false, nil) }, codeNotFound, "Invalid Usage Plan ID specified"},
		{"update plan stale revision", nil, func(*testFSM) *pb.Command {
			c := cmdPlan("p1", false, nil, "a1/prod")
			c.GetPutUsagePlan().IfRevision = 999
			return c
		}, codeConflict, "Usage plan p1 was changed concurrently; retry"},
		{"plan with an empty stage", nil, func(*testFSM) *pb.Command {
			c := cmdPlan("p9", true, nil)
			c.GetPutUsagePlan().Plan.ApiStages = []*pb.ApiStage{{ApiId: "a1"}}
			return c
		}, codeBad, "Invalid API Stage {api: a1, stage: } specified for usageplan p9"},
		{"plan with an unknown stage", nil, func(*testFSM) *pb.Command { return cmdPlan("p9", true, nil, "a1/qa") }, codeNotFound, "Invalid API Stage {api: a1, stage: qa} specified for usageplan p9"},
		{"plan with a stage twice", nil, func(*testFSM) *pb.Command { return cmdPlan("p9", true, nil, "a1/dev", "a1/dev") }, codeBad, "API Stage a1:dev is listed twice in usage plan p9"},
		{"plan gains a stage its key has in another plan", func(h *testFSM) {
			h.ok(cmdPlan("p2", true, nil, "a1/dev"))
			h.ok(cmdAttach("p2", "k1"))
		}, func(*testFSM) *pb.Command { return cmdPlan("p2", false, nil, "a1/dev", "a1/prod") }, codeConflict,
			"API Key k1 is already associated with usage plan p1 on API Stage a1:prod; a key can be in only one usage plan for each stage"},
		{"delete unknown plan", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteUsagePlan{DeleteUsagePlan: &pb.DeleteUsagePlan{Id: "p9"}}}
		}, codeNotFound, "Invalid Usage Plan ID specified"},
		{"delete plan with stages", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteUsagePlan{DeleteUsagePlan: &pb.DeleteUsagePlan{Id: "p1"}}}
		}, codeBad, "Cannot delete Usage Plan p1 because there are API Stages associated with it, including a1:prod"},
		{"key without id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Create: true}}}
		}, codeBad, "API key id is missing"},
		{"create key twice", nil, func(*testFSM) *pb.Command { return cmdKey("k1", "anotherXvalueX000000000") }, codeConflict, "API Key k1 already exists"},
		{"key without value", nil, func(*testFSM) *pb.Command { return cmdKey("k9", "") }, codeBad, "API Key value is missing"},
		{"key with a taken value", nil, func(*testFSM) *pb.Command { return cmdKey("k9", "valueXofXkeyXoneX0000000") }, codeConflict, "API Key already exists"},
		{"update unknown key", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: &pb.ApiKey{Id: "k9"}}}}
		}, codeNotFound, "Invalid API Key identifier specified"},
		{"update key stale revision", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: &pb.ApiKey{Id: "k1"}, IfRevision: 999}}}
		}, codeConflict, "API Key k1 was changed concurrently; retry"},
		{"delete unknown key", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k9"}}}
		}, codeNotFound, "Invalid API Key identifier specified"},
		{"import a new key with a taken id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
				{Key: &pb.ApiKey{Id: "k1", Value: "brandXnewXvalueX0000000"}, Line: 2},
			}}}}
		}, codeConflict, "API Key k1 already exists"},
		{"import with warnings when they fail it", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{FailOnWarnings: true, Keys: []*pb.ImportedKey{
				{Key: &pb.ApiKey{Id: "k9", Value: "brandXnewXvalueX0000000"}, UsagePlanIds: []string{"nope"}, Line: 2},
				{Key: &pb.ApiKey{Id: "k8"}, Line: 3},
			}}}}
		}, codeBad, "Import failed: line 2: Invalid Usage Plan ID specified (usage plan nope); line 3: API Key value is missing"},
		{"attach to unknown plan", nil, func(*testFSM) *pb.Command { return cmdAttach("p9", "k2") }, codeNotFound, "Invalid Usage Plan ID specified"},
		{"attach unknown key", nil, func(*testFSM) *pb.Command { return cmdAttach("p1", "k9") }, codeNotFound, "Invalid API Key identifier specified"},
		{"attach twice", nil, func(*testFSM) *pb.Command { return cmdAttach("p1", "k1") }, codeConflict, "Usage Plan p1 already contains API Key k1"},
		{"attach to a second plan on the same stage", func(h *testFSM) {
			h.ok(cmdPlan("p2", true, nil, "a1/dev", "a1/prod"))
		}, func(*testFSM) *pb.Command { return cmdAttach("p2", "k1") }, codeConflict, conflictK1},
		{"detach from unknown plan", nil, func(*testFSM) *pb.Command { return cmdDetach("p9", "k1") }, codeNotFound, "Invalid Usage Plan ID specified"},
		{"detach a key not in the plan", nil, func(*testFSM) *pb.Command { return cmdDetach("p1", "k2") }, codeNotFound, "Invalid API Key identifier specified"},
		{"detach from a plan without keys", func(h *testFSM) { h.ok(cmdPlan("p2", true, nil)) },
			func(*testFSM) *pb.Command { return cmdDetach("p2", "k1") }, codeNotFound, "Invalid API Key identifier specified"},
		{"account without settings", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{}}}
		}, codeBad, "account settings are missing"},
		{"default plan without id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{RestApiId: "a1", StageName: "prod"}}}
		}, codeBad, "Usage plan id is missing"},
		{"default plan of unknown stage", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{PlanId: "dp", RestApiId: "a1", StageName: "qa"}}}
		}, codeNotFound, "Invalid API Stage {api: a1, stage: qa} specified for usageplan dp"},
		{"default plan with a taken id", nil, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{PlanId: "p1", RestApiId: "a1", StageName: "prod"}}}
		}, codeConflict, "Usage plan p1 already exists"},
		{"second default plan on a stage", func(h *testFSM) {
			h.ok(&pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{PlanId: "dp", RestApiId: "a1", StageName: "prod"}}})
		}, func(*testFSM) *pb.Command {
			return &pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{PlanId: "dp2", RestApiId: "a1", StageName: "prod"}}}
		}, codeConflict, "API Stage a1:prod already has a default usage plan: dp"},
		{"remaining of unknown plan", nil, func(*testFSM) *pb.Command { return cmdSetRemaining("p9", "k1", 5) }, codeNotFound, "Invalid Usage Plan ID specified"},
		{"remaining of a key not in the plan", nil, func(*testFSM) *pb.Command { return cmdSetRemaining("p1", "k2", 5) }, codeNotFound, "Invalid API Key identifier specified"},
		{"remaining of a plan without quota", func(h *testFSM) {
			h.ok(cmdPlan("p2", true, nil, "a1/dev"))
			h.ok(cmdAttach("p2", "k2"))
		}, func(*testFSM) *pb.Command { return cmdSetRemaining("p2", "k2", 5) }, codeBad, "Usage plan p2 has no quota, so there is no remaining quota to set"},
		{"negative remaining", nil, func(*testFSM) *pb.Command { return cmdSetRemaining("p1", "k1", -1) }, codeBad, "Invalid value \"-1\" for /remaining: want an integer from 0 to 1000000000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestFSM(t, t0)
			h.setup(quota(100, "DAY", 0))
			if tc.prep != nil {
				tc.prep(h)
			}
			before := h.f.Config()
			ledgersBefore := h.f.KeyLedgers("p1")
			res := h.apply(tc.cmd(h))
			if res.Code != tc.code || res.Message != tc.msg {
				t.Fatalf("got %v %q\nwant %v %q", res.Code, res.Message, tc.code, tc.msg)
			}
			if res.Index != h.index || h.f.AppliedIndex() != h.index {
				t.Fatalf("result index %d, applied %d, want %d", res.Index, h.f.AppliedIndex(), h.index)
			}
			if h.f.Config() != before {
				t.Fatal("a failed command replaced the configuration")
			}
			if after := h.f.KeyLedgers("p1"); len(after) != len(ledgersBefore) {
				t.Fatalf("a failed command changed the ledgers: %v -> %v", ledgersBefore, after)
			}
		})
	}
}

func TestFSMOnePlanPerStage(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	// k1 is in p1 (a1/prod). A plan on another stage may hold it too.
	h.ok(cmdPlan("p2", true, nil, "a1/dev"))
	h.ok(cmdAttach("p2", "k1"))
	// Moving p2 onto a1/prod as well would put k1 in two plans there.
	before := h.f.Config()
	if res := h.apply(cmdPlan("p2", false, nil, "a1/dev", "a1/prod")); res.Code != codeConflict {
		t.Fatalf("adding a covered stage: %v %q", res.Code, res.Message)
	}
	if h.f.Config() != before || len(h.f.Config().UsagePlans["p2"].ApiStages) != 1 {
		t.Fatal("the refused plan update changed the plan")
	}
	// Once k1 leaves p1, p2 may cover a1/prod.
	h.ok(cmdDetach("p1", "k1"))
	h.ok(cmdPlan("p2", false, nil, "a1/dev", "a1/prod"))
	// And now k1 cannot rejoin p1.
	if res := h.apply(cmdAttach("p1", "k1")); res.Code != codeConflict || !strings.Contains(res.Message, "usage plan p2 on API Stage a1:prod") {
		t.Fatalf("re-attach: %v %q", res.Code, res.Message)
	}
	// Other keys are free to join p1.
	h.ok(cmdAttach("p1", "k2"))
}

func TestFSMDeletePlan(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	h.grant("n1", "p1", "k1", 10)
	if h.ledger("p1", "k1") == nil {
		t.Fatal("no ledger after a grant")
	}
	h.ok(cmdPlan("p1", false, quota(100, "DAY", 0))) // no stages left
	h.ok(&pb.Command{Body: &pb.Command_DeleteUsagePlan{DeleteUsagePlan: &pb.DeleteUsagePlan{Id: "p1"}}})
	c := h.f.Config()
	if _, ok := c.UsagePlans["p1"]; ok {
		t.Fatal("plan still there")
	}
	if _, ok := c.PlanKeys["p1"]; ok {
		t.Fatal("plan keys still there")
	}
	if ls := h.f.KeyLedgers("p1"); len(ls) != 0 {
		t.Fatalf("ledgers of a deleted plan: %v", ls)
	}
	if g := h.grant("n1", "p1", "k1", 1); !g.Unknown || g.Granted != 0 {
		t.Fatalf("grant in a deleted plan: %v", g)
	}
}

func TestFSMDeleteKeyDetachesAndDropsLedgers(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	h.ok(cmdPlan("p2", true, quota(5, "MONTH", 0), "a1/dev"))
	h.ok(cmdAttach("p2", "k1"))
	h.ok(cmdAttach("p2", "k2"))
	h.grant("n1", "p1", "k1", 3)
	h.grant("n1", "p2", "k1", 3)
	h.grant("n1", "p2", "k2", 3)
	h.ok(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k1"}}})
	c := h.f.Config()
	if _, ok := c.ApiKeys["k1"]; ok {
		t.Fatal("key still there")
	}
	for _, plan := range []string{"p1", "p2"} {
		if _, in := c.PlanKeys[plan].GetKeys()["k1"]; in {
			t.Fatalf("k1 still in %s", plan)
		}
		if l := h.ledger(plan, "k1"); l != nil {
			t.Fatalf("k1's ledger in %s survived: %v", plan, l)
		}
	}
	if l := h.ledger("p2", "k2"); l == nil || heldBy(l, "n1") != 3 {
		t.Fatalf("k2's ledger was touched: %v", l)
	}
	// Reports for the deleted key are dropped.
	h.report("n1", "p1", "k1", DayOf(t0.Unix()), 2, 0, 0)
	if l := h.ledger("p1", "k1"); l != nil {
		t.Fatalf("a report recreated a deleted key's ledger: %v", l)
	}
}

func TestFSMImport(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	h.ok(cmdPlan("p2", true, nil, "a1/dev"))
	oldK1 := h.f.Config().ApiKeys["k1"]
	attachedAt := h.f.Config().PlanKeys["p1"].Keys["k1"]
	h.now = t0.Add(time.Hour)
	res := h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
		// Same value as k1: overwritten, keeps its id, already in p1.
		{Key: &pb.ApiKey{Id: "ignored", Value: "valueXofXkeyXoneX0000000", Name: "renamed", Description: "d", Enabled: false}, UsagePlanIds: []string{"p1", "p2"}, Line: 2},
		{Key: &pb.ApiKey{Id: "k9", Value: "importedXvalueX00000000", Name: "new", Enabled: true}, UsagePlanIds: []string{"p2", "nope"}, Line: 3},
		{Key: &pb.ApiKey{Value: "noXidXvalueX0000000000"}, Line: 4},
		{Key: &pb.ApiKey{Id: "k8"}, Line: 5},
	}}}})
	if strings.Join(res.Ids, ",") != "k1,k9" {
		t.Fatalf("ids %v, want k1,k9", res.Ids)
	}
	wantWarn := []string{
		"line 3: Invalid Usage Plan ID specified (usage plan nope)",
		"line 4: API Key id is missing",
		"line 5: API Key value is missing",
	}
	if strings.Join(res.Warnings, "|") != strings.Join(wantWarn, "|") {
		t.Fatalf("warnings\n%q\nwant\n%q", res.Warnings, wantWarn)
	}
	c := h.f.Config()
	k1 := c.ApiKeys["k1"]
	if _, ok := c.ApiKeys["ignored"]; ok {
		t.Fatal("an overwritten key got a new id")
	}
	if k1.Name != "renamed" || k1.Description != "d" || k1.Enabled || k1.CreatedDate != oldK1.CreatedDate || k1.LastUpdatedDate != t0.Add(time.Hour).Unix() {
		t.Fatalf("overwritten key %v", k1)
	}
	if c.PlanKeys["p1"].Keys["k1"] != attachedAt {
		t.Fatalf("re-importing k1 re-attached it to p1: index %d, was %d", c.PlanKeys["p1"].Keys["k1"], attachedAt)
	}
	for _, pk := range []struct{ plan, key string }{{"p1", "k1"}, {"p2", "k1"}, {"p2", "k9"}} {
		if _, in := c.PlanKeys[pk.plan].GetKeys()[pk.key]; !in {
			t.Fatalf("%s not in %s after import", pk.key, pk.plan)
		}
	}
	if k9 := c.ApiKeys["k9"]; k9 == nil || k9.CreatedDate != t0.Add(time.Hour).Unix() || !k9.Enabled {
		t.Fatalf("imported key %v", k9)
	}

	// fail_on_warnings: nothing is applied.
	before := h.f.Config()
	res = h.apply(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{FailOnWarnings: true, Keys: []*pb.ImportedKey{
		{Key: &pb.ApiKey{Id: "k7", Value: "freshXvalueX0000000000"}, UsagePlanIds: []string{"p2"}, Line: 2},
		{Key: &pb.ApiKey{Value: "valueXofXkeyXtwoX0000000", Name: "x"}, Line: 3},
		{Key: &pb.ApiKey{Id: "k6", Value: "otherXvalueX0000000000"}, UsagePlanIds: []string{"nope"}, Line: 4},
	}}}})
	if res.Code != codeBad || !strings.HasPrefix(res.Message, "Import failed: line 4: Invalid Usage Plan ID specified") {
		t.Fatalf("fail_on_warnings: %v %q", res.Code, res.Message)
	}
	if h.f.Config() != before {
		t.Fatal("a failed import changed the configuration")
	}
	c = h.f.Config()
	if _, ok := c.ApiKeys["k7"]; ok {
		t.Fatal("a failed import added a key")
	}
	if c.ApiKeys["k2"].Name == "x" {
		t.Fatal("a failed import overwrote a key")
	}

	// Importing the same file again is idempotent.
	again := h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
		{Key: &pb.ApiKey{Id: "k9", Value: "importedXvalueX00000000", Name: "new", Enabled: true}, UsagePlanIds: []string{"p2"}, Line: 2},
	}}}})
	if len(again.Warnings) != 0 || strings.Join(again.Ids, ",") != "k9" {
		t.Fatalf("re-import: %v", again)
	}
}

func TestFSMDefaultPlan(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil) // k1 is in p1 on a1/prod; k2 and k3 are in no plan
	h.ok(cmdPlan("p2", true, nil, "a1/dev"))
	h.ok(cmdAttach("p2", "k2")) // covers a1/dev only: k2 is uncovered on a1/prod
	res := h.ok(&pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{
		PlanId: "dp", RestApiId: "a1", StageName: "prod", Name: "default",
	}}})
	if res.Id != "dp" {
		t.Fatalf("result %v", res)
	}
	c := h.f.Config()
	dp := c.UsagePlans["dp"]
	if !dp.IsDefault || dp.Quota != nil || dp.Throttle != nil || !planCovers(dp, "a1", "prod") || dp.CreatedDate != t0.Unix() {
		t.Fatalf("default plan %v", dp)
	}
	keys := slices.Sorted(maps.Keys(c.PlanKeys["dp"].GetKeys()))
	if strings.Join(keys, ",") != "k2,k3" {
		t.Fatalf("default plan holds %v, want k2,k3 (k1 is covered by p1)", keys)
	}
	for _, k := range keys {
		if c.PlanKeys["dp"].Keys[k] != h.index {
			t.Fatalf("%s attached at %d, want %d", k, c.PlanKeys["dp"].Keys[k], h.index)
		}
	}

	// A second plan on the same stage cannot take a key the default plan holds.
	h.ok(cmdPlan("gold", true, quota(10, "DAY", 0), "a1/prod"))
	if res := h.apply(cmdAttach("gold", "k3")); res.Code != codeConflict || !strings.Contains(res.Message, "usage plan dp on API Stage a1:prod") {
		t.Fatalf("attach of a default-plan key: %v %q", res.Code, res.Message)
	}
	// Once it leaves the default plan it can.
	h.ok(cmdDetach("dp", "k3"))
	h.ok(cmdAttach("gold", "k3"))

	// A default plan update keeps the flag; a second default is refused.
	h.ok(cmdPlan("dp", false, nil, "a1/prod"))
	if !h.f.Config().UsagePlans["dp"].IsDefault {
		t.Fatal("an update dropped the default flag")
	}
	if res := h.apply(&pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{
		PlanId: "dp2", RestApiId: "a1", StageName: "prod",
	}}}); res.Code != codeConflict {
		t.Fatalf("second default plan: %v %q", res.Code, res.Message)
	}
}

func TestFSMRequestDedup(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	day := DayOf(t0.Unix())

	attach := cmdAttach("p1", "k2")
	attach.RequestId = "req-attach"
	first := h.ok(attach)
	cfg := h.f.Config()
	again := h.apply(attach) // a retry after an unknown outcome
	if !proto.Equal(first, again) {
		t.Fatalf("retry answered %v, first answer %v", again, first)
	}
	if h.f.Config() != cfg {
		t.Fatal("a retried command changed the configuration")
	}
	if h.f.AppliedIndex() != h.index {
		t.Fatalf("applied index %d after a retried command at %d", h.f.AppliedIndex(), h.index)
	}

	batch := cmdLedger(&pb.LedgerBatch{NodeId: "n1",
		Reports: []*pb.UsageReport{{PlanId: "p1", KeyId: "k1", Day: day, Count: 4}},
		Grants:  []*pb.GrantRequest{grantReq("p1", "k1", 10)},
	})
	batch.RequestId = "req-batch"
	r1 := h.ok(batch)
	r2 := h.ok(proto.Clone(batch).(*pb.Command))
	if !proto.Equal(r1, r2) {
		t.Fatalf("resent batch answered %v, first %v", r2, r1)
	}
	l := h.ledger("p1", "k1")
	if usedNow(l) != 4 || l.Daily[day] != 4 || heldBy(l, "n1") != 10 {
		t.Fatalf("a resent batch counted twice: %v", l)
	}

	// A failure is remembered too: the retry does not apply.
	bad := cmdAttach("p1", "k2")
	bad.RequestId = "req-bad"
	fr := h.apply(bad)
	if fr.Code != codeConflict {
		t.Fatalf("attach twice: %v", fr)
	}
	h.ok(cmdDetach("p1", "k2"))
	if fr2 := h.apply(bad); !proto.Equal(fr, fr2) {
		t.Fatalf("retried failure answered %v, first %v", fr2, fr)
	}
	if _, in := h.f.Config().PlanKeys["p1"].Keys["k2"]; in {
		t.Fatal("a retried command applied the second time")
	}
}

// TestScenario2TimeIsTheLeaders: the FSM takes each entry's time as the
// leader stamped it, and does not clamp it forward: one entry stamped by a
// clock 30 days ahead does not move the calendar for good.
func TestScenario2TimeIsTheLeaders(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(10, "DAY", 0))
	h.now = t0.Add(30 * 24 * time.Hour) // a leader whose clock ran ahead, once
	if g := h.grant("n1", "p1", "k1", 4); g.PeriodStart != DayOf(h.now.Unix())*86400 {
		t.Fatalf("grant under the skewed leader: %v", g)
	}
	h.now = t0 // the next leader's clock is right
	res := h.ok(cmdCreateAPI("a2"))
	if res.TimeUnix != t0.Unix() || h.f.Config().RestApis["a2"].CreatedDate != t0.Unix() {
		t.Fatalf("time after the skewed entry: result %d, created %d, want %d", res.TimeUnix, h.f.Config().RestApis["a2"].CreatedDate, t0.Unix())
	}
	g := h.grant("n2", "p1", "k1", 10)
	if g.PeriodStart != DayOf(t0.Unix())*86400 || g.Granted != 10 {
		t.Fatalf("today's grant after the skewed entry: %v, want all 10 of today", g)
	}
	h.now = t0.Add(24 * time.Hour)
	if g := h.grant("n2", "p1", "k1", 10); g.Granted != 10 || g.PeriodStart != DayOf(h.now.Unix())*86400 {
		t.Fatalf("the quota did not reset the next day: %v", g)
	}
}

func TestFSMIgnoresOtherLogTypes(t *testing.T) {
	f := NewFSM()
	before := f.Config()
	if out := f.Apply(&raft.Log{Type: raft.LogNoop, Index: 1}); out != nil {
		t.Fatalf("noop entry answered %v", out)
	}
	if f.Config() != before {
		t.Fatal("a noop entry changed the configuration")
	}
}

func TestFSMUndecodableEntryPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte{0x0a, 0x05, 0x01}, "undecodable raft entry at index 7"},
		{"unknown command", mustMarshal(t, &pb.Command{RequestId: "x"}), "has a command this version does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Fatalf("panic %v, want it to say %q", r, tc.want)
				}
			}()
			f.Apply(&raft.Log{Type: raft.LogCommand, Index: 7, Data: tc.data})
		})
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	writeErr  error
	closed    bool
	cancelled bool
}

func (s *memSink) ID() string { return "mem" }

func (s *memSink) Write(p []byte) (int, error) {
	if s.writeErr != nil {
		return 0, s.writeErr
	}
	return s.Buffer.Write(p)
}

func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// persist snapshots an FSM into a buffer.
func persist(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v, cancelled %v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

// decodeSnapshot reads a snapshot's bytes into one message.
func decodeSnapshot(t testing.TB, b []byte) *pb.Snapshot {
	t.Helper()
	s, err := readSnapshot(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameSnapshot tells whether two snapshots hold the same state (parts are
// written in map order, so their bytes may differ).
func sameSnapshot(t testing.TB, a, b []byte) bool {
	t.Helper()
	return proto.Equal(decodeSnapshot(t, a), decodeSnapshot(t, b))
}

// stream writes messages as a snapshot stream: the first is the header.
func stream(t testing.TB, msgs ...*pb.Snapshot) []byte {
	t.Helper()
	b := bytes.NewBufferString(snapshotMagic)
	for _, m := range msgs {
		if _, err := protodelim.MarshalTo(b, m); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// encodeSnapshot writes s as Persist does.
func encodeSnapshot(t testing.TB, s *pb.Snapshot) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeSnapshot(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// buildState gives an FSM configuration, ledgers with grants, usage on two
// days, an extension and de-duplication records.
func buildState(h *testFSM) {
	h.setup(quota(100, "DAY", 0))
	h.ok(cmdPlan("p2", true, quota(1000, "MONTH", 3), "a1/dev"))
	h.ok(cmdAttach("p2", "k1"))
	h.ok(cmdAttach("p2", "k2"))
	h.ok(&pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{Throttle: &pb.ThrottleSettings{RateLimit: 50, BurstLimit: 20}}}}})
	yesterday := DayOf(t0.Unix()) - 1
	for i, n := range []string{"n1", "n2", "n3"} {
		b := cmdLedger(&pb.LedgerBatch{NodeId: n, Grants: []*pb.GrantRequest{
			grantReq("p1", "k1", int64(5+i)), grantReq("p2", "k1", 7), grantReq("p2", "k2", 9),
		}})
		b.RequestId = "grant-" + n
		h.ok(b)
	}
	h.report("n1", "p2", "k1", yesterday, 11, 0, 0)
	h.report("n1", "p1", "k1", DayOf(t0.Unix()), 3, 0, 0)
	h.ok(cmdSetRemaining("p1", "k1", 150))
}

func TestFSMSnapshotRoundTrip(t *testing.T) {
	h := newTestFSM(t, t0)
	buildState(h)
	cfgAtSnap := h.f.Config()
	p1AtSnap, p2AtSnap := h.f.KeyLedgers("p1"), h.f.KeyLedgers("p2")

	snapIndex := h.index
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Raft applies while Persist runs: the snapshot must not see it.
	h.now = t0.Add(time.Minute)
	h.ok(cmdKey("k4", "valueXofXkeyXfourX000000"))
	h.grant("n1", "p1", "k1", 1)
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v, cancelled %v", sink.closed, sink.cancelled)
	}
	data := append([]byte(nil), sink.Bytes()...)
	s := decodeSnapshot(t, data)
	if s.Version != snapshotVersion || len(s.Ledgers) != 3 || len(s.Dedup) == 0 || s.LastTimeUnixNano != t0.UnixNano() {
		t.Fatalf("snapshot: version %d, %d ledgers, %d dedup, last time %d", s.Version, len(s.Ledgers), len(s.Dedup), s.LastTimeUnixNano)
	}

	g := NewFSM()
	var revoked []QuotaEvent
	g.OnQuotaChange(func(ev QuotaEvent) { revoked = append(revoked, ev) })
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.Config(), cfgAtSnap) {
		t.Fatalf("restored config differs:\n%v\nwant\n%v", g.Config(), cfgAtSnap)
	}
	if len(revoked) != 1 || !revoked[0].Revoke || revoked[0].PlanID != "" || revoked[0].KeyID != "" {
		t.Fatalf("restore announced %v, want one revocation of every key", revoked)
	}
	if g.AppliedIndex() != s.AppliedIndex || s.AppliedIndex == 0 {
		t.Fatalf("restored applied index %d, snapshot holds %d", g.AppliedIndex(), s.AppliedIndex)
	}
	if _, ok := g.Config().ApiKeys["k4"]; ok {
		t.Fatal("the snapshot saw a command applied after Snapshot()")
	}
	for plan, want := range map[string][]*pb.KeyLedger{"p1": p1AtSnap, "p2": p2AtSnap} {
		got := g.KeyLedgers(plan)
		if len(got) != len(want) {
			t.Fatalf("%s: %d ledgers, want %d", plan, len(got), len(want))
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("%s ledger %d:\n%v\nwant\n%v", plan, i, got[i], want[i])
			}
		}
	}
	// The restored state snapshots to the same content.
	if again := persist(t, g); !sameSnapshot(t, again, data) {
		t.Fatalf("restored state snapshots differently:\n%v\nwant\n%v", decodeSnapshot(t, again), s)
	}

	// Replaying the same entries on both gives the same state: the restored
	// FSM knows the request ids and the time.
	h2 := &testFSM{t: t, f: g, index: snapIndex, now: t0.Add(-time.Hour)}
	a := newTestFSM(t, t0) // the same history, never snapshotted
	buildState(a)
	if a.index != snapIndex {
		t.Fatalf("replayed history ends at %d, snapshot at %d", a.index, snapIndex)
	}
	a.now = h2.now
	for _, fsm := range []*testFSM{a, h2} {
		dup := cmdLedger(&pb.LedgerBatch{NodeId: "n2", Grants: []*pb.GrantRequest{grantReq("p1", "k1", 5)}})
		dup.RequestId = "grant-n2" // already applied: must not grant again
		fsm.ok(dup)
		r := fsm.ok(cmdKey("k5", "valueXofXkeyXfiveX000000"))
		if r.TimeUnix != fsm.now.Unix() {
			t.Fatalf("time after restore %d, want the entry's %d", r.TimeUnix, fsm.now.Unix())
		}
	}
	if !proto.Equal(decodeSnapshot(t, persist(t, a.f)), decodeSnapshot(t, persist(t, g))) {
		t.Fatal("a restored FSM and the original diverge on the same entries")
	}
	if l := ledgerIn(g.KeyLedgers("p1"), "k1"); heldBy(l, "n2") != 6 {
		t.Fatalf("a de-duplicated grant applied after restore: %v", l.Grants)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestFSMRestoreRefuses(t *testing.T) {
	f := NewFSM()
	h := &testFSM{t: t, f: f, now: t0}
	h.setup(nil)
	before := f.Config()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"newer version", stream(t, &pb.Snapshot{Version: snapshotVersion + 1}), "snapshot version 4 is not supported by this node (want 3, 2 or 1)"},
		{"one message of version 3", mustMarshal(t, &pb.Snapshot{Version: snapshotVersion, Config: emptyConfig()}), "snapshot version 3 is not supported"},
		{"no version", mustMarshal(t, &pb.Snapshot{}), "snapshot version 0 is not supported"},
		{"garbage", []byte{0x0a, 0x05, 0x01}, "decode snapshot"},
		{"a stream of no header", []byte(snapshotMagic), "decode snapshot header"},
		{"a stream with a bad magic", append([]byte("\x00tollgate snapshot strean\n"), stream(t, &pb.Snapshot{Version: snapshotVersion})[len(snapshotMagic):]...), "not a snapshot stream"},
		{"a header holding keys", stream(t, &pb.Snapshot{Version: snapshotVersion, Config: &pb.Config{ApiKeys: map[string]*pb.ApiKey{"k9": {Id: "k9"}}}}), "the header holds per-key entries"},
		{"a key stored twice", stream(t, &pb.Snapshot{Version: snapshotVersion},
			&pb.Snapshot{Config: &pb.Config{ApiKeys: map[string]*pb.ApiKey{"k9": {Id: "k9"}}}},
			&pb.Snapshot{Config: &pb.Config{ApiKeys: map[string]*pb.ApiKey{"k9": {Id: "k9"}}}}), `part 2: "k9" is stored twice`},
		{"a part holding more than keys", stream(t, &pb.Snapshot{Version: snapshotVersion},
			&pb.Snapshot{AppliedIndex: 99}), "part 1: it holds more than per-key entries"},
		{"a part cut short", stream(t, &pb.Snapshot{Version: snapshotVersion},
			&pb.Snapshot{Config: &pb.Config{ApiKeys: map[string]*pb.ApiKey{"k9": {Id: "k9"}}}})[:len(snapshotMagic)+5], "decode snapshot part 1"},
	} {
		err := f.Restore(nopCloser{bytes.NewReader(tc.data)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if f.Config() != before {
			t.Fatalf("%s: a refused snapshot replaced the configuration", tc.name)
		}
	}
}

func TestFSMPersistCancelsOnWriteError(t *testing.T) {
	h := newTestFSM(t, t0)
	buildState(h)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	diskFull := errors.New("no space left on device")
	sink := &memSink{writeErr: diskFull}
	err = snap.Persist(sink)
	if !errors.Is(err, diskFull) {
		t.Fatalf("Persist: %v, want it to wrap %v", err, diskFull)
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled %v, closed %v; want cancelled only", sink.cancelled, sink.closed)
	}
}
