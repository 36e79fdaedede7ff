package admin

import (
	"strings"
	"testing"
	"time"
)

func TestCreateAPIKey(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")

	r := e.do("POST", "/apikeys", map[string]any{"name": "gen"})
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	gen := r.json(t)
	id, value := gen["id"].(string), gen["value"].(string)
	if len(id) != keyIDLen || strings.Trim(id, lowerAlnum) != "" || len(value) != keyValueLen || !isAlnum(value) {
		t.Fatalf("generated id %q value %q", id, value)
	}
	want := `{"id":"` + id + `","value":"` + value + `","name":"gen","enabled":false,"createdDate":1773576000,"lastUpdatedDate":1773576000,"stageKeys":[]}` + "\n"
	if string(r.body) != want {
		t.Fatalf("CreateApiKey body\n got %s\nwant %s", r.body, want)
	}

	full := e.must("POST", "/apikeys", map[string]any{
		"name": "customer-42", "description": "acme", "enabled": true, "value": "apikey1234abcdefghij0123456789",
		"customerId": "mkt-cust-1", "tags": map[string]string{"k": "v"}, "generateDistinctId": true,
		"stageKeys": []map[string]string{{"restApiId": api, "stageName": "prod"}},
	}, 201)
	if full["value"] != "apikey1234abcdefghij0123456789" || full["enabled"] != true || full["customerId"] != "mkt-cust-1" ||
		mustJSON(t, full["stageKeys"]) != `["`+api+`/prod"]` || mustJSON(t, full["tags"]) != `{"k":"v"}` {
		t.Fatalf("CreateApiKey answered %v", full)
	}

	for _, c := range []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"short value", map[string]any{"value": strings.Repeat("a", 19)}, 400, "API Key value should be at least 20 characters"},
		{"long value", map[string]any{"value": strings.Repeat("a", 129)}, 400, "API Key value exceeds maximum size of 128 characters"},
		{"symbols", map[string]any{"value": strings.Repeat("a", 20) + "-"}, 400, "API Key value must contain only alphanumeric characters"},
		{"long name", map[string]any{"name": strings.Repeat("n", 1025)}, 400, "Invalid API Key name, can be at most 1024 characters."},
		{"long description", map[string]any{"description": strings.Repeat("d", 125001)}, 400, "Invalid API Key description specified."},
		{"duplicate value", map[string]any{"value": "apikey1234abcdefghij0123456789"}, 409, "API Key already exists"},
		{"unknown stage key", map[string]any{"stageKeys": []map[string]string{{"restApiId": api, "stageName": "nope"}}}, 400, "Invalid stage key specified: " + api + "/nope"},
		{"enabled as string", `{"enabled":"true"}`, 400, `Invalid request body: field "enabled" must be a boolean, not string`},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ := map[int]string{400: "BadRequestException", 409: "ConflictException"}[c.code]
			wantError(t, e.do("POST", "/apikeys", c.body), c.code, typ, c.msg)
		})
	}
	if n := len(e.store.Config().GetApiKeys()); n != 2 {
		t.Fatalf("%d keys, want 2", n)
	}
}

func TestGetAndListAPIKeys(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i, name := range []string{"alpha", "beta", "alphabet", "gamma"} {
		body := map[string]any{"name": name, "enabled": true}
		if i%2 == 0 {
			body["customerId"] = "c1"
		}
		ids = append(ids, e.key(body))
		e.advance(time.Second)
	}
	one := e.must("GET", "/apikeys/"+ids[0], nil, 200)
	if _, has := one["value"]; has || one["name"] != "alpha" {
		t.Fatalf("GetApiKey without includeValue: %v", one)
	}
	one = e.must("GET", "/apikeys/"+ids[0]+"?includeValue=true", nil, 200)
	if v, _ := one["value"].(string); len(v) != keyValueLen {
		t.Fatalf("GetApiKey with includeValue: %v", one)
	}
	wantError(t, e.do("GET", "/apikeys/nope", nil), 404, "NotFoundException", msgKeyNotFound)
	wantError(t, e.do("GET", "/apikeys/"+ids[0]+"?includeValue=perhaps", nil), 400, "BadRequestException", `Invalid includeValue "perhaps"*`)

	names := func(got map[string]any) string {
		var out []string
		for _, it := range got["item"].([]any) {
			m := it.(map[string]any)
			if _, has := m["value"]; has != strings.Contains(mustJSON(t, got), `"value"`) {
				t.Fatal("value shown for some items only")
			}
			out = append(out, m["name"].(string))
		}
		return strings.Join(out, ",")
	}
	// Newest first.
	if got := names(e.must("GET", "/apikeys", nil, 200)); got != "gamma,alphabet,beta,alpha" {
		t.Fatalf("GetApiKeys order %s", got)
	}
	if got := names(e.must("GET", "/apikeys?name=alpha", nil, 200)); got != "alphabet,alpha" {
		t.Fatalf("name prefix filter: %s", got)
	}
	if got := names(e.must("GET", "/apikeys?name=Alpha", nil, 200)); got != "" {
		t.Fatalf("the name filter is case sensitive: %s", got)
	}
	if got := names(e.must("GET", "/apikeys?customerId=c1", nil, 200)); got != "alphabet,alpha" {
		t.Fatalf("customerId filter: %s", got)
	}
	withValues := e.must("GET", "/apikeys?includeValues=true", nil, 200)
	for _, it := range withValues["item"].([]any) {
		if v, _ := it.(map[string]any)["value"].(string); v == "" {
			t.Fatalf("includeValues=true without values: %v", withValues)
		}
	}
	p1 := e.must("GET", "/apikeys?limit=3", nil, 200)
	if names(p1) != "gamma,alphabet,beta" {
		t.Fatalf("page 1 %s", names(p1))
	}
	// A key created between pages appears on no page: it is newer than the position.
	e.key(map[string]any{"name": "late"})
	p2 := e.must("GET", "/apikeys?limit=3&position="+p1["position"].(string), nil, 200)
	if names(p2) != "alpha" || p2["position"] != nil {
		t.Fatalf("page 2 %v", p2)
	}
}

func TestUpdateAPIKey(t *testing.T) {
	e := newEnv(t)
	id := e.key(map[string]any{"name": "k", "enabled": true})
	e.advance(time.Minute)
	r := e.do("PATCH", "/apikeys/"+id, patch(
		op("replace", "/name", "renamed"),
		op("replace", "/description", "desc"),
		op("replace", "/customerId", "cust"),
		op("replace", "/enabled", "FALSE"),
	))
	if r.code != 200 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	got := r.json(t)
	if _, has := got["value"]; has || got["name"] != "renamed" || got["description"] != "desc" || got["customerId"] != "cust" ||
		got["enabled"] != false || got["lastUpdatedDate"] != float64(testNow.Add(time.Minute).Unix()) || got["createdDate"] != float64(testNow.Unix()) {
		t.Fatalf("UpdateApiKey answered %s", r.body)
	}
	// Enabled: "true" in any case is true, anything else is false.
	for _, c := range []struct {
		v    string
		want bool
	}{{"True", true}, {"yes", false}, {"true", true}, {"", false}} {
		got := e.must("PATCH", "/apikeys/"+id, patch(op("replace", "/enabled", c.v)), 200)
		if got["enabled"] != c.want {
			t.Fatalf("enabled %q gave %v", c.v, got["enabled"])
		}
	}
	for _, c := range []struct {
		name string
		ops  map[string]any
		msg  string
	}{
		{"id", patch(op("replace", "/id", "x")), "Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/description, /enabled, /name, /customerId]"},
		{"value", patch(op("replace", "/value", strings.Repeat("a", 30))), "Invalid patch path  '/value' specified for op 'replace'. Must be one of: [/description, /enabled, /name, /customerId]"},
		{"add", patch(op("add", "/name", "x")), "Invalid patch path  '/name' specified for op 'add'. Must be one of: []"},
		{"long name", patch(op("replace", "/name", strings.Repeat("n", 1025))), "Invalid API Key name, can be at most 1024 characters."},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("PATCH", "/apikeys/"+id, c.ops), 400, "BadRequestException", c.msg)
		})
	}
	wantError(t, e.do("PATCH", "/apikeys/nope", patch(op("replace", "/name", "x"))), 404, "NotFoundException", msgKeyNotFound)
}

func TestDeleteAPIKeyDetaches(t *testing.T) {
	e := newEnv(t)
	plan := e.plan(map[string]any{"name": "p"})
	id := e.key(map[string]any{"name": "k"})
	e.attach(plan, id)
	if r := e.do("DELETE", "/apikeys/"+id, nil); r.code != 202 || len(r.body) != 0 {
		t.Fatalf("DeleteApiKey: %d %q", r.code, r.body)
	}
	if got := e.must("GET", "/usageplans/"+plan+"/keys", nil, 200); len(got["item"].([]any)) != 0 {
		t.Fatalf("plan keys after the key was deleted: %v", got)
	}
	wantError(t, e.do("DELETE", "/apikeys/"+id, nil), 404, "NotFoundException", msgKeyNotFound)
}

func TestUsagePlanKeys(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	plan := e.plan(map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	var keys []string
	for _, n := range []string{"kb", "ka", "other"} {
		keys = append(keys, e.key(map[string]any{"name": n, "value": strings.Repeat(n, 20)[:24]}))
	}
	r := e.do("POST", "/usageplans/"+plan+"/keys", map[string]any{"keyId": keys[0], "keyType": "API_KEY"})
	if want := `{"id":"` + keys[0] + `","type":"API_KEY","value":"` + strings.Repeat("kb", 12) + `","name":"kb"}` + "\n"; r.code != 201 || string(r.body) != want {
		t.Fatalf("CreateUsagePlanKey: %d\n got %s\nwant %s", r.code, r.body, want)
	}
	e.attach(plan, keys[1])
	e.attach(plan, keys[2])

	for _, c := range []struct {
		name string
		path string
		body any
		code int
		msg  string
	}{
		{"bad type", "/usageplans/" + plan + "/keys", map[string]any{"keyId": keys[0], "keyType": "JWT"}, 400, `Invalid key type "JWT" specified*`},
		{"no type", "/usageplans/" + plan + "/keys", map[string]any{"keyId": keys[0]}, 400, `Invalid key type "" specified*`},
		{"no key", "/usageplans/" + plan + "/keys", map[string]any{"keyType": "API_KEY"}, 400, "keyId is required"},
		{"unknown plan", "/usageplans/nope00/keys", map[string]any{"keyId": keys[0], "keyType": "API_KEY"}, 404, msgPlanNotFound},
		{"unknown key", "/usageplans/" + plan + "/keys", map[string]any{"keyId": "nope", "keyType": "API_KEY"}, 404, msgKeyNotFound},
		{"twice", "/usageplans/" + plan + "/keys", map[string]any{"keyId": keys[0], "keyType": "API_KEY"}, 409, "Usage Plan " + plan + " already contains API Key " + keys[0]},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ := map[int]string{400: "BadRequestException", 404: "NotFoundException", 409: "ConflictException"}[c.code]
			wantError(t, e.do("POST", c.path, c.body), c.code, typ, c.msg)
		})
	}

	// A key may not be in two plans that cover the same stage.
	plan2 := e.plan(map[string]any{"name": "p2", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	wantError(t, e.do("POST", "/usageplans/"+plan2+"/keys", map[string]any{"keyId": keys[0], "keyType": "API_KEY"}), 409, "ConflictException",
		"API Key "+keys[0]+" is already associated with usage plan "+plan+"*")

	ids := func(got map[string]any) string {
		var out []string
		for _, it := range got["item"].([]any) {
			m := it.(map[string]any)
			if m["type"] != "API_KEY" || m["value"] == "" {
				t.Fatalf("plan key item %v", m)
			}
			out = append(out, m["name"].(string))
		}
		return strings.Join(out, ",")
	}
	// In the order attached, paged.
	p1 := e.must("GET", "/usageplans/"+plan+"/keys?limit=2", nil, 200)
	p2 := e.must("GET", "/usageplans/"+plan+"/keys?limit=2&position="+p1["position"].(string), nil, 200)
	if ids(p1) != "kb,ka" || ids(p2) != "other" || p2["position"] != nil {
		t.Fatalf("pages %v / %v", p1, p2)
	}
	if got := ids(e.must("GET", "/usageplans/"+plan+"/keys?name=k", nil, 200)); got != "kb,ka" {
		t.Fatalf("name filter: %s", got)
	}
	if got := e.must("GET", "/usageplans/nope00/keys", nil, 200); len(got["item"].([]any)) != 0 {
		t.Fatalf("keys of an unknown plan: %v", got)
	}

	if got := e.must("GET", "/usageplans/"+plan+"/keys/"+keys[1], nil, 200); got["id"] != keys[1] || got["name"] != "ka" {
		t.Fatalf("GetUsagePlanKey: %v", got)
	}
	wantError(t, e.do("GET", "/usageplans/nope00/keys/"+keys[1], nil), 404, "NotFoundException", msgPlanNotFound)
	if r := e.do("DELETE", "/usageplans/"+plan+"/keys/"+keys[1], nil); r.code != 202 {
		t.Fatalf("DeleteUsagePlanKey: %d %s", r.code, r.body)
	}
	wantError(t, e.do("GET", "/usageplans/"+plan+"/keys/"+keys[1], nil), 404, "NotFoundException", msgKeyNotFound)
	wantError(t, e.do("DELETE", "/usageplans/"+plan+"/keys/"+keys[1], nil), 404, "NotFoundException", msgKeyNotFound)
	// The key itself is still there.
	e.must("GET", "/apikeys/"+keys[1], nil, 200)
}

func TestDefaultPlan(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	enabled := e.key(map[string]any{"name": "a", "enabled": true})
	inPlan := e.key(map[string]any{"name": "b", "enabled": true})
	other := e.plan(map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	e.attach(other, inPlan)

	got := e.must("POST", "/restapis/"+api+"/stages/prod/defaultusageplan", nil, 201)
	id := got["id"].(string)
	if got["name"] != "default-"+api+"-prod" || mustJSON(t, got["apiStages"]) != `[{"apiId":"`+api+`","stage":"prod"}]` {
		t.Fatalf("default plan: %v", got)
	}
	if _, has := got["quota"]; has {
		t.Fatalf("a default plan has no quota: %v", got)
	}
	keys := e.must("GET", "/usageplans/"+id+"/keys", nil, 200)["item"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["id"] != enabled {
		t.Fatalf("default plan keys: %v (want only %s: %s already has a plan)", keys, enabled, inPlan)
	}
	wantError(t, e.do("POST", "/restapis/"+api+"/stages/prod/defaultusageplan", nil), 409, "ConflictException", "API Stage "+api+":prod already has a default usage plan: "+id)
	wantError(t, e.do("POST", "/restapis/"+api+"/stages/nope/defaultusageplan", nil), 404, "NotFoundException", "Invalid API Stage {api: "+api+", stage: nope}*")
	wantError(t, e.do("POST", "/restapis/"+api+"/stages/prod/defaultusageplan", `{"x":1}`), 400, "BadRequestException", `Invalid request body: unknown field "x"`)
}

func TestAccount(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/account", nil)
	if want := `{"throttleSettings":{"burstLimit":5000,"rateLimit":10000.0},"features":["UsagePlans"],"apiKeyVersion":"4"}` + "\n"; string(r.body) != want {
		t.Fatalf("GetAccount\n got %s\nwant %s", r.body, want)
	}
	got := e.must("PATCH", "/account", patch(op("replace", "/throttle/rateLimit", "50.5"), op("replace", "/throttle/burstLimit", "100"), op("add", "/features", "UsagePlans")), 200)
	if mustJSON(t, got["throttleSettings"]) != `{"burstLimit":100,"rateLimit":50.5}` {
		t.Fatalf("UpdateAccount answered %v", got)
	}
	if th := e.store.Config().GetAccount().GetThrottle(); th.GetRateLimit() != 50.5 || th.GetBurstLimit() != 100 {
		t.Fatalf("stored account throttle %v", th)
	}
	for _, c := range []struct {
		name string
		ops  map[string]any
		msg  string
	}{
		{"bad path", patch(op("replace", "/features", "UsagePlans")), "Invalid patch path  '/features' specified for op 'replace'. Must be one of: [/cloudwatchRoleArn, /throttle/rateLimit, /throttle/burstLimit]"},
		{"remove", patch(op("remove", "/throttle/rateLimit", "")), "Invalid patch path  '/throttle/rateLimit' specified for op 'remove'. Must be one of: []"},
		{"zero rate", patch(op("replace", "/throttle/rateLimit", "0")), "Invalid account throttle: burstLimit is 100 but rateLimit is 0*"},
		{"role with a space", patch(op("replace", "/cloudwatchRoleArn", "arn:aws:iam::1:role/a b")), "Invalid cloudwatchRoleArn*"},
		{"bad feature", patch(op("add", "/features", "Other")), `Invalid feature "Other"*`},
		{"bad rate", patch(op("replace", "/throttle/rateLimit", "fast")), `Invalid value "fast" for /throttle/rateLimit*`},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("PATCH", "/account", c.ops), 400, "BadRequestException", c.msg)
		})
	}
}
