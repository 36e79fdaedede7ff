package admin

import (
	"encoding/json"
	"testing"

	"github.com/tollgate/tollgate/rules"
)

// FuzzImportOpenAPI: any document, JSON, YAML or neither, imported with
// or without failonwarnings, is answered 201 with an API whose tree
// passes the rules, or 4xx with the configuration unchanged; never a
// panic or a 5xx.
func FuzzImportOpenAPI(f *testing.F) {
	for _, s := range []string{
		petstore,
		`{"swagger": "2.0", "info": {"title": "t"}, "paths": {"/a/{b}": {"get": {"security": [{"k": []}]}}}, "securityDefinitions": {"k": {"type": "apiKey", "name": "x-api-key", "in": "header"}}}`,
		"openapi: 3.0.1\ninfo: {title: y}\npaths:\n  /x/{proxy+}:\n    x-amazon-apigateway-any-method:\n      x-amazon-apigateway-integration: {type: http_proxy, httpMethod: ANY, uri: 'http://${stageVariables.url}/{proxy}'}\n",
		"openapi: 3.0.1\ninfo: {title: y}\npaths:\n  /a: &a {get: {}}\n  /b: *a\n",
		`{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/{a}": {}, "/{b}": {}}}`,
		`{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "aws", "uri": "arn:x"}}}}}`,
		`{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "http", "uri": "http://{x}/"}}}}}`,
		`{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a": {"get": {"parameters": [{"name": "", "in": "path"}]}}}}`,
		`{"openapi": "3.0.1", "info": {"title": "x"}, "paths": {"/a/": {}, "/a": {}}}`,
		`{"openapi": 3, "paths": 1}`, `[]`, `null`, "", "\xff\xfe", "a: [", "{{{{",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, failOnWarnings bool) {
		e := fuzzEnv(t)
		before := e.store.Config()
		url := "/restapis?mode=import"
		if failOnWarnings {
			url += "&failonwarnings=true"
		}
		r := e.do("POST", url, data, "Content-Type", "application/yaml")
		switch {
		case r.code >= 400 && r.code <= 499:
			if e.store.Config() != before {
				t.Fatalf("import refused (%d %s) but the configuration changed", r.code, r.body)
			}
		case r.code == 201:
			var out importView
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatalf("import answer %s: %v", r.body, err)
			}
			if failOnWarnings && len(out.Warnings) > 0 {
				t.Fatalf("import with failonwarnings answered 201 with warnings %v", out.Warnings)
			}
			cfg := e.store.Config()
			tree := cfg.GetResources()[out.ID]
			if cfg.GetRestApis()[out.ID] == nil || tree == nil {
				t.Fatalf("import answered API %s, which has no tree", out.ID)
			}
			if err := rules.Tree(out.ID, tree); err != nil {
				t.Fatalf("imported a tree the rules refuse: %v", err)
			}
			checkFuzzConfig(t, e, cfg)
		default:
			t.Fatalf("import of %q: status %d %s", data, r.code, r.body)
		}
	})
}
