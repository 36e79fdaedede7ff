package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// Fuzz targets for everything that reads user input. Run one with, e.g.,
// go test -run '^$' -fuzz FuzzDecodeStrict ./admin/

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"name":"gold","apiStages":[{"apiId":"a","stage":"prod","throttle":{"/pets/GET":{"burstLimit":20,"rateLimit":10.0}}}],"throttle":{"burstLimit":200,"rateLimit":100.0},"quota":{"limit":5000,"offset":0,"period":"MONTH"},"tags":{"team":"payments"}}`,
		`{"patchOperations":[{"op":"replace","path":"/name","value":"x"}]}`,
		`{"name":"p"} {}`, `{"name":"p","name":"q"}`, `{"NAME":1}`, `[`, `{"tags":{"a":"b","a":"c"}}`,
		`{"throttle":{"burstLimit":1e999}}`, strings.Repeat("[", 100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var plan createUsagePlanRequest
		err := decodeStrict(data, &plan)
		if err == nil && !json.Valid(data) && len(strings.TrimSpace(string(data))) > 0 {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var p patchRequest
		_ = decodeStrict(data, &p)
		var k createAPIKeyRequest
		_ = decodeStrict(data, &k)
		var st createStageRequest
		_ = decodeStrict(data, &st)
	})
}

// fuzzPlan is a plan with something at every level, for patches to work on.
func fuzzPlan() *pb.UsagePlan {
	return &pb.UsagePlan{
		Id: "abc123", Name: "p",
		ApiStages: []*pb.ApiStage{{ApiId: "a", Stage: "prod", Throttle: map[string]*pb.ThrottleSettings{
			"/pets/GET": {RateLimit: 1, BurstLimit: 1},
		}}},
		Throttle: &pb.ThrottleSettings{RateLimit: 1, BurstLimit: 1},
		Quota:    &pb.QuotaSettings{Limit: 10, Period: "DAY"},
	}
}

func FuzzPatch(f *testing.F) {
	for _, s := range [][3]string{
		{"replace", "/apiStages/a:prod/throttle//pets/GET/rateLimit", "2"},
		{"replace", "/apiStages/a:prod/throttle", `{"/x/GET":{"rateLimit":1,"burstLimit":1}}`},
		{"remove", "/apiStages/a:prod/throttle//pets/GET", ""},
		{"add", "/apiStages", "a:dev"},
		{"remove", "/apiStages", "a:prod"},
		{"add", "/quota/offset", "99999999999"},
		{"replace", "/~1pets/GET/throttling/rateLimit", "1"},
		{"remove", "/*/*", ""},
		{"replace", "/variables/url", "http://x"},
		{"replace", "/remaining", "5"},
		{"replace", "/enabled", "TRUE"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, o, path, value string) {
		ops := []patchOp{{Op: o, Path: path, Value: value}}

		p := fuzzPlan()
		if e := patchPlan(p, ops); e == nil {
			// An accepted patch leaves a plan that validates again.
			if e2 := checkPlan(p); e2 != nil {
				t.Fatalf("patch %v left an invalid plan: %v", ops, e2)
			}
			if _, err := proto.Marshal(p); err != nil {
				t.Fatalf("patched plan does not encode: %v", err)
			}
		} else if e.status < 400 || e.status > 499 {
			t.Fatalf("status %d", e.status)
		}

		st := &pb.Stage{StageName: "prod", MethodSettings: map[string]*pb.MethodSetting{"*/*": {}}}
		acct := &pb.ThrottleSettings{RateLimit: 10, BurstLimit: 5}
		if e := patchStage(st, ops, acct); e == nil {
			if e2 := checkStage(st, acct); e2 != nil {
				t.Fatalf("patch %v left an invalid stage: %v", ops, e2)
			}
		}

		_ = patchAPIKey(&pb.ApiKey{Id: "k"}, ops)
		_ = patchAccount(&pb.ThrottleSettings{RateLimit: 1, BurstLimit: 1}, ops)
	})
}

func FuzzImportCSV(f *testing.F) {
	for _, s := range []string{
		"key,name,description,enabled,usageplanIds\nabcdef1234ghijklmnop8901234567,k1,first,tRuE,n371pt\nabcdef1234ghijklmnop0123456789,k2,second,TRUE,\"n371pt,m282qs\"\n",
		"Name,Key\n'a,b',c\n", "\"unterminated", "name,key,name\n", "\xef\xbb\xbfname,key\r\nx,yyyyyyyyyyyyyyyyyyyyyy\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := parseCSV(data)
		if err != nil {
			return
		}
		keys, _, err := importRows(recs)
		if err != nil {
			return
		}
		for _, k := range keys {
			if checkKeyValue(k.Key.Value) != nil {
				t.Fatalf("imported an invalid key value %q", k.Key.Value)
			}
		}
	})
}
