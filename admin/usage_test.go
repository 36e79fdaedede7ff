package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestUsageAcrossMonthEndAndExtension(t *testing.T) {
	e := newEnv(t)
	e.setNow(time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC))
	plan := e.plan(map[string]any{"name": "p", "quota": map[string]any{"limit": 100, "period": "MONTH"}})
	key := e.key(map[string]any{"name": "k", "enabled": true})
	e.attach(plan, key)
	e.report(plan, key, day("2026-01-30"), 5)
	e.report(plan, key, day("2026-01-31"), 10)
	e.report(plan, key, day("2026-02-01"), 3)
	e.report(plan, key, day("2026-02-02"), 4)

	got := e.must("GET", "/usageplans/"+plan+"/usage?startDate=2026-01-30&endDate=2026-02-03", nil, 200)
	want := `{"endDate":"2026-02-03","startDate":"2026-01-30","usagePlanId":"` + plan + `","values":{"` + key + `":[[5,95],[10,85],[3,97],[4,93],[0,93]]}}`
	if mustJSON(t, got) != want {
		t.Fatalf("GetUsage\n got %s\nwant %s", mustJSON(t, got), want)
	}

	// UpdateUsage: 50 left in this period; the last period keeps its numbers.
	got = e.must("PATCH", "/usageplans/"+plan+"/keys/"+key+"/usage", patch(op("replace", "/remaining", "50")), 200)
	want = `{"endDate":"2026-02-02","startDate":"2026-02-02","usagePlanId":"` + plan + `","values":{"` + key + `":[[4,50]]}}`
	if mustJSON(t, got) != want {
		t.Fatalf("UpdateUsage\n got %s\nwant %s", mustJSON(t, got), want)
	}
	got = e.must("GET", "/usageplans/"+plan+"/usage?startDate=2026-01-31&endDate=2026-02-02&keyId="+key, nil, 200)
	if v := mustJSON(t, got["values"]); v != `{"`+key+`":[[10,85],[3,54],[4,50]]}` {
		t.Fatalf("usage after the extension %s", v)
	}
	// More usage today comes off the extended remaining.
	e.report(plan, key, day("2026-02-02"), 10)
	got = e.must("GET", "/usageplans/"+plan+"/usage?startDate=2026-02-02&endDate=2026-02-02", nil, 200)
	if v := mustJSON(t, got["values"]); v != `{"`+key+`":[[14,40]]}` {
		t.Fatalf("usage after more requests %s", v)
	}
	// Next month the extension is gone.
	got = e.must("GET", "/usageplans/"+plan+"/usage?startDate=2026-03-01&endDate=2026-03-01", nil, 200)
	if v := mustJSON(t, got["values"]); v != `{"`+key+`":[[0,100]]}` {
		t.Fatalf("usage next month %s", v)
	}

	// Remaining never goes below 0.
	e.must("PATCH", "/usageplans/"+plan+"/keys/"+key+"/usage", patch(op("replace", "/remaining", "0")), 200)
	e.report(plan, key, day("2026-02-02"), 7)
	got = e.must("GET", "/usageplans/"+plan+"/usage?startDate=2026-02-02&endDate=2026-02-02", nil, 200)
	if v := mustJSON(t, got["values"]); v != `{"`+key+`":[[21,0]]}` {
		t.Fatalf("usage past the limit %s", v)
	}
}

func TestUsageWeekOffsetAndNoQuota(t *testing.T) {
	e := newEnv(t) // Sunday 2026-03-15
	plan := e.plan(map[string]any{"name": "w", "quota": map[string]any{"limit": 10, "offset": 1, "period": "WEEK"}})
	free := e.plan(map[string]any{"name": "free"})
	key := e.key(map[string]any{"name": "k"})
	e.attach(plan, key)
	e.attach(free, key)
	e.report(plan, key, day("2026-03-08"), 1) // Sunday: the week of Monday 2 March
	e.report(plan, key, day("2026-03-09"), 2) // Monday: a new week
	e.report(plan, key, day("2026-03-15"), 3)
	e.report(free, key, day("2026-03-15"), 6)

	got := e.must("GET", "/usageplans/"+plan+"/usage?startDate=2026-03-08&endDate=2026-03-16", nil, 200)
	if v := mustJSON(t, got["values"]); v != `{"`+key+`":[[1,9],[2,8],[0,8],[0,8],[0,8],[0,8],[0,8],[3,5],[0,10]]}` {
		t.Fatalf("weekly usage %s", v)
	}
	got = e.must("GET", "/usageplans/"+free+"/usage?startDate=2026-03-14&endDate=2026-03-15", nil, 200)
	if v := mustJSON(t, got["values"]); v != `{"`+key+`":[[0,-1],[6,-1]]}` {
		t.Fatalf("usage without a quota %s", v)
	}
	wantError(t, e.do("PATCH", "/usageplans/"+free+"/keys/"+key+"/usage", patch(op("replace", "/remaining", "5"))), 400, "BadRequestException",
		"Usage plan "+free+" has no quota, so there is no remaining quota to set")
}

func TestUsagePagingAndFilters(t *testing.T) {
	e := newEnv(t)
	plan := e.plan(map[string]any{"name": "p", "quota": map[string]any{"limit": 5, "period": "DAY"}})
	var keys []string
	for i := range 3 {
		k := e.key(map[string]any{"name": "k" + string(rune('0'+i))})
		e.attach(plan, k)
		keys = append(keys, k)
	}
	e.report(plan, keys[0], testNow, 2)
	q := "/usageplans/" + plan + "/usage?startDate=2026-03-15&endDate=2026-03-15"
	p1 := e.must("GET", q+"&limit=2", nil, 200)
	p2 := e.must("GET", q+"&limit=2&position="+p1["position"].(string), nil, 200)
	if len(p1["values"].(map[string]any)) != 2 || len(p2["values"].(map[string]any)) != 1 || p2["position"] != nil {
		t.Fatalf("pages %v / %v", p1, p2)
	}
	all := map[string]any{}
	for k, v := range p1["values"].(map[string]any) {
		all[k] = v
	}
	for k, v := range p2["values"].(map[string]any) {
		all[k] = v
	}
	if len(all) != 3 || mustJSON(t, all[keys[0]]) != "[[2,3]]" || mustJSON(t, all[keys[1]]) != "[[0,5]]" {
		t.Fatalf("all pages %v", all)
	}
	if got := e.must("GET", q+"&keyId="+keys[1], nil, 200); mustJSON(t, got["values"]) != `{"`+keys[1]+`":[[0,5]]}` {
		t.Fatalf("keyId filter %v", got)
	}
	if got := e.must("GET", q+"&keyId=nobody", nil, 200); mustJSON(t, got["values"]) != `{}` {
		t.Fatalf("unknown keyId %v", got)
	}

	// A detached key that used the plan is still reported (it is billable).
	e.must("DELETE", "/usageplans/"+plan+"/keys/"+keys[0], nil, 202)
	if got := e.must("GET", q+"&keyId="+keys[0], nil, 200); mustJSON(t, got["values"]) != `{"`+keys[0]+`":[[2,3]]}` {
		t.Fatalf("detached key %v", got)
	}

	base := "/usageplans/" + plan + "/usage"
	for _, c := range []struct {
		name, query, msg string
		code             int
	}{
		{"no start", "?endDate=2026-03-15", "The startDate parameter is required (YYYY-MM-DD)", 400},
		{"no end", "?startDate=2026-03-15", "The endDate parameter is required (YYYY-MM-DD)", 400},
		{"bad date", "?startDate=2026-3-5&endDate=2026-03-15", `Invalid startDate "2026-3-5": want a date as YYYY-MM-DD`, 400},
		{"impossible date", "?startDate=2026-02-30&endDate=2026-03-15", `Invalid startDate "2026-02-30"*`, 400},
		{"reversed", "?startDate=2026-03-15&endDate=2026-03-14", "The endDate 2026-03-14 is before the startDate 2026-03-15", 400},
		{"too long", "?startDate=2026-01-01&endDate=2026-04-02", "The dates are 91 days apart: at most 90 are allowed", 400},
		{"bad limit", "?startDate=2026-03-15&endDate=2026-03-15&limit=0", `Invalid limit "0"*`, 400},
		{"bad format", "?startDate=2026-03-15&endDate=2026-03-15&format=xml", `Invalid format "xml": want json, csv or ndjson`, 400},
		{"paged export", "?startDate=2026-03-15&endDate=2026-03-15&format=csv&limit=2", "The csv export is not paged*", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("GET", base+c.query, nil), c.code, "BadRequestException", c.msg)
		})
	}
	// 90 days apart is the most allowed.
	if got := e.must("GET", base+"?startDate=2026-01-01&endDate=2026-04-01&keyId="+keys[1], nil, 200); len(got["values"].(map[string]any)[keys[1]].([]any)) != 91 {
		t.Fatal("90 days apart: want 91 entries")
	}
	wantError(t, e.do("GET", "/usageplans/nope00/usage?startDate=2026-03-15&endDate=2026-03-15", nil), 404, "NotFoundException", msgPlanNotFound)
}

func TestUsageExport(t *testing.T) {
	e := newEnv(t)
	plan := e.plan(map[string]any{"name": "p", "quota": map[string]any{"limit": 5, "period": "DAY"}})
	a := e.key(map[string]any{"name": "=HYPERLINK(1)", "customerId": "cust,1"})
	e.attach(plan, a)
	e.report(plan, a, testNow, 2)
	q := "/usageplans/" + plan + "/usage?startDate=2026-03-14&endDate=2026-03-15"

	r := e.do("GET", q, nil, "Accept", "text/csv")
	want := "keyId,name,customerId,date,used,remaining\n" +
		a + ",'=HYPERLINK(1),\"cust,1\",2026-03-14,0,5\n" +
		a + ",'=HYPERLINK(1),\"cust,1\",2026-03-15,2,3\n"
	if r.code != 200 || string(r.body) != want || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV export: %d %s\n got %q\nwant %q", r.code, r.header.Get("Content-Type"), r.body, want)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="usage-`+plan+`-2026-03-14-2026-03-15.csv"` {
		t.Fatalf("Content-Disposition %q", cd)
	}
	if r2 := e.do("GET", q+"&format=csv", nil, "Accept", "application/json"); string(r2.body) != want {
		t.Fatalf("?format=csv wins over Accept: %s", r2.body)
	}

	r = e.do("GET", q+"&format=ndjson", nil)
	wantND := `{"keyId":"` + a + `","name":"=HYPERLINK(1)","customerId":"cust,1","date":"2026-03-14","used":0,"remaining":5}` + "\n" +
		`{"keyId":"` + a + `","name":"=HYPERLINK(1)","customerId":"cust,1","date":"2026-03-15","used":2,"remaining":3}` + "\n"
	if r.code != 200 || string(r.body) != wantND || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("NDJSON export: %d\n got %s\nwant %s", r.code, r.body, wantND)
	}
	if r := e.do("GET", q, nil, "Accept", "application/x-ndjson"); string(r.body) != wantND {
		t.Fatalf("Accept: application/x-ndjson: %s", r.body)
	}
	// The SDKs' Accept gets the document.
	if r := e.do("GET", q, nil, "Accept", "application/json"); !strings.HasPrefix(string(r.body), `{"usagePlanId"`) {
		t.Fatalf("Accept: application/json: %s", r.body)
	}
}

func TestUpdateUsageErrors(t *testing.T) {
	e := newEnv(t)
	plan := e.plan(map[string]any{"name": "p", "quota": map[string]any{"limit": 5, "period": "DAY"}})
	key := e.key(map[string]any{"name": "k"})
	loose := e.key(map[string]any{"name": "loose"})
	e.attach(plan, key)
	path := "/usageplans/" + plan + "/keys/" + key + "/usage"
	for _, c := range []struct {
		name string
		path string
		ops  map[string]any
		code int
		msg  string
	}{
		{"other path", path, patch(op("replace", "/used", "1")), 400, "Invalid patch path  '/used' specified for op 'replace'. Must be one of: [/remaining]"},
		{"add", path, patch(op("add", "/remaining", "1")), 400, "Invalid patch path  '/remaining' specified for op 'add'. Must be one of: []"},
		{"negative", path, patch(op("replace", "/remaining", "-1")), 400, `Invalid value "-1" for /remaining: want an integer from 0 to 1000000000000`},
		{"not a number", path, patch(op("replace", "/remaining", "many")), 400, `Invalid value "many" for /remaining*`},
		{"no ops", path, patch(), 400, "UpdateUsage needs the patch operation replace /remaining"},
		{"unknown plan", "/usageplans/nope00/keys/" + key + "/usage", patch(op("replace", "/remaining", "1")), 404, msgPlanNotFound},
		{"key not in plan", "/usageplans/" + plan + "/keys/" + loose + "/usage", patch(op("replace", "/remaining", "1")), 404, msgKeyNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ := map[int]string{400: "BadRequestException", 404: "NotFoundException"}[c.code]
			wantError(t, e.do("PATCH", c.path, c.ops), c.code, typ, c.msg)
		})
	}
}

func TestKeyUsageMath(t *testing.T) {
	// A leap-year February with a MONTH quota starting on the 28th.
	q := usageQuota{ok: true, Quota: limiter.Quota{Period: limiter.PeriodMonth, Offset: 27, Limit: 10}}
	l := ledgerFor(map[string]int64{"2028-02-27": 1, "2028-02-28": 2, "2028-02-29": 3, "2028-03-27": 4, "2028-03-28": 5})
	got := keyUsage(l, q, day("2028-02-27"), day("2028-03-28"))
	if len(got) != 31 {
		t.Fatalf("%d days, want 31", len(got))
	}
	check := map[int][2]int64{0: {1, 9}, 1: {2, 8}, 2: {3, 5}, 3: {0, 5}, 29: {4, 1}, 30: {5, 5}}
	for i, want := range check {
		if got[i] != want {
			t.Errorf("day %d: %v, want %v", i, got[i], want)
		}
	}
	// A nil ledger: nothing used.
	if got := keyUsage(nil, q, day("2028-02-27"), day("2028-02-28")); got[0] != [2]int64{0, 10} || got[1] != [2]int64{0, 10} {
		t.Fatalf("nil ledger: %v", got)
	}
}

// ledgerFor builds a ledger with the given daily usage.
func ledgerFor(daily map[string]int64) *pb.KeyLedger {
	l := &pb.KeyLedger{Daily: map[int64]int64{}}
	for d, n := range daily {
		l.Daily[limiter.DayOf(day(d).Unix())] = n
	}
	return l
}

// TestUsageExportKeepsDeletedKeys: after DeleteApiKey, GetUsage no longer
// lists the key, but the billing export (CSV and NDJSON) still carries its
// usage of the period, under its name and customer id; the key's id is not
// given to a new key.
func TestUsageExportKeepsDeletedKeys(t *testing.T) {
	e := newEnv(t)
	plan := e.plan(map[string]any{"name": "p", "quota": map[string]any{"limit": 5, "period": "DAY"}})
	a := e.key(map[string]any{"name": "gone", "customerId": "c1"})
	e.attach(plan, a)
	e.report(plan, a, testNow, 2)
	if r := e.do("DELETE", "/apikeys/"+a, nil); r.code != 202 {
		t.Fatalf("DeleteApiKey: %d %s", r.code, r.body)
	}
	q := "/usageplans/" + plan + "/usage?startDate=2026-03-15&endDate=2026-03-15"
	if u := e.must("GET", q, nil, 200); mustJSON(t, u["values"]) != `{}` {
		t.Fatalf("GetUsage still lists the deleted key: %v", u)
	}
	want := "keyId,name,customerId,date,used,remaining\n" + a + ",gone,c1,2026-03-15,2,3\n"
	if r := e.do("GET", q+"&format=csv", nil); string(r.body) != want {
		t.Fatalf("CSV export after delete:\n got %q\nwant %q", r.body, want)
	}
	wantND := `{"keyId":"` + a + `","name":"gone","customerId":"c1","date":"2026-03-15","used":2,"remaining":3}` + "\n"
	if r := e.do("GET", q+"&format=ndjson&keyId="+a, nil); string(r.body) != wantND {
		t.Fatalf("NDJSON export after delete:\n got %s\nwant %s", r.body, wantND)
	}
	if !keyIDTaken(e.store.Config(), a) {
		t.Fatal("the deleted key's id is free for a new key")
	}
}
