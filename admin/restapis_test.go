package admin

import (
	"context"
	"errors"
	"strings"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
)

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("New without a store: %v, want an error naming Store", err)
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/nope", nil)
	wantError(t, r, 404, "NotFoundException", "No route matches GET /nope")

	r = e.do("PUT", "/usageplans", "{}")
	wantError(t, r, 405, "MethodNotAllowedException", "*")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q, want GET and POST", allow)
	}

	for _, p := range []string{"/usageplans/../apikeys", "//usageplans", "/usageplans/./x"} {
		wantError(t, e.do("GET", p, nil), 404, "NotFoundException", "No route matches GET "+p+": the path is not canonical*")
	}
	wantError(t, e.do("GET", "/usageplans/", nil), 404, "NotFoundException", "No route matches GET /usageplans/")
	wantError(t, e.do("GET", "/usageplans/a%2Fb", nil), 404, "NotFoundException", msgPlanNotFound)

	if got := e.must("GET", "/healthz", nil, 200)["status"]; got != "ok" {
		t.Errorf("healthz status %v", got)
	}

	e.plan(map[string]any{"name": "p"})
	r = e.do("GET", "/metrics", nil)
	if r.code != 200 {
		t.Fatalf("metrics status %d", r.code)
	}
	for _, want := range []string{
		`tollgate_admin_requests_total{code="201",route="POST /usageplans"} 1`,
		`tollgate_admin_requests_total{code="404",route="unmatched"} 5`,
		`tollgate_admin_requests_total{code="405",route="unmatched"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRequestIDsDiffer(t *testing.T) {
	e := newEnv(t)
	a := e.do("GET", "/account", nil).header.Get("x-amzn-RequestId")
	b := e.do("GET", "/account", nil).header.Get("x-amzn-RequestId")
	if a == b || len(a) != 36 {
		t.Fatalf("request ids %q and %q: want two different UUIDs", a, b)
	}
}

func TestRestApis(t *testing.T) {
	e := newEnv(t)
	got := e.must("POST", "/restapis", map[string]any{
		"name": "pets", "description": "d", "tags": map[string]string{"a": "b"},
		"endpointConfiguration": map[string]any{"types": []string{"EDGE"}}, "binaryMediaTypes": []string{"image/png"},
	}, 201)
	id := got["id"].(string)
	if len(id) != restAPIIDLen || got["name"] != "pets" || got["apiKeySource"] != "HEADER" ||
		got["createdDate"] != float64(testNow.Unix()) || mustJSON(t, got["endpointConfiguration"]) != `{"types":["EDGE"]}` || got["disableExecuteApiEndpoint"] != false ||
		mustJSON(t, got["tags"]) != `{"a":"b"}` {
		t.Fatalf("CreateRestApi answered %v", got)
	}
	if g := e.must("GET", "/restapis/"+id, nil, 200); g["id"] != id || g["description"] != "d" {
		t.Fatalf("GetRestApi answered %v", g)
	}
	wantError(t, e.do("GET", "/restapis/zzzzzzzzzz", nil), 404, "NotFoundException", msgAPINotFound)

	// Paging: three APIs, two per page.
	e.advance(1e9)
	e.api("b")
	e.advance(1e9)
	e.api("c")
	p1 := e.must("GET", "/restapis?limit=2", nil, 200)
	items := p1["item"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["name"] != "pets" || p1["position"] == nil {
		t.Fatalf("page 1: %v", p1)
	}
	p2 := e.must("GET", "/restapis?limit=2&position="+p1["position"].(string), nil, 200)
	items = p2["item"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["name"] != "c" {
		t.Fatalf("page 2: %v", p2)
	}
	if _, has := p2["position"]; has {
		t.Fatalf("the last page has a position: %v", p2)
	}

	for _, c := range []struct {
		name string
		body any
		msg  string
	}{
		{"no name", map[string]any{}, "Invalid REST API name specified*"},
		{"authorizer", map[string]any{"name": "x", "apiKeySource": "AUTHORIZER"}, "apiKeySource AUTHORIZER is not supported*"},
		{"unknown field", map[string]any{"name": "x", "bogus": 1}, `Invalid request body: unknown field "bogus"`},
		{"clone", map[string]any{"name": "x", "cloneFrom": "abc"}, "cloneFrom is not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/restapis", c.body), 400, "BadRequestException", c.msg)
		})
	}

	// Update.
	upd := e.must("PATCH", "/restapis/"+id, patch(op("replace", "/name", "pets2"), op("replace", "/description", ""), op("replace", "/version", "v2")), 200)
	if upd["name"] != "pets2" || upd["version"] != "v2" || upd["description"] != nil || upd["createdDate"] != float64(testNow.Unix()) {
		t.Fatalf("UpdateRestApi answered %v", upd)
	}
	wantError(t, e.do("PATCH", "/restapis/"+id, patch(op("replace", "/id", "x"))), 400, "BadRequestException",
		"Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/name, /description, /version, /apiKeySource, /disableExecuteApiEndpoint, /endpointConfiguration/types/{type}]")
	cos := e.must("PATCH", "/restapis/"+id, patch(op("replace", "/endpointConfiguration/types/EDGE", "REGIONAL"), op("replace", "/disableExecuteApiEndpoint", "true")), 200)
	if mustJSON(t, cos["endpointConfiguration"]) != `{"types":["REGIONAL"]}` || cos["disableExecuteApiEndpoint"] != true {
		t.Fatalf("UpdateRestApi of the endpoint answered %v", cos)
	}
	wantError(t, e.do("PATCH", "/restapis/"+id, patch(op("replace", "/endpointConfiguration/types/REGIONAL", "LOCAL"))), 400, "BadRequestException", `Invalid endpoint type "LOCAL"*`)
	wantError(t, e.do("PATCH", "/restapis/"+id, patch(op("replace", "/apiKeySource", "AUTHORIZER"))), 400, "BadRequestException", `Invalid apiKeySource "AUTHORIZER"*`)
	wantError(t, e.do("PATCH", "/restapis/nope", patch(op("replace", "/name", "x"))), 404, "NotFoundException", msgAPINotFound)

	// Delete: the API's stages leave the plans that cover them, as the
	// original's.
	e.stage(id, "prod")
	planID := e.plan(map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": id, "stage": "prod"}}})
	if r := e.do("DELETE", "/restapis/"+id, nil); r.code != 202 || len(r.body) != 0 {
		t.Fatalf("DeleteRestApi: %d %s", r.code, r.body)
	}
	if p := e.must("GET", "/usageplans/"+planID, nil, 200); mustJSON(t, p["apiStages"]) != `[]` {
		t.Fatalf("the plan still covers the deleted API: %v", p)
	}
	wantError(t, e.do("GET", "/restapis/"+id, nil), 404, "NotFoundException", msgAPINotFound)
	wantError(t, e.do("DELETE", "/restapis/"+id, nil), 404, "NotFoundException", msgAPINotFound)
}

func TestDeploymentsAndStages(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	dep := e.must("POST", "/restapis/"+api+"/deployments", map[string]any{
		"stageName": "prod", "stageDescription": "production", "description": "first",
		"variables": map[string]string{"url": "https://backend.example.com/v1"},
	}, 201)
	depID := dep["id"].(string)
	if len(depID) != deploymentIDLen || dep["description"] != "first" || dep["createdDate"] != float64(testNow.Unix()) {
		t.Fatalf("CreateDeployment answered %v", dep)
	}
	st := e.must("GET", "/restapis/"+api+"/stages/prod", nil, 200)
	if st["deploymentId"] != depID || st["description"] != "production" || st["apiKeyRequired"] != true ||
		mustJSON(t, st["variables"]) != `{"url":"https://backend.example.com/v1"}` || st["createdDate"] != float64(testNow.Unix()) {
		t.Fatalf("GetStage answered %v", st)
	}
	deps := e.must("GET", "/restapis/"+api+"/deployments", nil, 200)
	if items := deps["item"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != depID {
		t.Fatalf("GetDeployments answered %v", deps)
	}
	if d := e.must("GET", "/restapis/"+api+"/deployments/"+depID, nil, 200); d["id"] != depID {
		t.Fatalf("GetDeployment answered %v", d)
	}

	created := e.must("POST", "/restapis/"+api+"/stages", map[string]any{
		"stageName": "dev", "deploymentId": depID, "description": "development",
		"tags": map[string]string{"env": "dev"}, "apiKeyRequired": false, "tracingEnabled": false,
	}, 201)
	if created["stageName"] != "dev" || created["apiKeyRequired"] != false || mustJSON(t, created["tags"]) != `{"env":"dev"}` {
		t.Fatalf("CreateStage answered %v", created)
	}
	list := e.must("GET", "/restapis/"+api+"/stages", nil, 200)
	items := list["item"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["stageName"] != "dev" || items[1].(map[string]any)["stageName"] != "prod" {
		t.Fatalf("GetStages answered %v", list)
	}
	if _, has := list["position"]; has {
		t.Fatalf("GetStages is not paged: %v", list)
	}

	for _, c := range []struct {
		name string
		path string
		body any
		code int
		typ  string
		msg  string
	}{
		{"bad url", "/restapis/" + api + "/stages", map[string]any{"stageName": "x", "deploymentId": depID, "variables": map[string]string{"url": "ftp://x"}}, 400, "BadRequestException", `Invalid value for stage variable "url"*`},
		{"relative url", "/restapis/" + api + "/stages", map[string]any{"stageName": "x", "deploymentId": depID, "variables": map[string]string{"url": "/just/a/path"}}, 400, "BadRequestException", `Invalid value for stage variable "url"*`},
		{"bad variable name", "/restapis/" + api + "/stages", map[string]any{"stageName": "x", "deploymentId": depID, "variables": map[string]string{"a-b": "1"}}, 400, "BadRequestException", `Invalid stage variable name "a-b"*`},
		{"bad stage name", "/restapis/" + api + "/stages", map[string]any{"stageName": "a b", "deploymentId": depID}, 400, "BadRequestException", "Stage name only allows a-zA-Z0-9_-*"},
		{"no deployment", "/restapis/" + api + "/stages", map[string]any{"stageName": "x"}, 400, "BadRequestException", "Invalid deployment identifier specified*"},
		{"unknown deployment", "/restapis/" + api + "/stages", map[string]any{"stageName": "x", "deploymentId": "nope00"}, 404, "NotFoundException", "Invalid deployment identifier specified"},
		{"duplicate", "/restapis/" + api + "/stages", map[string]any{"stageName": "dev", "deploymentId": depID}, 409, "ConflictException", "Stage already exists"},
		{"unknown api", "/restapis/nope/stages", map[string]any{"stageName": "x", "deploymentId": depID}, 404, "NotFoundException", msgAPINotFound},
		{"deploy unknown api", "/restapis/nope/deployments", map[string]any{}, 404, "NotFoundException", msgAPINotFound},
		{"deploy variables without stage", "/restapis/" + api + "/deployments", map[string]any{"variables": map[string]string{"a": "b"}}, 400, "BadRequestException", "variables and stageDescription need a stageName"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", c.path, c.body), c.code, c.typ, c.msg)
		})
	}
	wantError(t, e.do("GET", "/restapis/"+api+"/stages/nope", nil), 404, "NotFoundException", msgStageNotFound)
	wantError(t, e.do("GET", "/restapis/"+api+"/stages/a%2Fb", nil), 404, "NotFoundException", msgStageNotFound)

	// Redeploying to a stage moves it and keeps its settings.
	dep2 := e.must("POST", "/restapis/"+api+"/deployments", map[string]any{"stageName": "dev"}, 201)["id"].(string)
	st = e.must("GET", "/restapis/"+api+"/stages/dev", nil, 200)
	if st["deploymentId"] != dep2 || st["description"] != "development" {
		t.Fatalf("after redeploy: %v", st)
	}

	// Delete: the stage leaves the plans that cover it, as the original's;
	// the plan's other stages stay.
	plan := e.plan(map[string]any{"name": "p", "apiStages": []map[string]any{{"apiId": api, "stage": "dev"}, {"apiId": api, "stage": "prod"}}})
	if r := e.do("DELETE", "/restapis/"+api+"/stages/dev", nil); r.code != 202 {
		t.Fatalf("DeleteStage: %d %s", r.code, r.body)
	}
	if p := e.must("GET", "/usageplans/"+plan, nil, 200); mustJSON(t, p["apiStages"]) != `[{"apiId":"`+api+`","stage":"prod"}]` {
		t.Fatalf("after DeleteStage the plan reads %v", p)
	}
	wantError(t, e.do("DELETE", "/restapis/"+api+"/stages/dev", nil), 404, "NotFoundException", msgStageNotFound)

	// Deployments: one a stage serves cannot be deleted; the one dev
	// served can, once dev is gone. UpdateDeployment sets its description.
	wantError(t, e.do("DELETE", "/restapis/"+api+"/deployments/"+depID, nil), 400, "BadRequestException",
		"Active stages pointing to this deployment must be moved or deleted")
	d := e.must("PATCH", "/restapis/"+api+"/deployments/"+dep2, patch(op("replace", "/description", "second")), 200)
	if d["id"] != dep2 || d["description"] != "second" {
		t.Fatalf("UpdateDeployment answered %v", d)
	}
	wantError(t, e.do("PATCH", "/restapis/"+api+"/deployments/"+dep2, patch(op("replace", "/stageName", "x"))), 400, "BadRequestException",
		"Invalid patch path  '/stageName' specified for op 'replace'. Must be one of: [/description]")
	if r := e.do("DELETE", "/restapis/"+api+"/deployments/"+dep2, nil); r.code != 202 {
		t.Fatalf("DeleteDeployment: %d %s", r.code, r.body)
	}
	wantError(t, e.do("GET", "/restapis/"+api+"/deployments/"+dep2, nil), 404, "NotFoundException", msgDeploymentNotFound)
	wantError(t, e.do("DELETE", "/restapis/"+api+"/deployments/"+dep2, nil), 404, "NotFoundException", msgDeploymentNotFound)
	wantError(t, e.do("PATCH", "/restapis/"+api+"/deployments/"+dep2, patch(op("replace", "/description", "x"))), 404, "NotFoundException", msgDeploymentNotFound)
}

func TestUpdateStage(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	other := e.must("POST", "/restapis/"+api+"/deployments", map[string]any{}, 201)["id"].(string)
	path := "/restapis/" + api + "/stages/prod"

	st := e.must("PATCH", path, patch(
		op("replace", "/description", "new"),
		op("replace", "/deploymentId", other),
		op("replace", "/variables/color", "blue"),
		op("replace", "/variables/url", "https://b.example.com"),
		op("replace", "/*/*/throttling/rateLimit", "100"),
		op("replace", "/*/*/throttling/burstLimit", "200"),
		op("replace", "/~1pets/GET/throttling/burstLimit", "5"),
		op("replace", "/~1pets/GET/throttling/rateLimit", "2.5"),
		op("replace", "/~1pets/GET/metrics/enabled", "true"),
		op("replace", "/~1pets/GET/logging/loglevel", "info"),
		op("replace", "/apiKeyRequired", "false"),
	), 200)
	ms := st["methodSettings"].(map[string]any)
	all := ms["*/*"].(map[string]any)
	pets := ms["~1pets/GET"].(map[string]any)
	if st["description"] != "new" || st["deploymentId"] != other || st["apiKeyRequired"] != false ||
		mustJSON(t, st["variables"]) != `{"color":"blue","url":"https://b.example.com"}` ||
		all["throttlingRateLimit"] != 100.0 || all["throttlingBurstLimit"] != 200.0 ||
		pets["throttlingRateLimit"] != 2.5 || pets["throttlingBurstLimit"] != 5.0 || pets["metricsEnabled"] != true || pets["loggingLevel"] != "INFO" {
		t.Fatalf("UpdateStage answered %v", st)
	}
	cfgStage := e.store.Config().GetStages()[api+"/prod"]
	if m := cfgStage.GetMethodSettings()["/pets/GET"]; m.GetThrottlingRateLimit() != 2.5 || m.GetThrottlingBurstLimit() != 5 {
		t.Fatalf("stored method setting %v", m)
	}
	if !cfgStage.GetApiKeyNotRequired() {
		t.Fatal("apiKeyRequired false was not stored")
	}

	// Removing: a variable, one throttle value (inherits the account's), a method setting.
	st = e.must("PATCH", path, patch(
		op("remove", "/variables/color", ""),
		op("remove", "/*/*/throttling/rateLimit", ""),
		op("remove", "/*/*/throttling/burstLimit", ""),
		op("remove", "/~1pets/GET", ""),
	), 200)
	ms = st["methodSettings"].(map[string]any)
	if _, has := ms["~1pets/GET"]; has || mustJSON(t, st["variables"]) != `{"url":"https://b.example.com"}` {
		t.Fatalf("after removes: %v", st)
	}
	if all := ms["*/*"].(map[string]any); all["throttlingRateLimit"] != 10000.0 || all["throttlingBurstLimit"] != 5000.0 {
		t.Fatalf("an unset method throttle shows the account's: %v", all)
	}
	// The raw answer writes rates as doubles.
	if r := e.do("GET", path, nil); !strings.Contains(string(r.body), `"throttlingRateLimit":10000.0`) {
		t.Fatalf("rate not written as a double: %s", r.body)
	}

	for _, c := range []struct {
		name string
		ops  map[string]any
		code int
		typ  string
		msg  string
	}{
		{"bad path", patch(op("replace", "/clientCertificateId", "c")), 400, "BadRequestException",
			"Invalid patch path  '/clientCertificateId' specified for op 'replace'. Must be one of: [/description, /deploymentId, /variables/{name}, /apiKeyRequired, /tracingEnabled, /cacheClusterEnabled, /cacheClusterSize, /accessLogSettings/format, /accessLogSettings/destinationArn, /{resourcePath}/{httpMethod}/throttling/rateLimit, /{resourcePath}/{httpMethod}/throttling/burstLimit, /{resourcePath}/{httpMethod}/metrics/enabled, /{resourcePath}/{httpMethod}/logging/loglevel, /{resourcePath}/{httpMethod}/logging/dataTrace, /{resourcePath}/{httpMethod}/caching/enabled, /{resourcePath}/{httpMethod}/caching/ttlInSeconds, /{resourcePath}/{httpMethod}/caching/dataEncrypted, /{resourcePath}/{httpMethod}/caching/requireAuthorizationForCacheControl, /{resourcePath}/{httpMethod}/caching/unauthorizedCacheControlHeaderStrategy]"},
		{"move", patch(op("move", "/description", "")), 400, "BadRequestException", "Invalid patch path  '/description' specified for op 'move'. Must be one of: []"},
		{"bad op", patch(op("frobnicate", "/description", "")), 400, "BadRequestException", `Invalid patch operation "frobnicate" specified*`},
		{"bad url", patch(op("replace", "/variables/url", "not a url")), 400, "BadRequestException", `Invalid value for stage variable "url"*`},
		{"burst without rate", patch(op("replace", "/~1a/GET/throttling/rateLimit", "0"), op("replace", "/~1a/GET/throttling/burstLimit", "5")), 400, "BadRequestException", "Invalid throttling of method /a/GET*"},
		{"negative rate", patch(op("replace", "/*/*/throttling/rateLimit", "-1")), 400, "BadRequestException", `Invalid value "-1" for /*/*/throttling/rateLimit*`},
		{"huge burst", patch(op("replace", "/*/*/throttling/burstLimit", "3000000000")), 400, "BadRequestException", "*"},
		{"bad method", patch(op("replace", "/~1a/FETCH/throttling/rateLimit", "5")), 400, "BadRequestException", `Invalid method setting key "/a/FETCH"*`},
		{"bad escape", patch(op("replace", "/~2a/GET/throttling/rateLimit", "5")), 400, "BadRequestException", "*"},
		{"bad log level", patch(op("replace", "/*/*/logging/loglevel", "LOUD")), 400, "BadRequestException", `Invalid logging level "LOUD"*`},
		{"bad bool", patch(op("replace", "/apiKeyRequired", "maybe")), 400, "BadRequestException", `Invalid value "maybe" for /apiKeyRequired*`},
		{"remove missing setting", patch(op("remove", "/~1zzz/GET", "")), 404, "NotFoundException", "No method setting ~1zzz/GET in stage prod"},
		{"unknown deployment", patch(op("replace", "/deploymentId", "nope00")), 404, "NotFoundException", "Invalid deployment identifier specified"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.store.Config().GetStages()[api+"/prod"].GetRevision()
			wantError(t, e.do("PATCH", path, c.ops), c.code, c.typ, c.msg)
			if after := e.store.Config().GetStages()[api+"/prod"].GetRevision(); after != before {
				t.Fatal("a refused patch changed the stage")
			}
		})
	}
	wantError(t, e.do("PATCH", "/restapis/"+api+"/stages/nope", patch(op("replace", "/description", "x"))), 404, "NotFoundException", msgStageNotFound)
}

// failingStore refuses every change as a cluster without a leader would.
type failingStore struct{ Store }

func (failingStore) Apply(context.Context, *pb.Command) (*pb.Result, error) {
	return nil, errors.New("no leader")
}

func TestStoreUnavailable(t *testing.T) {
	e := newEnvWithStore(t, func(s Store) Store { return failingStore{s} })
	r := e.do("POST", "/usageplans", map[string]any{"name": "p"})
	wantError(t, r, 503, "ServiceUnavailableException", "The change could not be applied now (no leader); retry")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	// Reads still work.
	e.must("GET", "/usageplans", nil, 200)
}
