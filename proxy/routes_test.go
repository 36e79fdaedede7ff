package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// petsTree is a deployment's resources: / (GET, no key), /pets (GET with
// a key, ANY without), /pets/{id} (GET, a key), /pets/mine (GET, no key),
// /{proxy+} (ANY, a key), each forwarding to the stage variable url.
func petsTree(apiID string) *tollgatepb.ResourceTree {
	root := rules.RootResourceID(apiID)
	proxyIn := func(path string, params map[string]string) *tollgatepb.Integration {
		return &tollgatepb.Integration{Type: "HTTP_PROXY", HttpMethod: "ANY", Uri: "${stageVariables.url}" + path, RequestParameters: params}
	}
	meth := func(verb string, key bool, in *tollgatepb.Integration) *tollgatepb.Method {
		return &tollgatepb.Method{HttpMethod: verb, AuthorizationType: "NONE", ApiKeyRequired: key, Integration: in}
	}
	return &tollgatepb.ResourceTree{Resources: map[string]*tollgatepb.Resource{
		root: {Id: root, Methods: map[string]*tollgatepb.Method{"GET": meth("GET", false, proxyIn("/home", nil))}},
		"pets": {Id: "pets", ParentId: root, PathPart: "pets", Methods: map[string]*tollgatepb.Method{
			"GET": meth("GET", true, proxyIn("/pets", nil)),
			"ANY": meth("ANY", false, proxyIn("/pets-any", nil)),
		}},
		"petid": {Id: "petid", ParentId: "pets", PathPart: "{id}", Methods: map[string]*tollgatepb.Method{
			"GET": meth("GET", true, proxyIn("/animals/{petId}", map[string]string{"integration.request.path.petId": "method.request.path.id"})),
		}},
		"mine": {Id: "mine", ParentId: "pets", PathPart: "mine", Methods: map[string]*tollgatepb.Method{
			"GET": meth("GET", false, proxyIn("/my-pets", nil)),
		}},
		"greedy": {Id: "greedy", ParentId: root, PathPart: "{proxy+}", Methods: map[string]*tollgatepb.Method{
			"ANY": meth("ANY", true, proxyIn("/rest/{proxy}", nil)),
		}},
	}}
}

func withPets(c *tollgatepb.Config) {
	c.Deployments = map[string]*tollgatepb.Deployment{"api1/d1": {Id: "d1", RestApiId: "api1"}}
	c.DeploymentResources = map[string]*tollgatepb.ResourceTree{"api1/d1": petsTree("api1")}
	c.Stages["api1/prod"].DeploymentId = "d1"
	if err := rules.Tree("api1", petsTree("api1")); err != nil {
		panic(err)
	}
}

func TestRoutesPrecedenceAndPerMethodKeys(t *testing.T) {
	h := newHarness(t, withPets)
	for _, c := range []struct {
		method, path, key string
		wantPath          string // "" = refused
		status            int
		errType, message  string
	}{
		{method: "GET", path: "/api1/prod", wantPath: "/base/home"},
		{method: "GET", path: "/api1/prod/", wantPath: "/base/home"},
		{method: "GET", path: "/api1/prod/pets", key: valOne, wantPath: "/base/pets"},
		{method: "GET", path: "/api1/prod/pets", status: 403, errType: "ForbiddenException", message: "Forbidden"},
		{method: "POST", path: "/api1/prod/pets", wantPath: "/base/pets-any"},
		{method: "GET", path: "/api1/prod/pets/mine", wantPath: "/base/my-pets"},
		{method: "GET", path: "/api1/prod/pets/42", key: valOne, wantPath: "/base/animals/42"},
		{method: "GET", path: "/api1/prod/pets/42", status: 403, errType: "ForbiddenException", message: "Forbidden"},
		// /pets/{id} has no DELETE and no ANY: the greedy resource takes it.
		{method: "DELETE", path: "/api1/prod/pets/42", key: valOne, wantPath: "/base/rest/pets/42"},
		{method: "PUT", path: "/api1/prod/a/b%20c/d", key: valOne, wantPath: "/base/rest/a/b%20c/d"},
		{method: "PUT", path: "/api1/prod/a/b", status: 403, errType: "ForbiddenException", message: "Forbidden"},
		// The root has GET only, and the greedy resource does not match "/".
		{method: "POST", path: "/api1/prod/", status: 403, errType: "MissingAuthenticationTokenException", message: "Missing Authentication Token"},
	} {
		t.Run(c.method+" "+c.path+" "+c.key, func(t *testing.T) {
			w := h.do(c.method, c.path, c.key)
			if c.wantPath == "" {
				expectAnswer(t, w, c.status, c.errType, c.message)
				return
			}
			s := seenBy(t, w)
			if s.Escaped != c.wantPath || s.Method != c.method {
				t.Errorf("upstream saw %s %s; want %s %s", s.Method, s.Escaped, c.method, c.wantPath)
			}
		})
	}
}

func TestRoutesNoRouteWithoutGreedy(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		withPets(c)
		delete(c.DeploymentResources["api1/d1"].Resources, "greedy")
	})
	for _, target := range []string{"/api1/prod/nowhere", "/api1/prod/pets/1/2"} {
		expectAnswer(t, h.do("GET", target, valOne), 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	expectAnswer(t, h.do("DELETE", "/api1/prod/pets/1", valOne), 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
	// A stage whose deployment has no resources keeps the stage-wide url.
	if s := seenBy(t, h.do("GET", "/api2/prod/anything", valOne)); s.Escaped != "/two/anything" {
		t.Errorf("api2 forwarded to %s", s.Escaped)
	}
}

func TestRoutesIntegrationMethodAndQuery(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		withPets(c)
		in := c.DeploymentResources["api1/d1"].Resources["mine"].Methods["GET"].Integration
		in.HttpMethod = "POST"
		in.Uri = "${stageVariables.url}/my-pets?owner=me"
	})
	s := seenBy(t, h.do("GET", "/api1/prod/pets/mine?x=1", ""))
	if s.Method != "POST" || s.Escaped != "/base/my-pets" || s.Query != "owner=me&x=1" {
		t.Errorf("upstream saw %s %s ?%s", s.Method, s.Escaped, s.Query)
	}
}

func TestRoutesRedeploySwitchesAtomically(t *testing.T) {
	h := newHarness(t, withPets)
	if s := seenBy(t, h.do("GET", "/api1/prod/pets/mine", "")); s.Escaped != "/base/my-pets" {
		t.Fatalf("forwarded to %s", s.Escaped)
	}
	h.update(func(c *tollgatepb.Config) {
		next := petsTree("api1")
		next.Resources["mine"].Methods["GET"].Integration.Uri = "${stageVariables.url}/v2/mine"
		c.Deployments["api1/d2"] = &tollgatepb.Deployment{Id: "d2", RestApiId: "api1"}
		c.DeploymentResources["api1/d2"] = next
		c.Stages["api1/prod"].DeploymentId = "d2"
	})
	if s := seenBy(t, h.do("GET", "/api1/prod/pets/mine", "")); s.Escaped != "/base/v2/mine" {
		t.Fatalf("after the redeploy, forwarded to %s", s.Escaped)
	}
}

func TestRoutesStageMethodSettingsUseResourcePath(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		withPets(c)
		zero := 0.0
		var zb int32
		c.Stages["api1/prod"].MethodSettings = map[string]*tollgatepb.MethodSetting{
			"/pets/{id}/GET": {ThrottlingRateLimit: &zero, ThrottlingBurstLimit: &zb},
		}
	})
	w := h.do("GET", "/api1/prod/pets/7", valOne)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d; want 429 from the setting of /pets/{id}/GET", w.Code)
	}
	if s := seenBy(t, h.do("GET", "/api1/prod/pets/mine", "")); !strings.HasSuffix(s.Escaped, "/my-pets") {
		t.Errorf("forwarded to %s", s.Escaped)
	}
}

func TestRoutesBadIntegrationAnswers500(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		withPets(c)
		c.DeploymentResources["api1/d1"].Resources["mine"].Methods["GET"].Integration.Uri = "http://${stageVariables.missing}/x"
	})
	expectAnswer(t, h.do("GET", "/api1/prod/pets/mine", ""), 500, "InternalServerErrorException", "Internal server error")
}

// BenchmarkDecideRoutes measures the decision path of a stage with
// resources: exact, path-parameter and greedy matches.
func BenchmarkDecideRoutes(b *testing.B) {
	src := &fakeSource{}
	cfg := benchConfig("http://upstream.invalid")
	withPets(cfg)
	cfg.Stages["api1/prod"].MethodSettings["/pets/{id}/GET"] = cfg.Stages["api1/prod"].MethodSettings["/pets/GET"]
	src.Set(cfg)
	p, err := New(Config{Source: src, Ledger: benchLedger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	for _, c := range []struct{ name, method, target, key string }{
		{"exact-keyed", "GET", "/api1/prod/pets", benchKey(7)},
		{"param-keyed", "GET", "/api1/prod/pets/42", benchKey(7)},
		{"greedy-keyed", "DELETE", "/api1/prod/a/b/c", benchKey(7)},
		{"exact-keyless", "GET", "/api1/prod/pets/mine", ""},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.key != "" {
			r.Header.Set("X-Api-Key", c.key)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ex := &exchange{}
			for b.Loop() {
				*ex = exchange{}
				ex.now = p.clock.Now()
				ex.mono = int64(ex.now.Sub(p.epoch))
				if a := p.decide(ex, p.current(), r); a != nil {
					b.Fatalf("answer %d: %s", a.status, ex.reason)
				}
			}
		})
	}
}

func TestRoutesPlanMethodThrottleUsesResourcePath(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		withPets(c)
		c.UsagePlans["p1"].ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/{id}/GET": {RateLimit: 0.001, BurstLimit: 1}}
	})
	seenBy(t, h.do("GET", "/api1/prod/pets/1", valOne))
	expectAnswer(t, h.do("GET", "/api1/prod/pets/2", valOne), 429, "TooManyRequestsException", "Too Many Requests")
	// Another resource of the same stage is not under that throttle.
	seenBy(t, h.do("GET", "/api1/prod/pets", valOne))
}
