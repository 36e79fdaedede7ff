package admin

import (
	"context"
	"strings"
	"sync"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
)

func TestCreateUsagePlanShape(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")

	// Without throttle or quota: no such keys, apiStages [], no tags.
	r := e.do("POST", "/usageplans", map[string]any{"name": "bare"})
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	bare := r.json(t)
	id := bare["id"].(string)
	if want := `{"id":"` + id + `","name":"bare","apiStages":[]}` + "\n"; string(r.body) != want {
		t.Fatalf("CreateUsagePlan body\n got %s\nwant %s", r.body, want)
	}
	if len(id) != planIDLen || strings.Trim(id, lowerAlnum) != "" {
		t.Fatalf("plan id %q: want 6 lowercase alphanumerics", id)
	}

	// Full: quota offset echoed, rates as doubles, stage throttles kept.
	r = e.do("POST", "/usageplans", map[string]any{
		"name": "gold", "description": "Gold tier",
		"apiStages": []map[string]any{{"apiId": api, "stage": "prod", "throttle": map[string]any{
			"/pets/GET": map[string]any{"burstLimit": 20, "rateLimit": 10.0},
			"//GET":     map[string]any{"burstLimit": 1, "rateLimit": 1},
		}}},
		"throttle": map[string]any{"burstLimit": 200, "rateLimit": 100},
		"quota":    map[string]any{"limit": 5000, "period": "MONTH"},
		"tags":     map[string]string{"team": "payments"},
	})
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	gold := r.json(t)
	gid := gold["id"].(string)
	want := `{"id":"` + gid + `","name":"gold","description":"Gold tier","apiStages":[{"apiId":"` + api + `","stage":"prod","throttle":{"//GET":{"burstLimit":1,"rateLimit":1.0},"/pets/GET":{"burstLimit":20,"rateLimit":10.0}}}],"throttle":{"burstLimit":200,"rateLimit":100.0},"quota":{"limit":5000,"offset":0,"period":"MONTH"},"tags":{"team":"payments"}}` + "\n"
	if string(r.body) != want {
		t.Fatalf("CreateUsagePlan body\n got %s\nwant %s", r.body, want)
	}

	// GetUsagePlan always has tags; listings never.
	if g := e.must("GET", "/usageplans/"+id, nil, 200); mustJSON(t, g["tags"]) != "{}" {
		t.Fatalf("GetUsagePlan without tags: %v", g)
	}
	list := e.must("GET", "/usageplans", nil, 200)
	for _, it := range list["item"].([]any) {
		if _, has := it.(map[string]any)["tags"]; has {
			t.Fatalf("GetUsagePlans item with tags: %v", it)
		}
	}
	wantError(t, e.do("GET", "/usageplans/nope00", nil), 404, "NotFoundException", msgPlanNotFound)
}

func TestCreateUsagePlanErrors(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	stage := func(extra map[string]any) []map[string]any {
		s := map[string]any{"apiId": api, "stage": "prod"}
		for k, v := range extra {
			s[k] = v
		}
		return []map[string]any{s}
	}
	for _, c := range []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"no name", map[string]any{}, 400, "Invalid usage plan name specified*"},
		{"long name", map[string]any{"name": strings.Repeat("x", 1025)}, 400, "Invalid Usage Plan name, can be at most 1024 characters."},
		{"negative burst", map[string]any{"name": "p", "throttle": map[string]any{"burstLimit": -1, "rateLimit": 1}}, 400, "Invalid throttle: burstLimit must be from 0 to 2147483647, not -1"},
		{"burst over int32", map[string]any{"name": "p", "throttle": map[string]any{"burstLimit": 2147483648, "rateLimit": 1}}, 400, "Invalid throttle: burstLimit must be from 0 to 2147483647, not 2147483648"},
		{"huge burst", map[string]any{"name": "p", "throttle": map[string]any{"burstLimit": 1e30, "rateLimit": 1}}, 400, `Invalid request body: field "throttle.burstLimit" must be an integer*`},
		{"fractional burst", `{"name":"p","throttle":{"burstLimit":1.5,"rateLimit":1}}`, 400, `Invalid request body: field "throttle.burstLimit" must be an integer*`},
		{"negative rate", map[string]any{"name": "p", "throttle": map[string]any{"burstLimit": 1, "rateLimit": -0.5}}, 400, "Invalid throttle: rateLimit must be from 0 to 1e+09, not -0.5"},
		{"rate too high", map[string]any{"name": "p", "throttle": map[string]any{"burstLimit": 1, "rateLimit": 2e9}}, 400, "Invalid throttle: rateLimit must be from 0 to 1e+09*"},
		{"rate overflows a double", `{"name":"p","throttle":{"burstLimit":1,"rateLimit":1e999}}`, 400, `Invalid request body: field "throttle.rateLimit" must be a number*`},
		{"burst without rate", map[string]any{"name": "p", "throttle": map[string]any{"burstLimit": 10}}, 400, "Invalid throttle: burstLimit is 10 but rateLimit is 0*"},
		{"quota over 1e12", map[string]any{"name": "p", "quota": map[string]any{"limit": 1e12 + 1, "period": "DAY"}}, 400, "Invalid quota: invalid quota limit*"},
		{"negative quota", map[string]any{"name": "p", "quota": map[string]any{"limit": -1, "period": "DAY"}}, 400, "Invalid quota: invalid quota limit*"},
		{"bad period", map[string]any{"name": "p", "quota": map[string]any{"limit": 1, "period": "YEAR"}}, 400, `Invalid quota: invalid quota period "YEAR"*`},
		{"no period", map[string]any{"name": "p", "quota": map[string]any{"limit": 1}}, 400, `Invalid quota: invalid quota period ""*`},
		{"day offset", map[string]any{"name": "p", "quota": map[string]any{"limit": 1, "offset": 1, "period": "DAY"}}, 400, "Invalid quota: invalid quota offset 1: a DAY quota takes offset 0"},
		{"month offset", map[string]any{"name": "p", "quota": map[string]any{"limit": 1, "offset": 28, "period": "MONTH"}}, 400, "Invalid quota: invalid quota offset 28*"},
		{"offset overflow", map[string]any{"name": "p", "quota": map[string]any{"limit": 1, "offset": 1 << 40, "period": "WEEK"}}, 400, "Invalid quota: invalid quota offset*"},
		{"unknown field", map[string]any{"name": "p", "color": "red"}, 400, `Invalid request body: unknown field "color"`},
		{"nested unknown field", map[string]any{"name": "p", "quota": map[string]any{"limit": 1, "period": "DAY", "max": 2}}, 400, `Invalid request body: unknown field "quota.max"`},
		{"other case", `{"NAME":"p"}`, 400, `Invalid request body: unknown field "NAME"`},
		{"duplicate field", `{"name":"p","name":"q"}`, 400, `Invalid request body: duplicate field "name"`},
		{"trailing data", `{"name":"p"} {}`, 400, "Invalid request body: unexpected data after the JSON value"},
		{"malformed", `{"name":`, 400, "Invalid request body: the JSON text ends too early"},
		{"not an object", `[1,2]`, 400, `Invalid request body: field the body must be an object, not array`},
		{"wrong type", `{"name":5}`, 400, `Invalid request body: field "name" must be a string, not number`},
		{"deep", strings.Repeat(`{"tags":`, 40) + "{}" + strings.Repeat("}", 40), 400, "Invalid request body: *"},
		{"unknown stage", map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": api, "stage": "nope"}}}, 404, "Invalid API Stage {api: " + api + ", stage: nope} specified for usageplan *"},
		{"empty stage", map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": "", "stage": "prod"}}}, 400, "Invalid API Stage {api: , stage: prod} specified for usageplan *"},
		{"stage twice", map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}, {"apiId": api, "stage": "prod"}}}, 400, "API Stage " + api + ":prod is listed twice*"},
		{"star method", map[string]any{"name": "p", "apiStages": stage(map[string]any{"throttle": map[string]any{"*/*": map[string]any{"rateLimit": 1, "burstLimit": 1}}})}, 400, `Invalid method "*/*" in the throttle of API Stage ` + api + `:prod*`},
		{"method throttle burst only", map[string]any{"name": "p", "apiStages": stage(map[string]any{"throttle": map[string]any{"/pets/GET": map[string]any{"burstLimit": 1}}})}, 400, "Invalid throttle for /pets/GET in API Stage " + api + ":prod: burstLimit is 1 but rateLimit is 0*"},
		{"bad tag", map[string]any{"name": "p", "tags": map[string]string{"aws:x": "y"}}, 400, `Invalid tag key "aws:x"*`},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ := map[int]string{400: "BadRequestException", 404: "NotFoundException"}[c.code]
			wantError(t, e.do("POST", "/usageplans", c.body), c.code, typ, c.msg)
		})
	}
	if n := len(e.store.Config().GetUsagePlans()); n != 0 {
		t.Fatalf("refused creates left %d plans", n)
	}

	// Both zero is allowed: it blocks every request.
	p := e.must("POST", "/usageplans", map[string]any{"name": "block", "throttle": map[string]any{"rateLimit": 0, "burstLimit": 0}}, 201)
	if mustJSON(t, p["throttle"]) != `{"burstLimit":0,"rateLimit":0}` {
		t.Fatalf("throttle 0/0: %v", p["throttle"])
	}
	// A burst above the rate is fine.
	e.must("POST", "/usageplans", map[string]any{"name": "b", "throttle": map[string]any{"rateLimit": 1, "burstLimit": 100}}, 201)

	// A body over 1 MiB is refused without being read further.
	big := `{"name":"p","description":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	wantError(t, e.do("POST", "/usageplans", big), 413, "BadRequestException", "Request body is larger than 1048576 bytes")
}

func TestUpdateUsagePlan(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	e.stage(api, "dev")
	id := e.plan(map[string]any{"name": "p"})
	path := "/usageplans/" + id

	got := e.must("PATCH", path, patch(
		op("replace", "/name", "gold"),
		op("replace", "/description", "Gold"),
		op("add", "/productCode", "pc-1"),
		op("add", "/apiStages", api+":prod"),
		op("add", "/quota/limit", "100"),
		op("add", "/quota/period", "WEEK"),
		op("add", "/quota/offset", "1"),
		op("add", "/throttle/rateLimit", "0.5"),
		op("add", "/throttle/burstLimit", "3"),
		op("replace", "/apiStages/"+api+":prod/throttle//pets/GET/rateLimit", "10"),
		op("replace", "/apiStages/"+api+":prod/throttle//pets/GET/burstLimit", "20"),
		op("replace", "/apiStages/"+api+":prod/throttle///POST/rateLimit", "1"),
		op("replace", "/apiStages/"+api+":prod/throttle///POST/burstLimit", "1"),
	), 200)
	want := `{"apiStages":[{"apiId":"` + api + `","stage":"prod","throttle":{"//POST":{"burstLimit":1,"rateLimit":1},"/pets/GET":{"burstLimit":20,"rateLimit":10}}}],"description":"Gold","id":"` + id + `","name":"gold","productCode":"pc-1","quota":{"limit":100,"offset":1,"period":"WEEK"},"tags":{},"throttle":{"burstLimit":3,"rateLimit":0.5}}`
	if mustJSON(t, got) != want {
		t.Fatalf("UpdateUsagePlan\n got %s\nwant %s", mustJSON(t, got), want)
	}

	steps := []struct {
		name  string
		ops   map[string]any
		check func(p *pb.UsagePlan) bool
	}{
		{"replace the stage throttle map", patch(op("replace", "/apiStages/"+api+":prod/throttle", `{"/a/PUT":{"rateLimit":2,"burstLimit":4}}`)),
			func(p *pb.UsagePlan) bool {
				th := p.ApiStages[0].Throttle
				return len(th) == 1 && th["/a/PUT"].GetRateLimit() == 2 && th["/a/PUT"].GetBurstLimit() == 4
			}},
		{"remove a method throttle", patch(op("remove", "/apiStages/"+api+":prod/throttle//a/PUT", "")),
			func(p *pb.UsagePlan) bool { return len(p.ApiStages[0].Throttle) == 0 }},
		{"remove the stage throttle", patch(op("replace", "/apiStages/"+api+":prod/throttle//b/GET/rateLimit", "1"), op("replace", "/apiStages/"+api+":prod/throttle//b/GET/burstLimit", "1"), op("remove", "/apiStages/"+api+":prod/throttle", "")),
			func(p *pb.UsagePlan) bool { return len(p.ApiStages[0].Throttle) == 0 }},
		{"second stage", patch(op("add", "/apiStages", api+":dev")),
			func(p *pb.UsagePlan) bool { return len(p.ApiStages) == 2 && p.ApiStages[1].Stage == "dev" }},
		{"remove a stage", patch(op("remove", "/apiStages", api+":prod")),
			func(p *pb.UsagePlan) bool { return len(p.ApiStages) == 1 && p.ApiStages[0].Stage == "dev" }},
		{"replace quota", patch(op("replace", "/quota/period", "MONTH"), op("replace", "/quota/offset", "27"), op("replace", "/quota/limit", "1000000000000")),
			func(p *pb.UsagePlan) bool {
				return p.Quota.Period == "MONTH" && p.Quota.Offset == 27 && p.Quota.Limit == 1e12
			}},
		{"remove quota and throttle and product code", patch(op("remove", "/quota", ""), op("remove", "/throttle", ""), op("remove", "/productCode", "")),
			func(p *pb.UsagePlan) bool { return p.Quota == nil && p.Throttle == nil && p.ProductCode == "" }},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.must("PATCH", path, s.ops, 200)
			if p := e.store.Config().GetUsagePlans()[id]; !s.check(p) {
				t.Fatalf("plan after %s: %v", s.name, p)
			}
		})
	}

	stagePath := "/apiStages/" + api + ":dev/throttle"
	for _, c := range []struct {
		name string
		ops  any
		code int
		msg  string
	}{
		{"id", patch(op("replace", "/id", "x")), 400, "Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/name, /description, /productCode, /quota/limit, /quota/offset, /quota/period, /quotaNotifications/webhookUrl, /quotaNotifications/thresholds, /throttle/burstLimit, /throttle/rateLimit, /apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>/rateLimit, /apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>/burstLimit, /apiStages/<apidId:stageName>/throttle]"},
		{"remove name", patch(op("remove", "/name", "")), 400, "Invalid patch path  '/name' specified for op 'remove'. Must be one of: [/apiStages, /quota, /throttle, /productCode, /quotaNotifications, /apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>, /apiStages/<apidId:stageName>/throttle]"},
		{"add name", patch(op("add", "/name", "x")), 400, "Invalid patch path  '/name' specified for op 'add'. Must be one of: [/apiStages, /productCode, /quota/limit, /quota/offset, /quota/period, /quotaNotifications/webhookUrl, /quotaNotifications/thresholds, /throttle/burstLimit, /throttle/rateLimit]"},
		{"copy", patch(op("copy", "/name", "x")), 400, "Invalid patch path  '/name' specified for op 'copy'. Must be one of: []"},
		{"replace apiStages", patch(op("replace", "/apiStages", api+":dev")), 400, "Invalid patch path  '/apiStages' specified for op 'replace'*"},
		{"remove stage no value", patch(op("remove", "/apiStages", "")), 400, "Invalid API Stage specified"},
		{"remove stage malformed", patch(op("remove", "/apiStages", "nocolon")), 400, "Invalid API Stage specified"},
		{"remove stage not in plan", patch(op("remove", "/apiStages", api+":prod")), 404, "Invalid API Stage {api: " + api + ", stage: prod} specified for usageplan " + id},
		{"add unknown stage", patch(op("add", "/apiStages", api+":nope")), 404, "Invalid API Stage {api: " + api + ", stage: nope} specified for usageplan " + id},
		{"add stage twice", patch(op("add", "/apiStages", api+":dev")), 409, "API Stage " + api + ":dev is already in usage plan " + id},
		{"method throttle unknown stage", patch(op("replace", "/apiStages/"+api+":prod/throttle//a/GET/rateLimit", "1")), 404, "Invalid API Stage {api: " + api + ", stage: prod} specified for usageplan " + id},
		{"method throttle bad key", patch(op("replace", stagePath+"/*/*/rateLimit", "1")), 400, `Invalid method "*/*" in the throttle of API Stage*`},
		{"method throttle bad field", patch(op("replace", stagePath+"//a/GET/speed", "1")), 400, "Invalid patch path*"},
		{"method throttle burst only", patch(op("replace", stagePath+"//a/GET/burstLimit", "1")), 400, "Invalid throttle for /a/GET in API Stage " + api + ":dev: burstLimit is 1 but rateLimit is 0*"},
		{"remove missing method throttle", patch(op("remove", stagePath+"//a/GET", "")), 404, "No throttle for method /a/GET in API Stage " + api + ":dev of usage plan " + id},
		{"throttle map not JSON", patch(op("replace", stagePath, "{")), 400, "Invalid value for " + stagePath + "*"},
		{"throttle map bad value", patch(op("replace", stagePath, `{"/a/GET":{"rateLimit":-1,"burstLimit":1}}`)), 400, "Invalid throttle for /a/GET in API Stage " + api + ":dev: rateLimit must be from 0*"},
		{"throttle map unknown field", patch(op("replace", stagePath, `{"/a/GET":{"rate":1}}`)), 400, `Invalid value for ` + stagePath + `: want a JSON object such as {"/pets/GET":{"rateLimit":10.0,"burstLimit":20}}: unknown field "/a/GET.rate"`},
		{"quota limit not a number", patch(op("add", "/quota/limit", "lots"), op("add", "/quota/period", "DAY")), 400, `Invalid value "lots" for /quota/limit: want an integer from 0 to 1000000000000`},
		{"quota without period", patch(op("add", "/quota/limit", "5")), 400, `Invalid quota: invalid quota period ""*`},
		{"quota bad offset", patch(op("add", "/quota/limit", "5"), op("add", "/quota/period", "WEEK"), op("add", "/quota/offset", "7")), 400, "Invalid quota: invalid quota offset 7: a WEEK quota takes 0 (Sunday) to 6 (Saturday)"},
		{"throttle burst only", patch(op("add", "/throttle/burstLimit", "5")), 400, "Invalid throttle: burstLimit is 5 but rateLimit is 0*"},
		{"throttle NaN", patch(op("add", "/throttle/rateLimit", "NaN"), op("add", "/throttle/burstLimit", "1")), 400, `Invalid value "NaN" for /throttle/rateLimit*`},
		{"throttle Inf", patch(op("add", "/throttle/rateLimit", "+Inf"), op("add", "/throttle/burstLimit", "1")), 400, `Invalid value "+Inf" for /throttle/rateLimit*`},
		{"empty name", patch(op("replace", "/name", "")), 400, "Invalid usage plan name specified*"},
		{"bad op", patch(op("delete", "/name", "")), 400, `Invalid patch operation "delete" specified. Must be one of: [add, remove, replace, move, copy, test]`},
		{"value not a string", `{"patchOperations":[{"op":"replace","path":"/name","value":5}]}`, 400, `Invalid request body: field "patchOperations.value" must be a string, not number`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.store.Config().GetUsagePlans()[id].GetRevision()
			typ := map[int]string{400: "BadRequestException", 404: "NotFoundException", 409: "ConflictException"}[c.code]
			wantError(t, e.do("PATCH", path, c.ops), c.code, typ, c.msg)
			if after := e.store.Config().GetUsagePlans()[id].GetRevision(); after != before {
				t.Fatal("a refused patch changed the plan")
			}
		})
	}
	wantError(t, e.do("PATCH", "/usageplans/nope00", patch(op("replace", "/name", "x"))), 404, "NotFoundException", msgPlanNotFound)

	// A patch that changes nothing answers the plan without a change.
	before := e.store.Config().GetUsagePlans()[id].GetRevision()
	e.must("PATCH", path, patch(), 200)
	if e.store.Config().GetUsagePlans()[id].GetRevision() != before {
		t.Fatal("an empty patch changed the plan")
	}
}

func TestUsagePlanKeyConflictOnPatch(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	a := e.plan(map[string]any{"name": "a", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	b := e.plan(map[string]any{"name": "b"})
	k := e.key(map[string]any{"name": "k"})
	e.attach(a, k)
	e.attach(b, k)
	// Plan b may not cover prod: its key is in a, which covers prod.
	wantError(t, e.do("PATCH", "/usageplans/"+b, patch(op("add", "/apiStages", api+":prod"))), 409, "ConflictException",
		"API Key "+k+" is already associated with usage plan "+a+"*")
}

func TestDeleteUsagePlan(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	id := e.plan(map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	wantError(t, e.do("DELETE", "/usageplans/"+id, nil), 400, "BadRequestException",
		"Cannot delete Usage Plan "+id+" because there are API Stages associated with it, including "+api+":prod")
	e.must("PATCH", "/usageplans/"+id, patch(op("remove", "/apiStages", api+":prod")), 200)
	if r := e.do("DELETE", "/usageplans/"+id, nil); r.code != 202 || len(r.body) != 0 {
		t.Fatalf("DeleteUsagePlan: %d %q", r.code, r.body)
	}
	wantError(t, e.do("DELETE", "/usageplans/"+id, nil), 404, "NotFoundException", msgPlanNotFound)
}

func TestListUsagePlans(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.plan(map[string]any{"name": "p" + string(rune('0'+i))}))
		e.advance(1e9)
	}
	k := e.key(map[string]any{"name": "k"})
	e.attach(ids[1], k)
	e.attach(ids[3], k)

	var seen []string
	pos := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		url := "/usageplans?limit=2"
		if pos != "" {
			url += "&position=" + pos
		}
		got := e.must("GET", url, nil, 200)
		for _, it := range got["item"].([]any) {
			seen = append(seen, it.(map[string]any)["id"].(string))
		}
		p, ok := got["position"].(string)
		if !ok {
			break
		}
		pos = p
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged ids %v, want %v in creation order", seen, ids)
	}

	got := e.must("GET", "/usageplans?keyId="+k, nil, 200)
	items := got["item"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["id"] != ids[1] || items[1].(map[string]any)["id"] != ids[3] {
		t.Fatalf("plans of key %s: %v", k, got)
	}
	if got := e.must("GET", "/usageplans?keyId=nobody", nil, 200); len(got["item"].([]any)) != 0 {
		t.Fatalf("plans of an unknown key: %v", got)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "position=!!!", "position=bm9jb2xvbg"} {
		wantError(t, e.do("GET", "/usageplans?"+q, nil), 400, "BadRequestException", "Invalid *")
	}
	if got := e.must("GET", "/usageplans?limit=500", nil, 200); len(got["item"].([]any)) != 5 {
		t.Fatalf("limit 500: %v", got)
	}
}

// racingStore lets a test change the plan once, between the admin's read
// and its put.
type racingStore struct {
	Store
	once   sync.Once
	before func()
}

func (s *racingStore) Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	if cmd.GetPutUsagePlan().GetIfRevision() != 0 {
		s.once.Do(s.before)
	}
	return s.Store.Apply(ctx, cmd)
}

func TestUpdateUsagePlanRetriesOnConcurrentChange(t *testing.T) {
	var rs *racingStore
	e := newEnvWithStore(t, func(s Store) Store {
		rs = &racingStore{Store: s}
		return rs
	})
	id := e.plan(map[string]any{"name": "p"})
	rs.before = func() {
		// Another admin changes the description meanwhile.
		p := e.store.Config().GetUsagePlans()[id]
		upd := &pb.UsagePlan{Id: id, Name: p.Name, Description: "theirs", Revision: p.Revision}
		res, err := e.store.Apply(context.Background(), &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: upd, IfRevision: p.Revision}}})
		if err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			t.Errorf("concurrent change: %v %v", err, res)
		}
	}
	got := e.must("PATCH", "/usageplans/"+id, patch(op("replace", "/name", "mine")), 200)
	if got["name"] != "mine" || got["description"] != "theirs" {
		t.Fatalf("after a concurrent change: %v, want both changes", got)
	}
}
