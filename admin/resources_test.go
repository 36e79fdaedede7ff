package admin

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/smithy-go"
	"sigs.k8s.io/yaml"
)

func wantAPIError(t *testing.T, err error, code, msgPrefix string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.HasPrefix(ae.ErrorMessage(), msgPrefix) {
		t.Fatalf("error %v; want %s %q", err, code, msgPrefix)
	}
}

// TestSDKResourcesMethodsIntegrations: the resource model through the AWS
// SDK: the root resource, children, a greedy resource, methods with
// apiKeyRequired, integrations, updates, the original's errors, deletes.
func TestSDKResourcesMethodsIntegrations(t *testing.T) {
	e := newEnv(t)
	agw := sdkClient(t, e)
	ctx := t.Context()
	api, err := agw.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("pets")})
	if err != nil || aws.ToString(api.RootResourceId) == "" {
		t.Fatalf("CreateRestApi: %+v %v", api, err)
	}
	res, err := agw.GetResources(ctx, &apigateway.GetResourcesInput{RestApiId: api.Id})
	if err != nil || len(res.Items) != 1 || aws.ToString(res.Items[0].Path) != "/" || aws.ToString(res.Items[0].Id) != aws.ToString(api.RootResourceId) {
		t.Fatalf("GetResources of a new API: %+v %v", res, err)
	}
	pets, err := agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("pets")})
	if err != nil || aws.ToString(pets.Path) != "/pets" || aws.ToString(pets.ParentId) != aws.ToString(api.RootResourceId) {
		t.Fatalf("CreateResource: %+v %v", pets, err)
	}
	_, err = agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("pets")})
	wantAPIError(t, err, "ConflictException", "Another resource with the same parent already has this name: pets")
	_, err = agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("a b")})
	wantAPIError(t, err, "BadRequestException", "Resource's path part only allow")
	_, err = agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: aws.String("nope"), PathPart: aws.String("x")})
	wantAPIError(t, err, "NotFoundException", "Invalid Resource identifier specified")
	id, err := agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: pets.Id, PathPart: aws.String("{id}")})
	if err != nil || aws.ToString(id.Path) != "/pets/{id}" {
		t.Fatalf("CreateResource {id}: %+v %v", id, err)
	}
	_, err = agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: pets.Id, PathPart: aws.String("{name}")})
	wantAPIError(t, err, "BadRequestException", "A sibling ({id}) of this resource already has a variable path part -- only one is allowed")
	greedy, err := agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("{proxy+}")})
	if err != nil || aws.ToString(greedy.Path) != "/{proxy+}" {
		t.Fatalf("CreateResource {proxy+}: %+v %v", greedy, err)
	}
	_, err = agw.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: greedy.Id, PathPart: aws.String("x")})
	wantAPIError(t, err, "BadRequestException", "A greedy path parameter resource")

	m, err := agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		AuthorizationType: aws.String("NONE"), ApiKeyRequired: true})
	if err != nil || !aws.ToBool(m.ApiKeyRequired) || aws.ToString(m.HttpMethod) != "GET" {
		t.Fatalf("PutMethod: %+v %v", m, err)
	}
	_, err = agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE")})
	wantAPIError(t, err, "ConflictException", "Method already exists for this resource")
	_, err = agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("POST"),
		AuthorizationType: aws.String("CUSTOM"), AuthorizerId: aws.String("abc123")})
	wantAPIError(t, err, "BadRequestException", "Authorizers, request models and request validators are not supported")
	_, err = agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("POST"), AuthorizationType: aws.String("AWS_IAM")})
	wantAPIError(t, err, "BadRequestException", "authorizationType AWS_IAM is not supported")
	_, err = agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("FETCH"), AuthorizationType: aws.String("NONE")})
	wantAPIError(t, err, "BadRequestException", "Invalid HttpMethod specified")
	_, err = agw.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: greedy.Id, HttpMethod: aws.String("ANY"), AuthorizationType: aws.String("NONE"),
		RequestParameters: map[string]bool{"method.request.path.proxy": true}})
	if err != nil {
		t.Fatalf("PutMethod ANY: %v", err)
	}
	_, err = agw.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeAws, IntegrationHttpMethod: aws.String("GET"), Uri: aws.String("arn:aws:apigateway:x")})
	wantAPIError(t, err, "BadRequestException", "Invalid integration type AWS")
	_, err = agw.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeMock})
	wantAPIError(t, err, "BadRequestException", "Invalid integration type MOCK")
	in, err := agw.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: greedy.Id, HttpMethod: aws.String("ANY"),
		Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: aws.String("http://${stageVariables.url}/{proxy}"),
		RequestParameters: map[string]string{"integration.request.path.proxy": "method.request.path.proxy"}})
	if err != nil || in.Type != types.IntegrationTypeHttpProxy || in.TimeoutInMillis != 29000 || aws.ToString(in.PassthroughBehavior) != "WHEN_NO_MATCH" {
		t.Fatalf("PutIntegration: %+v %v", in, err)
	}
	_, err = agw.GetIntegration(ctx, &apigateway.GetIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET")})
	wantAPIError(t, err, "NotFoundException", "No integration defined for method")
	_, err = agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod")})
	wantAPIError(t, err, "BadRequestException", "No integration defined for method")
	if _, err := agw.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeHttp, IntegrationHttpMethod: aws.String("GET"), Uri: aws.String("https://backend.example.com/pets")}); err != nil {
		t.Fatalf("PutIntegration HTTP: %v", err)
	}
	um, err := agw.UpdateMethod(ctx, &apigateway.UpdateMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/apiKeyRequired"), Value: aws.String("false")}}})
	if err != nil || aws.ToBool(um.ApiKeyRequired) || um.MethodIntegration == nil {
		t.Fatalf("UpdateMethod: %+v %v", um, err)
	}
	ui, err := agw.UpdateIntegration(ctx, &apigateway.UpdateIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/uri"), Value: aws.String("https://b2.example.com/pets")}}})
	if err != nil || aws.ToString(ui.Uri) != "https://b2.example.com/pets" {
		t.Fatalf("UpdateIntegration: %+v %v", ui, err)
	}
	_, err = agw.UpdateIntegration(ctx, &apigateway.UpdateIntegrationInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET"),
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/uri"), Value: aws.String("ftp://x")}}})
	wantAPIError(t, err, "BadRequestException", "Invalid HTTP endpoint specified for URI")
	gm, err := agw.GetMethod(ctx, &apigateway.GetMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET")})
	if err != nil || aws.ToString(gm.MethodIntegration.Uri) != "https://b2.example.com/pets" {
		t.Fatalf("GetMethod: %+v %v", gm, err)
	}
	ur, err := agw.UpdateResource(ctx, &apigateway.UpdateResourceInput{RestApiId: api.Id, ResourceId: pets.Id,
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/pathPart"), Value: aws.String("animals")}}})
	if err != nil || aws.ToString(ur.Path) != "/animals" {
		t.Fatalf("UpdateResource: %+v %v", ur, err)
	}
	got, err := agw.GetResource(ctx, &apigateway.GetResourceInput{RestApiId: api.Id, ResourceId: id.Id})
	if err != nil || aws.ToString(got.Path) != "/animals/{id}" {
		t.Fatalf("GetResource after moving its parent: %+v %v", got, err)
	}
	dep, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod")})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	if e.store.Config().GetDeploymentResources()[aws.ToString(api.Id)+"/"+aws.ToString(dep.Id)] == nil {
		t.Fatal("the deployment holds no snapshot of the resources")
	}
	if _, err := agw.DeleteMethod(ctx, &apigateway.DeleteMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET")}); err != nil {
		t.Fatalf("DeleteMethod: %v", err)
	}
	_, err = agw.GetMethod(ctx, &apigateway.GetMethodInput{RestApiId: api.Id, ResourceId: pets.Id, HttpMethod: aws.String("GET")})
	wantAPIError(t, err, "NotFoundException", "Invalid Method identifier specified")
	if _, err := agw.DeleteResource(ctx, &apigateway.DeleteResourceInput{RestApiId: api.Id, ResourceId: pets.Id}); err != nil {
		t.Fatalf("DeleteResource: %v", err)
	}
	_, err = agw.GetResource(ctx, &apigateway.GetResourceInput{RestApiId: api.Id, ResourceId: id.Id})
	wantAPIError(t, err, "NotFoundException", "Invalid Resource identifier specified")
	_, err = agw.DeleteResource(ctx, &apigateway.DeleteResourceInput{RestApiId: api.Id, ResourceId: api.RootResourceId})
	wantAPIError(t, err, "BadRequestException", "Cannot delete the root resource")
	// The deployment's snapshot is unchanged by edits after it.
	snap := e.store.Config().GetDeploymentResources()[aws.ToString(api.Id)+"/"+aws.ToString(dep.Id)]
	if snap.GetResources()[aws.ToString(pets.Id)] == nil {
		t.Fatal("deleting a resource changed a deployment's snapshot")
	}
}

// petstore is an OpenAPI 3 document as the original exports one with
// extensions=integrations.
const petstore = `{
  "openapi": "3.0.1",
  "info": {"title": "PetStore", "description": "pets", "version": "1.0"},
  "x-amazon-apigateway-api-key-source": "HEADER",
  "paths": {
    "/pets": {
      "get": {
        "operationId": "listPets",
        "parameters": [{"name": "type", "in": "query", "schema": {"type": "string"}}],
        "security": [{"api_key": []}],
        "responses": {"200": {"description": "ok"}},
        "x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "GET", "uri": "http://${stageVariables.url}/pets",
          "passthroughBehavior": "when_no_match", "timeoutInMillis": 29000, "connectionType": "INTERNET"}
      },
      "post": {
        "responses": {"200": {"description": "ok"}},
        "x-amazon-apigateway-integration": {"type": "http", "httpMethod": "POST", "uri": "http://${stageVariables.url}/pets"}
      }
    },
    "/pets/{petId}": {
      "get": {
        "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "string"}}],
        "security": [{"api_key": []}],
        "responses": {"200": {"description": "ok"}},
        "x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "GET", "uri": "http://${stageVariables.url}/pets/{id}",
          "requestParameters": {"integration.request.path.id": "method.request.path.petId"}}
      }
    },
    "/{proxy+}": {
      "x-amazon-apigateway-any-method": {
        "parameters": [{"name": "proxy", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {},
        "x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "ANY", "uri": "http://${stageVariables.url}/{proxy}",
          "requestParameters": {"integration.request.path.proxy": "method.request.path.proxy"}}
      }
    }
  },
  "components": {"securitySchemes": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}}
}`

// comparable reduces a document to what the import reads: path → method
// → (operationId, key required, parameters, integration).
func comparableDoc(t *testing.T, raw []byte) map[string]map[string]any {
	t.Helper()
	_, paths, warnings, e := parseOpenAPI(raw)
	if e != nil || len(warnings) > 0 {
		t.Fatalf("parse: %v %v", e, warnings)
	}
	out := map[string]map[string]any{}
	for p, ms := range paths {
		out[p] = map[string]any{}
		for verb, m := range ms {
			in := m.GetIntegration()
			if in != nil {
				integrationDefaults(in, "")
			}
			out[p][verb] = []any{m.GetOperationName(), m.GetApiKeyRequired(), m.GetRequestParameters(),
				in.GetType(), in.GetHttpMethod(), in.GetUri(), in.GetRequestParameters(), in.GetTimeoutInMillis(), in.GetPassthroughBehavior()}
		}
	}
	return out
}

// TestSDKOpenAPIRoundTrip: ImportRestApi, deploy, GetExport (OpenAPI 3
// JSON and YAML, Swagger 2), and the export imports back to the same API.
func TestSDKOpenAPIRoundTrip(t *testing.T) {
	e := newEnv(t)
	agw := sdkClient(t, e)
	ctx := t.Context()
	api, err := agw.ImportRestApi(ctx, &apigateway.ImportRestApiInput{Body: []byte(petstore), FailOnWarnings: true})
	if err != nil || aws.ToString(api.Name) != "PetStore" || aws.ToString(api.Version) != "1.0" || api.ApiKeySource != types.ApiKeySourceTypeHeader {
		t.Fatalf("ImportRestApi: %+v %v", api, err)
	}
	res, err := agw.GetResources(ctx, &apigateway.GetResourcesInput{RestApiId: api.Id, Embed: []string{"methods"}})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range res.Items {
		paths = append(paths, aws.ToString(r.Path))
		if aws.ToString(r.Path) == "/pets" && !aws.ToBool(r.ResourceMethods["GET"].ApiKeyRequired) {
			t.Error("GET /pets does not require a key")
		}
		if aws.ToString(r.Path) == "/pets" && aws.ToBool(r.ResourceMethods["POST"].ApiKeyRequired) {
			t.Error("POST /pets requires a key")
		}
	}
	slices.Sort(paths)
	if want := []string{"/", "/pets", "/pets/{petId}", "/{proxy+}"}; !slices.Equal(paths, want) {
		t.Fatalf("paths %v; want %v", paths, want)
	}
	if _, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"url": "https://backend.example.com"}}); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	want := comparableDoc(t, []byte(petstore))
	for _, c := range []struct{ kind, accept string }{{"oas30", "application/json"}, {"oas30", "application/yaml"}, {"swagger", "application/json"}} {
		out, err := agw.GetExport(ctx, &apigateway.GetExportInput{RestApiId: api.Id, StageName: aws.String("prod"), ExportType: aws.String(c.kind),
			Accepts: aws.String(c.accept), Parameters: map[string]string{"extensions": "integrations"}})
		if err != nil {
			t.Fatalf("GetExport %s %s: %v", c.kind, c.accept, err)
		}
		if got := comparableDoc(t, out.Body); !reflect.DeepEqual(got, want) {
			t.Errorf("export %s %s reads as\n%v\nwant\n%v", c.kind, c.accept, got, want)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(out.Body, &probe); err != nil || (c.kind == "swagger") != (probe["swagger"] == "2.0") {
			t.Errorf("export %s: %v %v", c.kind, err, probe["swagger"])
		}
		again, err := agw.ImportRestApi(ctx, &apigateway.ImportRestApiInput{Body: out.Body, FailOnWarnings: true})
		if err != nil || aws.ToString(again.Name) != "PetStore" {
			t.Fatalf("ImportRestApi of the export: %+v %v", again, err)
		}
	}
	// PutRestApi overwrite replaces the paths; merge keeps the others.
	small := `openapi: "3.0.1"
info: {title: PetStore2}
paths:
  /toys:
    get:
      x-amazon-apigateway-integration: {type: http_proxy, httpMethod: GET, uri: "https://toys.example.com/"}
`
	if _, err := agw.PutRestApi(ctx, &apigateway.PutRestApiInput{RestApiId: api.Id, Body: []byte(small), Mode: types.PutModeMerge}); err != nil {
		t.Fatalf("PutRestApi merge: %v", err)
	}
	res, _ = agw.GetResources(ctx, &apigateway.GetResourcesInput{RestApiId: api.Id})
	if len(res.Items) != 5 {
		t.Errorf("after merge: %d resources; want 5", len(res.Items))
	}
	upd, err := agw.PutRestApi(ctx, &apigateway.PutRestApiInput{RestApiId: api.Id, Body: []byte(small), Mode: types.PutModeOverwrite})
	if err != nil || aws.ToString(upd.Name) != "PetStore2" {
		t.Fatalf("PutRestApi overwrite: %+v %v", upd, err)
	}
	res, _ = agw.GetResources(ctx, &apigateway.GetResourcesInput{RestApiId: api.Id})
	if len(res.Items) != 2 {
		t.Errorf("after overwrite: %d resources; want 2", len(res.Items))
	}
}

// TestOpenAPIImportRefusals: bad documents get a 400 and change nothing.
func TestOpenAPIImportRefusals(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, doc, msg string }{
		{"not a document", `{"hello": 1}`, "Invalid OpenAPI input: the document is neither*"},
		{"malformed", `{"openapi": "3.0.1", "paths": [`, "Invalid OpenAPI input*"},
		{"no title", `{"openapi": "3.0.1", "info": {}, "paths": {}}`, "Invalid OpenAPI input: info.title*"},
		{"bad path", `{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a b": {}}}`, "Invalid OpenAPI input: path*"},
		{"relative path", `{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"pets": {}}}`, "Invalid OpenAPI input: path*"},
		{"two variables", `{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/{a}": {}, "/{b}": {}}}`, "Invalid OpenAPI input: A sibling*"},
		{"authorizer source", `{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {}, "x-amazon-apigateway-api-key-source": "AUTHORIZER"}`, "x-amazon-apigateway-api-key-source*"},
		{"lambda, failing on warnings", `{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": "arn:x"}}}}}`, "Errors found during import*"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.store.Config()
			r := e.do("POST", "/restapis?mode=import&failonwarnings=true", c.doc, "Content-Type", "application/json")
			wantError(t, r, 400, "BadRequestException", c.msg)
			if e.store.Config() != before {
				t.Error("a refused import changed the configuration")
			}
		})
	}
	// Without failonwarnings, an operation that cannot be served is left
	// out and named in warnings.
	r := e.do("POST", "/restapis?mode=import", `{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": "arn:x"}}}}}`,
		"Content-Type", "application/json")
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var body struct{ Warnings []string }
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Warnings) != 1 || !strings.Contains(body.Warnings[0], "GET /a") {
		t.Errorf("warnings %v %v", body.Warnings, err)
	}
}
