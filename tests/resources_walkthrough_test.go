package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
)

// dataCall sends one data-plane request with a method and an API key
// ("" sends none), and returns the status, the body and, for a forwarded
// request, the path the upstream saw.
func dataCall(t *testing.T, g *gateway, method, path, key string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.DataURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var seen struct{ Path string }
	if resp.StatusCode == 200 {
		_ = json.Unmarshal(b, &seen)
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), seen.Path
}

// TestWalkthroughResourcesMethodsKeys is the original's usage plan
// walk-through through the AWS SDK for Go v2 against the binary: an API
// with a resource and a GET method requiring a key, its integration, a
// deployment and stage, a plan, a key, traffic, usage and an extension;
// the data plane asks for a key only where the method requires one,
// routes by precedence, answers Missing Authentication Token where no
// route is, and a redeploy switches routes. Then the stage's OpenAPI
// export imports into a second API that serves alike.
func TestWalkthroughResourcesMethodsKeys(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	agw := sdkClient(g, "AKIDTEST", "secret") // the admin API has no credentials yet: loopback callers need none
	ctx := t.Context()
	host := strings.TrimPrefix(up.URL, "http://")

	api, err := agw.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("PetStore")})
	if err != nil {
		t.Fatalf("CreateRestApi: %v", err)
	}
	pets, err := agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("pets")})
	if err != nil {
		t.Fatalf("CreateResource: %v", err)
	}
	if _, err := agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		AuthorizationType: aws.String("NONE"), ApiKeyRequired: true}); err != nil {
		t.Fatalf("PutMethod: %v", err)
	}
	if _, err := agw.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeHttp, IntegrationHttpMethod: aws.String("GET"), Uri: aws.String("http://${stageVariables.host}/pets")}); err != nil {
		t.Fatalf("PutIntegration: %v", err)
	}
	greedy, err := agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("{proxy+}")})
	if err != nil {
		t.Fatalf("CreateResource {proxy+}: %v", err)
	}
	if _, err := agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: greedy.Id, HttpMethod: aws.String("ANY"),
		AuthorizationType: aws.String("NONE"), RequestParameters: map[string]bool{"method.request.path.proxy": true}}); err != nil {
		t.Fatalf("PutMethod ANY: %v", err)
	}
	if _, err := agw.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: greedy.Id, HttpMethod: aws.String("ANY"),
		Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: aws.String("http://${stageVariables.host}/open/{proxy}"),
		RequestParameters: map[string]string{"integration.request.path.proxy": "method.request.path.proxy"}}); err != nil {
		t.Fatalf("PutIntegration ANY: %v", err)
	}
	if _, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"host": host}}); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	plan, err := agw.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("basic"),
		ApiStages: []types.ApiStage{{ApiId: api.Id, Stage: aws.String("prod")}},
		Throttle:  &types.ThrottleSettings{RateLimit: 1000, BurstLimit: 1000},
		Quota:     &types.QuotaSettings{Limit: 5, Period: types.QuotaPeriodTypeDay}})
	if err != nil {
		t.Fatalf("CreateUsagePlan: %v", err)
	}
	key, err := agw.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("customer"), Enabled: true})
	if err != nil {
		t.Fatalf("CreateApiKey: %v", err)
	}
	if _, err := agw.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{UsagePlanId: plan.Id, KeyId: key.Id, KeyType: aws.String("API_KEY")}); err != nil {
		t.Fatalf("CreateUsagePlanKey: %v", err)
	}
	base := "/" + aws.ToString(api.Id) + "/prod"
	value := aws.ToString(key.Value)

	// GET /pets requires a key; the greedy ANY does not.
	if code, body, _ := dataCall(t, g, "GET", base+"/pets", ""); code != 403 || body != `{"message":"Forbidden"}` {
		t.Fatalf("GET /pets without a key: %d %s", code, body)
	}
	for i := range 5 {
		if code, body, seen := dataCall(t, g, "GET", base+"/pets", value); code != 200 || seen != "/pets" {
			t.Fatalf("keyed request %d: %d %s (upstream saw %q)", i, code, body, seen)
		}
	}
	if code, body, _ := dataCall(t, g, "GET", base+"/pets", value); code != 429 || body != `{"message":"Limit Exceeded"}` {
		t.Fatalf("request over the quota: %d %s", code, body)
	}
	// POST /pets has no method of its own: the greedy ANY serves it,
	// without a key and unmetered.
	for _, c := range []struct{ method, path, want string }{{"POST", "/pets", "/open/pets"}, {"GET", "/toys/1", "/open/toys/1"}} {
		if code, body, seen := dataCall(t, g, c.method, base+c.path, ""); code != 200 || seen != c.want {
			t.Fatalf("%s %s: %d %s (upstream saw %q)", c.method, c.path, code, body, seen)
		}
	}
	// The root has no method and the greedy resource does not match it.
	if code, body, _ := dataCall(t, g, "GET", base+"/", value); code != 403 || body != `{"message":"Missing Authentication Token"}` {
		t.Fatalf("GET /: %d %s", code, body)
	}

	// Usage: the five keyed requests, nothing of the unmetered ones.
	today := time.Now().UTC().Format("2006-01-02")
	eventually(t, 20*time.Second, "GetUsage to show 5 used", func() bool {
		u, err := agw.GetUsage(ctx, &apigateway.GetUsageInput{UsagePlanId: plan.Id, StartDate: aws.String(today), EndDate: aws.String(today)})
		if err != nil {
			t.Fatalf("GetUsage: %v", err)
		}
		days := u.Items[aws.ToString(key.Id)]
		return len(days) == 1 && days[0][0] == 5 && days[0][1] == 0
	})
	// Extension: two more requests today.
	if _, err := agw.UpdateUsage(ctx, &apigateway.UpdateUsageInput{UsagePlanId: plan.Id, KeyId: key.Id,
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/remaining"), Value: aws.String("2")}}}); err != nil {
		t.Fatalf("UpdateUsage: %v", err)
	}
	// The node learns of the extension within about a second: until then
	// it still answers Limit Exceeded.
	admitted := 0
	deadline := time.Now().Add(10 * time.Second)
	for admitted < 2 && time.Now().Before(deadline) {
		if code, _, _ := dataCall(t, g, "GET", base+"/pets", value); code == 200 {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("after an extension of 2, %d requests got through within 10s", admitted)
	}
	if code, body, _ := dataCall(t, g, "GET", base+"/pets", value); code != 429 {
		t.Fatalf("request beyond the extension: %d %s", code, body)
	}

	// A redeploy switches routes: GET /pets stops requiring a key.
	if _, err := agw.UpdateMethod(ctx, &apigateway.UpdateMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/apiKeyRequired"), Value: aws.String("false")}}}); err != nil {
		t.Fatalf("UpdateMethod: %v", err)
	}
	if code, _, _ := dataCall(t, g, "GET", base+"/pets", ""); code != 403 {
		t.Fatalf("an undeployed change took effect: %d", code)
	}
	if _, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod")}); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	if code, body, seen := dataCall(t, g, "GET", base+"/pets", ""); code != 200 || seen != "/pets" {
		t.Fatalf("after the redeploy, GET /pets without a key: %d %s", code, body)
	}

	// Export, import as a second API, deploy: it serves the same routes.
	exp, err := agw.GetExport(ctx, &apigateway.GetExportInput{RestApiId: api.Id, StageName: aws.String("prod"), ExportType: aws.String("oas30"),
		Parameters: map[string]string{"extensions": "integrations"}, Accepts: aws.String("application/yaml")})
	if err != nil {
		t.Fatalf("GetExport: %v", err)
	}
	api2, err := agw.ImportRestApi(ctx, &apigateway.ImportRestApiInput{Body: exp.Body, FailOnWarnings: true})
	if err != nil {
		t.Fatalf("ImportRestApi: %v\n%s", err, exp.Body)
	}
	if _, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api2.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"host": host}}); err != nil {
		t.Fatalf("CreateDeployment of the import: %v", err)
	}
	base2 := "/" + aws.ToString(api2.Id) + "/prod"
	for _, c := range []struct{ method, path, want string }{{"GET", "/pets", "/pets"}, {"PUT", "/a/b", "/open/a/b"}} {
		if code, body, seen := dataCall(t, g, c.method, base2+c.path, ""); code != 200 || seen != c.want {
			t.Fatalf("imported API, %s %s: %d %s (upstream saw %q)", c.method, c.path, code, body, seen)
		}
	}
}
