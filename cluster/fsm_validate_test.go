package cluster

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// TestFSMRefusesForgedCommands applies, through FSM.Apply, commands that
// the admin API would never send (each with one bad field) and checks the
// typed refusal and that neither the configuration nor the ledgers changed.
func TestFSMRefusesForgedCommands(t *testing.T) {
	key := func(k *pb.ApiKey, create bool) *pb.Command {
		return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: k, Create: create}}}
	}
	newKey := func(edit func(k *pb.ApiKey)) *pb.Command {
		k := &pb.ApiKey{Id: "k9", Value: "forgedValue0123456789", Name: "n", Enabled: true}
		edit(k)
		return key(k, true)
	}
	api := func(edit func(a *pb.RestApi)) *pb.Command {
		a := &pb.RestApi{Id: "a9", Name: "api"}
		edit(a)
		return &pb.Command{Body: &pb.Command_CreateRestApi{CreateRestApi: &pb.CreateRestApi{Api: a}}}
	}
	stage := func(edit func(s *pb.Stage)) *pb.Command {
		s := &pb.Stage{RestApiId: "a1", StageName: "qa", DeploymentId: "d1", Variables: map[string]string{"url": "http://127.0.0.1:1/qa"}}
		edit(s)
		return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: s, Create: true}}}
	}
	plan := func(edit func(p *pb.UsagePlan)) *pb.Command {
		c := cmdPlan("p9", true, quota(100, "DAY", 0), "a1/dev")
		edit(c.GetPutUsagePlan().Plan)
		return c
	}
	account := func(rate float64, burst int32) *pb.Command {
		return &pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{
			Throttle: &pb.ThrottleSettings{RateLimit: rate, BurstLimit: burst}}}}}
	}
	imp := func(keys ...*pb.ImportedKey) *pb.Command {
		return &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: keys}}}
	}
	f64 := func(f float64) *float64 { return &f }
	i32 := func(n int32) *int32 { return &n }

	cases := []struct {
		name string
		cmd  *pb.Command
		msg  string
	}{
		// API keys.
		{"key value of 5 characters", cmdKey("k9", "short"), "API Key value should be at least 20 characters"},
		{"key value of 129 characters", cmdKey("k9", strings.Repeat("a", 129)), "API Key value exceeds maximum size of 128 characters"},
		{"key value not alphanumeric", cmdKey("k9", "forged-value-0123456789"), "API Key value must contain only alphanumeric characters"},
		{"key id with a slash", cmdKey("k/9", "forgedValue0123456789"), `Invalid API Key identifier "k/9": it must have 1 to 1024 characters without / or NUL`},
		{"key name too long", newKey(func(k *pb.ApiKey) { k.Name = strings.Repeat("n", 1025) }), "Invalid API Key name, can be at most 1024 characters."},
		{"key name with a control character", newKey(func(k *pb.ApiKey) { k.Name = "a\x00b" }), "Invalid API Key name: it must be valid UTF-8 without control characters."},
		{"key description too long", newKey(func(k *pb.ApiKey) { k.Description = strings.Repeat("d", 125001) }), "Invalid API Key description specified."},
		{"key customer id too long", newKey(func(k *pb.ApiKey) { k.CustomerId = strings.Repeat("c", 1025) }), "Invalid customerId: at most 1024 characters without control characters"},
		{"key tag with a reserved prefix", newKey(func(k *pb.ApiKey) { k.Tags = map[string]string{"aws:x": "v"} }), `Invalid tag key "aws:x": the prefix aws: is reserved`},
		{"key stage key without a stage", newKey(func(k *pb.ApiKey) { k.StageKeys = []string{"a1"} }), "Invalid stage key specified: a1"},
		{"key update with a bad name", key(&pb.ApiKey{Id: "k1", Name: "x\ny"}, false), "Invalid API Key name: it must be valid UTF-8 without control characters."},

		// REST APIs, deployments and stages.
		{"api without a name", api(func(a *pb.RestApi) { a.Name = "" }), "Invalid REST API name specified: a name is required"},
		{"api id with a slash", api(func(a *pb.RestApi) { a.Id = "a/9" }), `Invalid API identifier "a/9": it must have 1 to 1024 characters without / or NUL`},
		{"api key source AUTHORIZER", api(func(a *pb.RestApi) { a.ApiKeySource = "AUTHORIZER" }), `Invalid apiKeySource "AUTHORIZER": only HEADER is supported`},
		{"api with 51 tags", api(func(a *pb.RestApi) {
			a.Tags = map[string]string{}
			for i := range 51 {
				a.Tags["t"+itoa(int64(i))] = "v"
			}
		}), "Too many tags: at most 50 are allowed"},
		{"api update without a name", &pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: &pb.RestApi{Id: "a1"}}}},
			"Invalid REST API name specified: a name is required"},
		{"deployment id with a slash", cmdDeploy("a1", "d/9", ""), `Invalid deployment identifier "d/9": it must have 1 to 1024 characters without / or NUL`},
		{"deployment with a bad stage name", cmdDeploy("a1", "d9", "q a"), "Stage name only allows a-zA-Z0-9_- and at most 128 characters"},
		{"deployment with an ftp upstream", func() *pb.Command {
			c := cmdDeploy("a1", "d9", "qa")
			c.GetCreateDeployment().Stage.Variables["url"] = "ftp://x/"
			return c
		}(), `Invalid value for stage variable "url": "ftp://x/" must be an absolute http or https URL such as https://backend.example.com/base`},
		{"stage name too long", stage(func(s *pb.Stage) { s.StageName = strings.Repeat("s", 129) }), "Stage name only allows a-zA-Z0-9_- and at most 128 characters"},
		{"stage variable name", stage(func(s *pb.Stage) { s.Variables["a-b"] = "x" }), `Invalid stage variable name "a-b": only a-zA-Z0-9_ are allowed`},
		{"stage variable value", stage(func(s *pb.Stage) { s.Variables["v"] = "a b" }), `Invalid value for stage variable "v": only alphanumerics and -._~:/?#&=,% are allowed`},
		{"stage method key", stage(func(s *pb.Stage) { s.MethodSettings = map[string]*pb.MethodSetting{"pets/GET": {}} }),
			`Invalid method setting key "pets/GET": it is "*/*" or "{resourcePath}/{HTTPMETHOD}", such as "/pets/GET"`},
		{"stage logging level", stage(func(s *pb.Stage) { s.MethodSettings = map[string]*pb.MethodSetting{"*/*": {LoggingLevel: "LOUD"}} }),
			`Invalid logging level "LOUD" for method */*: want OFF, ERROR or INFO`},
		{"stage method throttle above 1e9", stage(func(s *pb.Stage) {
			s.MethodSettings = map[string]*pb.MethodSetting{"*/*": {ThrottlingRateLimit: f64(2e9), ThrottlingBurstLimit: i32(1)}}
		}), "Invalid throttling of method */* (unset values inherit the account's): rateLimit must be from 0 to 1e+09, not 2e+09"},

		// Usage plans.
		{"plan without a name", plan(func(p *pb.UsagePlan) { p.Name = "" }), "Invalid usage plan name specified: a name is required"},
		{"plan id with a slash", plan(func(p *pb.UsagePlan) { p.Id = "p/9" }), `Invalid Usage Plan identifier "p/9": it must have 1 to 1024 characters without / or NUL`},
		{"plan throttle of burst 5 without a rate", plan(func(p *pb.UsagePlan) { p.Throttle = &pb.ThrottleSettings{BurstLimit: 5} }),
			"Invalid throttle: burstLimit is 5 but rateLimit is 0; a throttle needs a rateLimit above 0 when its burstLimit is above 0 (both 0 blocks every request)"},
		{"plan throttle NaN", plan(func(p *pb.UsagePlan) { p.Throttle = &pb.ThrottleSettings{RateLimit: math.NaN(), BurstLimit: 1} }),
			"Invalid throttle: rateLimit must be from 0 to 1e+09, not NaN"},
		{"plan throttle negative burst", plan(func(p *pb.UsagePlan) { p.Throttle = &pb.ThrottleSettings{RateLimit: 1, BurstLimit: -1} }),
			"Invalid throttle: burstLimit must be from 0 to 2147483647, not -1"},
		{"plan quota of 1e15", plan(func(p *pb.UsagePlan) { p.Quota.Limit = 1e15 }), "Invalid quota: invalid quota limit 1000000000000000: want 0 to 1000000000000"},
		{"plan quota period", plan(func(p *pb.UsagePlan) { p.Quota.Period = "YEAR" }), ""},
		{"plan quota offset", plan(func(p *pb.UsagePlan) { p.Quota.Offset = 1 }), ""},
		{"plan method throttle key", plan(func(p *pb.UsagePlan) {
			p.ApiStages[0].Throttle = map[string]*pb.ThrottleSettings{"GET": {RateLimit: 1, BurstLimit: 1}}
		}), `Invalid method "GET" in the throttle of API Stage a1:dev: a method is "{resourcePath}/{HTTPMETHOD}", such as "/pets/GET" or "//GET" for the root resource`},
		{"plan product code", plan(func(p *pb.UsagePlan) { p.ProductCode = "\x01" }), "Invalid product code: at most 1024 characters without control characters"},
		{"default plan id with a slash", &pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{
			PlanId: "p/9", RestApiId: "a1", StageName: "dev", Name: "d"}}}, `Invalid Usage Plan identifier "p/9": it must have 1 to 1024 characters without / or NUL`},

		// Account, remaining quota, imports.
		{"account throttle burst 5 without a rate", account(0, 5),
			"Invalid account throttle: burstLimit is 5 but rateLimit is 0; a throttle needs a rateLimit above 0 when its burstLimit is above 0 (both 0 blocks every request)"},
		{"account cloudwatchRoleArn with a space", &pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{CloudwatchRoleArn: "arn:aws:iam::1:role/a b"}}}},
			"Invalid cloudwatchRoleArn: at most 1024 characters without spaces or control characters"},
		{"account throttle infinite", account(math.Inf(1), 10), "Invalid account throttle: rateLimit must be from 0 to 1e+09, not +Inf"},
		{"remaining of 1e15", cmdSetRemaining("p1", "k1", 1e15), `Invalid value "1000000000000000" for /remaining: want an integer from 0 to 1000000000000`},
		{"import a value of 5 characters", imp(&pb.ImportedKey{Key: &pb.ApiKey{Id: "k9", Value: "short"}, Line: 2}),
			"line 2: API Key value should be at least 20 characters"},
		{"import a bad plan id", imp(&pb.ImportedKey{Key: &pb.ApiKey{Id: "k9", Value: "forgedValue0123456789"}, UsagePlanIds: []string{"p 1"}, Line: 3}),
			`line 3: invalid usage plan id "p 1"`},
		{"import a bad name", imp(&pb.ImportedKey{Key: &pb.ApiKey{Id: "k9", Value: "forgedValue0123456789", Name: "\x07"}, Line: 4}),
			"line 4: Invalid API Key name: it must be valid UTF-8 without control characters."},
		{"import too many keys", imp(make([]*pb.ImportedKey, 50001)...), "Too many API keys in one import: 50001, at most 50000 are allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestFSM(t, t0)
			h.setup(quota(100, "DAY", 0))
			h.grant("n1", "p1", "k1", 10)
			before := h.f.Config()
			ledgersBefore := h.f.KeyLedgers("p1")
			res := h.apply(tc.cmd)
			if res.Code != codeBad || (tc.msg != "" && res.Message != tc.msg) || res.Message == "" {
				t.Fatalf("got %v %q\nwant %v %q", res.Code, res.Message, codeBad, tc.msg)
			}
			if !proto.Equal(h.f.Config(), before) {
				t.Fatal("a refused command changed the configuration")
			}
			after := h.f.KeyLedgers("p1")
			if len(after) != len(ledgersBefore) {
				t.Fatalf("a refused command changed the ledgers: %v -> %v", ledgersBefore, after)
			}
			for i := range after {
				if !proto.Equal(after[i], ledgersBefore[i]) {
					t.Fatalf("a refused command changed the ledgers: %v -> %v", ledgersBefore[i], after[i])
				}
			}
		})
	}
}

// TestFSMLedgerSkipsAbsurdCounts: a report of more than any quota may hold
// (limiter.MaxQuotaLimit) counts nothing, as a negative one; a grant
// request above that gets at most the grant cap.
func TestFSMLedgerSkipsAbsurdCounts(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	g := h.grant("n1", "p1", "k1", 10)
	before := proto.Clone(h.ledger("p1", "k1"))
	day := DayOf(t0.Unix())
	h.report("n1", "p1", "k1", day, 1e15, g.PeriodStart, 0)
	h.report("n1", "p1", "k1", day, 1, g.PeriodStart, 1e15)
	if after := h.ledger("p1", "k1"); !proto.Equal(after, before) {
		t.Fatalf("an absurd report changed the ledger:\n%v\n->\n%v", before, after)
	}
	if g := h.grant("n2", "p1", "k1", math.MaxInt64); g.Granted != 90 {
		t.Fatalf("a grant of MaxInt64 got %d, want the 90 left", g.Granted)
	}
}
