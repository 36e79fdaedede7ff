package admin

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// Fuzz targets for everything that reads user input. Run one with, e.g.,
// go test -run '^$' -fuzz '^FuzzDecodeStrict$' -fuzzminimizetime 5s ./admin/
// Seed inputs are in testdata/fuzz/<target>/ as well as in f.Add calls.

// decodeTargets are the request types that decodeStrict reads.
func decodeTargets() []any {
	return []any{
		&createUsagePlanRequest{}, &patchRequest{}, &createAPIKeyRequest{}, &createStageRequest{},
		&createRestAPIRequest{}, &createDeploymentRequest{}, &createUsagePlanKeyRequest{},
	}
}

// FuzzDecodeStrict checks the strict JSON decoder on every request type: an
// accepted body is valid JSON without duplicate names, and what it decodes
// to encodes to JSON that decodes strictly to the same value (a round trip).
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"name":"gold","apiStages":[{"apiId":"a","stage":"prod","throttle":{"/pets/GET":{"burstLimit":20,"rateLimit":10.0}}}],"throttle":{"burstLimit":200,"rateLimit":100.0},"quota":{"limit":5000,"offset":0,"period":"MONTH"},"tags":{"team":"payments"}}`,
		`{"patchOperations":[{"op":"replace","path":"/name","value":"x"}]}`,
		`{"name":"p"} {}`, `{"name":"p","name":"q"}`, `{"NAME":1}`, `[`, `{"tags":{"a":"b","a":"c"}}`,
		`{"throttle":{"burstLimit":1e999}}`, strings.Repeat("[", 100), strings.Repeat(`{"tags":`, 40),
		`{"quota":{"limit":9223372036854775808}}`, `{"throttle":{"burstLimit":-1,"rateLimit":-0}}`,
		`{"name":"\ud800"}`, `{"name":"a\u0000b"}`, "{\"name\":\"\xff\"}", `{"unknown":1}`, `{"name":null}`,
		`{"endpointConfiguration":{"types":["REGIONAL"]},"minimumCompressionSize":0}`, `{"canarySettings":  [ 1, {"a" : 2} ]}`,
		`{"variables":{"url":"http://x"},"stageName":"prod"}`, `{"keyId":"k","keyType":"API_KEY"}`, ` `, `null`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range decodeTargets() {
			if err := decodeStrict(data, v); err != nil {
				continue
			}
			if len(bytes.TrimSpace(data)) > 0 && !json.Valid(data) {
				t.Fatalf("%T accepted invalid JSON %q", v, data)
			}
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T decoded from %q does not encode: %v", v, data, err)
			}
			w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := decodeStrict(enc, w); err != nil {
				t.Fatalf("%T: %q decoded, but its encoding %s is refused: %v", v, data, enc, err)
			}
			enc2, err := json.Marshal(w)
			if err != nil || !bytes.Equal(enc, enc2) {
				t.Fatalf("%T: round trip of %q: %s then %s (%v)", v, data, enc, enc2, err)
			}
		}
	})
}

// Fixed ids of the fuzz fixture.
const (
	fuzzAPI   = "a"
	fuzzPlan  = "abc123"
	fuzzKey   = "k"
	fuzzValue = "abcdefghij0123456789"
)

// fuzzEnv is an admin server on an in-memory store holding an API with
// stages prod and dev, a plan with something at every level on a:prod, a
// key in that plan (with a ledger) and an account throttle.
func fuzzEnv(t *testing.T) *env {
	e := newEnv(t)
	for _, cmd := range []*pb.Command{
		{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{Account: &pb.Account{Throttle: &pb.ThrottleSettings{RateLimit: 100, BurstLimit: 50}}}}},
		{Body: &pb.Command_CreateRestApi{CreateRestApi: &pb.CreateRestApi{Api: &pb.RestApi{Id: fuzzAPI, Name: "api"}}}},
		{Body: &pb.Command_CreateDeployment{CreateDeployment: &pb.CreateDeployment{
			Deployment: &pb.Deployment{Id: "d1", RestApiId: fuzzAPI},
			Stage: &pb.Stage{StageName: "prod", Variables: map[string]string{"url": "http://127.0.0.1:9/"},
				MethodSettings: map[string]*pb.MethodSetting{"*/*": {}}},
		}}},
		{Body: &pb.Command_CreateDeployment{CreateDeployment: &pb.CreateDeployment{
			Deployment: &pb.Deployment{Id: "d2", RestApiId: fuzzAPI},
			Stage:      &pb.Stage{StageName: "dev", Variables: map[string]string{"url": "http://127.0.0.1:9/"}},
		}}},
		{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: &pb.UsagePlan{
			Id: fuzzPlan, Name: "p",
			ApiStages: []*pb.ApiStage{{ApiId: fuzzAPI, Stage: "prod", Throttle: map[string]*pb.ThrottleSettings{
				"/pets/GET": {RateLimit: 1, BurstLimit: 1},
			}}},
			Throttle: &pb.ThrottleSettings{RateLimit: 1, BurstLimit: 1},
			Quota:    &pb.QuotaSettings{Limit: 10, Period: "DAY"},
		}, Create: true}}},
		e.sealedKeyCmd(fuzzKey, fuzzValue, "k"),
		{Body: &pb.Command_CreateUsagePlanKey{CreateUsagePlanKey: &pb.CreateUsagePlanKey{PlanId: fuzzPlan, KeyId: fuzzKey}}},
	} {
		res, err := e.store.Apply(t.Context(), cmd)
		if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("fixture %T: %v %v", cmd.Body, err, res)
		}
	}
	return e
}

// patchTargets are the resources a PATCH can change, by the fuzz input's
// target number.
var patchTargets = []string{
	"/usageplans/" + fuzzPlan,
	"/restapis/" + fuzzAPI + "/stages/prod",
	"/apikeys/" + fuzzKey,
	"/account",
	"/restapis/" + fuzzAPI,
	"/usageplans/" + fuzzPlan + "/keys/" + fuzzKey + "/usage",
	"/restapis/" + fuzzAPI + "/deployments/d1",
}

// FuzzPatch sends two patch operations to one of the resources through the
// admin API on the real state machine. A refused patch (4xx) changes
// nothing, not even when its first operation was good; none is answered
// with 5xx; an accepted one leaves a resource that reads back, with a
// configuration the state machine's own rules accept.
func FuzzPatch(f *testing.F) {
	for _, s := range [][]string{
		{"replace", "/apiStages/a:prod/throttle//pets/GET/rateLimit", "2"},
		{"replace", "/apiStages/a:prod/throttle", `{"/x/GET":{"rateLimit":1,"burstLimit":1}}`},
		{"remove", "/apiStages/a:prod/throttle//pets/GET", ""},
		{"add", "/apiStages", "a:dev"},
		{"remove", "/apiStages", "a:prod"},
		{"add", "/quota/offset", "99999999999"},
		{"replace", "/quota/limit", "-1"},
		{"replace", "/quota/period", "FORTNIGHT"},
		{"replace", "/throttle/rateLimit", "NaN"},
		{"replace", "/throttle/burstLimit", "0"},
		{"replace", "/~1pets/GET/throttling/rateLimit", "1"},
		{"replace", "/~1pets~1GET/throttling/rateLimit", "1"},
		{"replace", "/*/*/throttling/burstLimit", "1e9"},
		{"remove", "/*/*", ""},
		{"replace", "/variables/url", "http://169.254.169.254/"},
		{"replace", "/variables/url", "http://x"},
		{"replace", "/remaining", "5"},
		{"replace", "/remaining", "-5"},
		{"replace", "/enabled", "TRUE"},
		{"replace", "/value", "short"},
		{"replace", "/name", strings.Repeat("n", 1025)},
		{"replace", "/name", "a\x00b"},
		{"replace", "/description", ""},
		{"add", "/stages", "a/prod"},
		{"replace", "/tags/a", "b"},
		{"move", "/name", "x"},
		{"replace", "/pets/{id}/GET/caching/ttlInSeconds", "3600"},
		{"replace", "/~1pets/GET/caching/unauthorizedCacheControlHeaderStrategy", "FAIL_WITH_403"},
		{"replace", "/tracingEnabled", "TRUE"},
		{"replace", "/cacheClusterSize", "0.5"},
		{"replace", "/accessLogSettings/destinationArn", "arn:aws:logs:x"},
		{"remove", "/accessLogSettings", ""},
		{"replace", "/cloudwatchRoleArn", "arn:aws:iam::1:role/r"},
		{"replace", "/endpointConfiguration/types/REGIONAL", "EDGE"},
		{"replace", "/disableExecuteApiEndpoint", "true"},
		{"replace", "/throttle/rateLimit", "0"},
		{"", "", ""},
	} {
		for target := range patchTargets {
			f.Add(uint8(target), s[0], s[1], s[2], "replace", "/name", "x")
			f.Add(uint8(target), "replace", "/name", "ok", s[0], s[1], s[2])
		}
	}
	f.Fuzz(func(t *testing.T, target uint8, op1, path1, value1, op2, path2, value2 string) {
		e := fuzzEnv(t)
		url := patchTargets[int(target)%len(patchTargets)]
		body, err := json.Marshal(patchRequest{PatchOperations: []patchOp{
			{Op: op1, Path: path1, Value: value1},
			{Op: op2, Path: path2, Value: value2},
		}})
		if err != nil {
			t.Fatal(err)
		}
		before := e.store.Config()
		beforeLedgers := e.store.KeyLedgers(fuzzPlan)
		r := e.do("PATCH", url, body)
		switch {
		case r.code >= 400 && r.code <= 499:
			if e.store.Config() != before {
				t.Fatalf("PATCH %s %s refused (%d %s) but the configuration changed", url, body, r.code, r.body)
			}
			if after := e.store.KeyLedgers(fuzzPlan); !ledgersEqual(after, beforeLedgers) {
				t.Fatalf("PATCH %s %s refused (%d %s) but the ledger changed", url, body, r.code, r.body)
			}
		case r.code == 200:
			g := e.do("GET", strings.TrimSuffix(url, "/usage"), nil)
			if g.code != 200 {
				t.Fatalf("after PATCH %s %s: GET answers %d %s", url, body, g.code, g.body)
			}
			// The answer to a PATCH is what a GET reads back.
			if !strings.HasSuffix(url, "/usage") && !jsonEqual(r.body, g.body) {
				t.Fatalf("PATCH %s %s answered\n%s\nbut GET reads\n%s", url, body, r.body, g.body)
			}
			checkFuzzConfig(t, e, e.store.Config())
		default:
			t.Fatalf("PATCH %s %s: status %d %s", url, body, r.code, r.body)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func ledgersEqual(a, b []*pb.KeyLedger) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// checkFuzzConfig checks what the admin API left against the rules the
// state machine enforces.
func checkFuzzConfig(t *testing.T, e *env, cfg *pb.Config) {
	t.Helper()
	for id, p := range cfg.GetUsagePlans() {
		if e := checkPlan(p); e != nil {
			t.Fatalf("plan %s is invalid: %v", id, e.msg)
		}
	}
	for id, k := range cfg.GetApiKeys() {
		if k.GetValue() != "" {
			t.Fatalf("key %s is stored with its plain value", id)
		}
		if e := checkKeyValue(e.value(k)); e != nil {
			t.Fatalf("key %s has an invalid value", id)
		}
	}
	acct := cfg.GetAccount().GetThrottle()
	for id, st := range cfg.GetStages() {
		if e := checkStage(st, acct); e != nil {
			t.Fatalf("stage %s is invalid: %v", id, e.msg)
		}
	}
	if _, err := proto.Marshal(cfg); err != nil {
		t.Fatalf("the configuration does not encode: %v", err)
	}
}

// FuzzImportCSV checks CSV key import, first as a parser and then through
// the admin API on the real state machine (with and without
// failonwarnings). Parsing: every record has at least one field, and the
// rows kept carry valid key values, names and plan ids that occur in the
// text. Through the API: a refused import changes nothing; an accepted one
// answers ids that name keys which exist, hold valid values and are
// attached only to plans that exist.
func FuzzImportCSV(f *testing.F) {
	for _, s := range []string{
		"key,name,description,enabled,usageplanIds\nabcdef1234ghijklmnop8901234567,k1,first,tRuE,n371pt\nabcdef1234ghijklmnop0123456789,k2,second,TRUE,\"n371pt,m282qs\"\n",
		"Name,Key\n'a,b',c\n", "\"unterminated", "name,key,name\n", "\xef\xbb\xbfname,key\r\nx,yyyyyyyyyyyyyyyyyyyyyy\r\n",
		"name,key,usageplanids\nk2,abcdefghij0123456789XY," + fuzzPlan + "\n",
		"name,key,usageplanids\nk2,abcdefghij0123456789XY,nosuchplan\n",
		"name,key\nsame," + fuzzValue + "\nagain," + fuzzValue + "\n",
		"name,key\nx,short\n", "name,key\nx,abcdefghij0123456789\x00\n", "name,key\n\xff,abcdefghij0123456789\n",
		"name,key\n\"a\"\"b\",abcdefghij0123456789ZZ\n", "name,key\n\"a\"b,abcdefghij0123456789ZZ\n",
		"name,key\r\r\n\n,\n", "name,key\nx,abcdefghij0123456789ZZ,extra\n", "name,key,enabled\nx,abcdefghij0123456789ZZ,maybe\n",
		"", "\n\n", ",,,", "'",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, failOnWarnings bool) {
		recs, err := parseCSV(data)
		if err == nil {
			for _, rec := range recs {
				if len(rec.fields) == 0 || rec.line < 1 {
					t.Fatalf("record %+v", rec)
				}
			}
			if keys, _, err := importRows(recs); err == nil {
				for _, k := range keys {
					if checkKeyValue(k.Key.Value) != nil || checkName("API Key", k.Key.Name) != nil {
						t.Fatalf("kept a row with an invalid key value or name: %v", k)
					}
					if !bytes.Contains(data, []byte(k.Key.Value)) {
						t.Fatalf("key value %q is not in the file", k.Key.Value)
					}
					for _, p := range k.UsagePlanIds {
						if !rules.IsPlanID(p) {
							t.Fatalf("kept an invalid plan id %q", p)
						}
					}
				}
			}
		}

		e := fuzzEnv(t)
		before := e.store.Config()
		url := "/apikeys?mode=import&format=csv"
		if failOnWarnings {
			url += "&failonwarnings=true"
		}
		r := e.do("POST", url, data, "Content-Type", "text/csv")
		switch {
		case r.code >= 400 && r.code <= 499:
			if e.store.Config() != before {
				t.Fatalf("import of %q refused (%d %s) but the configuration changed", data, r.code, r.body)
			}
		case r.code == 201:
			var out importResponse
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatalf("import answer %s: %v", r.body, err)
			}
			if failOnWarnings && len(out.Warnings) > 0 {
				t.Fatalf("import with failonwarnings answered 201 with warnings %v", out.Warnings)
			}
			cfg := e.store.Config()
			for _, id := range out.IDs {
				if cfg.GetApiKeys()[id] == nil {
					t.Fatalf("import answered id %s, which is not a key", id)
				}
			}
			for pid, pk := range cfg.GetPlanKeys() {
				if cfg.GetUsagePlans()[pid] == nil {
					t.Fatalf("keys attached to a plan %q that does not exist: %v", pid, pk)
				}
			}
			checkFuzzConfig(t, e, cfg)
		default:
			t.Fatalf("import of %q: status %d %s", data, r.code, r.body)
		}
	})
}
