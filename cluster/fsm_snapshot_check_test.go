package cluster

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// TestFSMRestoreRefusesInvalidContent: a well-formed snapshot whose state
// breaks a rule the FSM enforces on commands (a key value the admin API
// refuses, a bad id, an object under another id, an out-of-range quota or
// throttle, an oversized name, a negative ledger count) is refused by
// Restore with the rule's message, and the state stays as it was.
func TestFSMRestoreRefusesInvalidContent(t *testing.T) {
	h := newTestFSM(t, t0)
	buildState(h)
	base := persist(t, h.f)
	long := strings.Repeat("x", 1025)
	for _, tc := range []struct {
		name   string
		change func(s *pb.Snapshot)
		want   string
	}{
		{"a 5-character key value", func(s *pb.Snapshot) { s.Config.ApiKeys["k2"].Value = "abcde" }, "API Key value should be at least 20 characters"},
		{"a key value with a symbol", func(s *pb.Snapshot) { s.Config.ApiKeys["k2"].Value = "valueXofXkeyXtwoX000000!" }, `API key "k2"`},
		{"a key id with a slash", func(s *pb.Snapshot) {
			k := s.Config.ApiKeys["k2"]
			k.Id = "k/2"
			delete(s.Config.ApiKeys, "k2")
			s.Config.ApiKeys["k/2"] = k
		}, "Invalid API Key identifier"},
		{"a key stored under another id", func(s *pb.Snapshot) { s.Config.ApiKeys["k2"].Id = "k9" }, `stored under "k2", names "k9"`},
		{"a quota limit below zero", func(s *pb.Snapshot) { s.Config.UsagePlans["p1"].Quota.Limit = -1 }, "Invalid quota"},
		{"a quota period that does not exist", func(s *pb.Snapshot) { s.Config.UsagePlans["p1"].Quota.Period = "FORTNIGHT" }, "Invalid quota"},
		{"a plan throttle rate of NaN", func(s *pb.Snapshot) {
			s.Config.UsagePlans["p1"].Throttle = &pb.ThrottleSettings{RateLimit: math.NaN(), BurstLimit: 1}
		}, "rateLimit must be"},
		{"an account burst below zero", func(s *pb.Snapshot) {
			s.Config.Account.Throttle = &pb.ThrottleSettings{RateLimit: 1, BurstLimit: -1}
		}, "Invalid account throttle"},
		{"an API name over 1024 characters", func(s *pb.Snapshot) { s.Config.RestApis["a1"].Name = long }, "can be at most 1024 characters"},
		{"a stage variable with a newline", func(s *pb.Snapshot) { s.Config.Stages["a1/prod"].Variables["url"] = "http://x/\n" }, `stage "a1/prod"`},
		{"a plan without a name", func(s *pb.Snapshot) { s.Config.UsagePlans["p2"].Name = "" }, "a name is required"},
		{"51 tags on a key", func(s *pb.Snapshot) {
			tags := map[string]string{}
			for i := range 51 {
				tags["t"+itoa(int64(i))] = "v"
			}
			s.Config.ApiKeys["k1"].Tags = tags
		}, "Too many tags"},
		{"a data key of 5 bytes", func(s *pb.Snapshot) {
			s.Config.DataKey = &pb.DataKey{Wrapped: []byte("short"), Check: make([]byte, 32)}
		}, "data key must have 32 bytes"},
		{"an admin credential with a role that does not exist", func(s *pb.Snapshot) {
			s.Config.AdminCredentials = map[string]*pb.AdminCredential{"TGAKAAAAAAAAAAAAAAAA": {
				Id: "TGAKAAAAAAAAAAAAAAAA", Role: "root", SecretSealed: make([]byte, 68), SecretLookup: make([]byte, 32),
			}}
		}, `admin credential "TGAKAAAAAAAAAAAAAAAA"`},
		{"a stage cache cluster size that does not exist", func(s *pb.Snapshot) { s.Config.Stages["a1/prod"].CacheClusterSize = "2" }, "Invalid cache cluster size"},
		{"an access log destination with a newline", func(s *pb.Snapshot) {
			s.Config.Stages["a1/prod"].AccessLogSettings = &pb.AccessLogSettings{DestinationArn: "arn:\n"}
		}, "Invalid access log destinationArn"},
		{"an account CloudWatch role with a space", func(s *pb.Snapshot) { s.Config.Account.CloudwatchRoleArn = "arn: x" }, "Invalid cloudwatchRoleArn"},
		{"an API endpoint type that does not exist", func(s *pb.Snapshot) { s.Config.RestApis["a1"].EndpointTypes = []string{"LOCAL"} }, "Invalid endpoint type"},
		{"a deleted key stored under another id", func(s *pb.Snapshot) {
			s.Config.DeletedApiKeys = map[string]*pb.DeletedApiKey{"k8": {Id: "k9"}}
		}, `deleted API key "k8"`},
		{"a deleted key that is also a key", func(s *pb.Snapshot) {
			s.Config.DeletedApiKeys = map[string]*pb.DeletedApiKey{"k1": {Id: "k1"}}
		}, "an API key of the same id exists"},
		{"a plan's keys naming a bad key id", func(s *pb.Snapshot) { s.Config.PlanKeys["p1"].Keys["bad/id"] = 1 }, `usage plan keys "p1"`},
		{"a negative day count in a ledger", func(s *pb.Snapshot) {
			for _, l := range s.Ledgers {
				for d := range l.Daily {
					l.Daily[d] = -5
				}
			}
		}, "requests counted on day"},
		{"a negative grant in a ledger", func(s *pb.Snapshot) {
			for _, l := range s.Ledgers {
				if len(l.Grants) > 0 {
					l.Grants[0].Units = -1
				}
			}
		}, "a grant of -1 units"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := decodeSnapshot(t, base)
			tc.change(s)
			g := NewFSM()
			if err := g.Restore(nopCloser{bytes.NewReader(base)}); err != nil {
				t.Fatal(err)
			}
			before, beforeIndex := g.Config(), g.AppliedIndex()
			err := g.Restore(nopCloser{bytes.NewReader(mustMarshal(t, s))})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore: %v, want a refusal saying %q", err, tc.want)
			}
			if g.Config() != before || g.AppliedIndex() != beforeIndex || !bytes.Equal(persist(t, g), base) {
				t.Fatal("a refused snapshot changed the state")
			}
		})
	}
}

// TestFSMRestoreTakesEveryStateCommandsReach: states the FSM reaches
// through accepted commands restore, among them a stage method that set
// only a rate while the account throttle then went to 0/0 (the stage is
// checked on what it holds, not on the account it inherits from), and a
// default plan created with no name.
func TestFSMRestoreTakesEveryStateCommandsReach(t *testing.T) {
	h := newTestFSM(t, t0)
	buildState(h)
	rate := 10.0
	h.ok(&pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: &pb.Stage{
		RestApiId: "a1", StageName: "prod", DeploymentId: "d1",
		MethodSettings: map[string]*pb.MethodSetting{"*/*": {ThrottlingRateLimit: &rate}},
	}}}})
	h.ok(&pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{Throttle: &pb.ThrottleSettings{}}}}})
	h.ok(&pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{PlanId: "dflt", RestApiId: "a1", StageName: "dev"}}})
	data := persist(t, h.f)
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatalf("a state reached by accepted commands is refused: %v", err)
	}
	if !proto.Equal(g.Config(), h.f.Config()) {
		t.Fatal("restored configuration differs")
	}
}
