package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// OpenAPI import (ImportRestApi, PutRestApi) and export (GetExport).
// A document is OpenAPI 3 or Swagger 2, JSON or YAML. What is read: the
// info (title, description, version), each path's operations (get, put,
// post, delete, options, head, patch and x-amazon-apigateway-any-method)
// with their operationId, parameters (path, query, header: the method's
// request parameters), security (an apiKey scheme in the header
// x-api-key makes the method require a key; a document-wide security
// applies to operations without their own) and
// x-amazon-apigateway-integration (types http and http_proxy), and
// x-amazon-apigateway-api-key-source. Everything else is ignored.

// oasDoc is the part of a document the import reads.
type oasDoc struct {
	OpenAPI             string                                `json:"openapi"`
	Swagger             string                                `json:"swagger"`
	Info                oasInfo                               `json:"info"`
	Paths               map[string]map[string]json.RawMessage `json:"paths"`
	Security            []map[string][]string                 `json:"security"`
	SecurityDefinitions map[string]oasScheme                  `json:"securityDefinitions"`
	Components          struct {
		SecuritySchemes map[string]oasScheme `json:"securitySchemes"`
	} `json:"components"`
	APIKeySource string `json:"x-amazon-apigateway-api-key-source"`
}

type oasInfo struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version,omitempty"`
}

type oasScheme struct {
	Type string `json:"type"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type oasOperation struct {
	OperationID string                 `json:"operationId"`
	Parameters  []oasParameter         `json:"parameters"`
	Security    *[]map[string][]string `json:"security"`
	Integration *oasIntegration        `json:"x-amazon-apigateway-integration"`
}

type oasParameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oasIntegration struct {
	Type                string            `json:"type"`
	HTTPMethod          string            `json:"httpMethod,omitempty"`
	URI                 string            `json:"uri,omitempty"`
	RequestParameters   map[string]string `json:"requestParameters,omitempty"`
	RequestTemplates    map[string]string `json:"requestTemplates,omitempty"`
	PassthroughBehavior string            `json:"passthroughBehavior,omitempty"`
	TimeoutInMillis     int32             `json:"timeoutInMillis,omitempty"`
	ConnectionType      string            `json:"connectionType,omitempty"`
	CacheNamespace      string            `json:"cacheNamespace,omitempty"`
	CacheKeyParameters  []string          `json:"cacheKeyParameters,omitempty"`
}

// oasVerbs maps a path item's operation keys to methods.
var oasVerbs = map[string]string{
	"get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE", "options": "OPTIONS",
	"head": "HEAD", "patch": "PATCH", "x-amazon-apigateway-any-method": "ANY",
}

// parseOpenAPI reads a document (JSON or YAML) into the API's fields and
// resource paths: path → method. Operations the import cannot serve are
// left out with a warning.
func parseOpenAPI(body []byte) (*oasDoc, map[string]map[string]*pb.Method, []string, *apiError) {
	js, err := yaml.YAMLToJSON(body) // JSON is YAML: this reads both
	if err != nil {
		return nil, nil, nil, badRequest("Invalid OpenAPI input: %s", truncate(err.Error()))
	}
	var doc oasDoc
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, nil, nil, badRequest("Invalid OpenAPI input: %s", truncate(err.Error()))
	}
	switch {
	case strings.HasPrefix(doc.OpenAPI, "3."):
	case doc.Swagger == "2.0":
		doc.Components.SecuritySchemes = doc.SecurityDefinitions
	default:
		return nil, nil, nil, badRequest("Invalid OpenAPI input: the document is neither OpenAPI 3 (openapi: 3.x) nor Swagger 2 (swagger: \"2.0\")")
	}
	if len(doc.Paths) > rules.MaxResources {
		return nil, nil, nil, badRequest("Too many paths: an API has at most %d resources", rules.MaxResources)
	}
	keyScheme := func(name string) bool {
		s := doc.Components.SecuritySchemes[name]
		return s.Type == "apiKey" && strings.EqualFold(s.In, "header") && strings.EqualFold(s.Name, "x-api-key")
	}
	var warnings []string
	out := map[string]map[string]*pb.Method{}
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		norm, e := normalizeOASPath(path)
		if e != nil {
			return nil, nil, nil, e
		}
		if out[norm] == nil {
			out[norm] = map[string]*pb.Method{}
		}
		item := doc.Paths[path]
		for _, key := range slices.Sorted(maps.Keys(item)) {
			verb, ok := oasVerbs[key]
			if !ok {
				continue
			}
			var op oasOperation
			if err := json.Unmarshal(item[key], &op); err != nil {
				return nil, nil, nil, badRequest("Invalid OpenAPI input: %s %s: %s", key, truncate(path), truncate(err.Error()))
			}
			m, warn := methodOfOperation(verb, &op, doc.Security, keyScheme)
			if warn != "" {
				warnings = append(warnings, fmt.Sprintf("%s %s: %s", verb, truncate(path), warn))
				continue
			}
			out[norm][verb] = m
		}
	}
	return &doc, out, warnings, nil
}

// normalizeOASPath checks a document's path and drops a trailing slash.
func normalizeOASPath(p string) (string, *apiError) {
	if !strings.HasPrefix(p, "/") {
		return "", badRequest("Invalid OpenAPI input: path %q does not start with /", truncate(p))
	}
	if p != "/" {
		p = strings.TrimSuffix(p, "/")
	}
	if p == "/" {
		return p, nil
	}
	for part := range strings.SplitSeq(p[1:], "/") {
		if err := rules.PathPart(part); err != nil {
			return "", badRequest("Invalid OpenAPI input: path %q: %s", truncate(p), err.Error())
		}
	}
	return p, nil
}

func methodOfOperation(verb string, op *oasOperation, docSecurity []map[string][]string, keyScheme func(string) bool) (*pb.Method, string) {
	m := &pb.Method{HttpMethod: verb, AuthorizationType: "NONE", OperationName: op.OperationID}
	sec := docSecurity
	if op.Security != nil {
		sec = *op.Security
	}
	for _, req := range sec {
		for name := range req {
			if keyScheme(name) {
				m.ApiKeyRequired = true
			}
		}
	}
	for _, prm := range op.Parameters {
		loc := map[string]string{"path": "path", "query": "querystring", "header": "header"}[prm.In]
		if loc == "" {
			continue
		}
		if m.RequestParameters == nil {
			m.RequestParameters = map[string]bool{}
		}
		m.RequestParameters["method.request."+loc+"."+prm.Name] = prm.Required || prm.In == "path"
	}
	if in := op.Integration; in != nil {
		m.Integration = &pb.Integration{
			Type: strings.ToUpper(in.Type), HttpMethod: strings.ToUpper(in.HTTPMethod), Uri: in.URI,
			RequestParameters: in.RequestParameters, RequestTemplates: in.RequestTemplates,
			PassthroughBehavior: strings.ToUpper(in.PassthroughBehavior), TimeoutInMillis: in.TimeoutInMillis,
			ConnectionType: strings.ToUpper(in.ConnectionType), CacheNamespace: in.CacheNamespace,
			CacheKeyParameters: in.CacheKeyParameters,
		}
		if m.Integration.HttpMethod == "" {
			m.Integration.HttpMethod = verb
		}
	}
	if err := rules.Method(m); err != nil {
		return nil, err.Error()
	}
	return m, ""
}

// buildTree makes an API's resource tree from paths, reusing the ids of
// base's resources at the same paths (nil: none). With merge, base's
// other resources and methods stay.
func buildTree(apiID string, base *pb.ResourceTree, paths map[string]map[string]*pb.Method, merge bool) *pb.ResourceTree {
	root := rules.RootResourceID(apiID)
	byPath := map[string]*pb.Resource{}
	basePaths := rules.ResourcePaths(base)
	for id, r := range base.GetResources() {
		byPath[basePaths[id]] = r
	}
	t := &pb.ResourceTree{Resources: map[string]*pb.Resource{}}
	taken := func(id string) bool { return t.Resources[id] != nil || base.GetResources()[id] != nil }
	made := map[string]*pb.Resource{}
	var ensure func(path string) *pb.Resource
	ensure = func(path string) *pb.Resource {
		if r := made[path]; r != nil {
			return r
		}
		r := &pb.Resource{Id: root}
		if path != "/" {
			i := strings.LastIndexByte(path, '/')
			parentPath := path[:i]
			if parentPath == "" {
				parentPath = "/"
			}
			parent := ensure(parentPath)
			r = &pb.Resource{ParentId: parent.Id, PathPart: path[i+1:]}
			if old := byPath[path]; old != nil {
				r.Id = old.Id
			} else {
				r.Id = freshID(newResourceID, taken)
			}
		}
		if old := byPath[path]; old != nil && merge {
			r.Methods = maps.Clone(old.GetMethods())
		}
		t.Resources[r.Id] = r
		made[path] = r
		return r
	}
	ensure("/")
	if merge {
		for _, p := range slices.Sorted(maps.Keys(byPath)) {
			ensure(p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		r := ensure(p)
		for verb, m := range paths[p] {
			if r.Methods == nil {
				r.Methods = map[string]*pb.Method{}
			}
			if m.Integration != nil {
				integrationDefaults(m.Integration, r.Id)
			}
			r.Methods[verb] = m
		}
	}
	return t
}

// importView is ImportRestApi's and PutRestApi's answer: the API and the
// warnings of the import.
type importView struct {
	restAPIView
	Warnings []string `json:"warnings,omitempty"`
}

// apiOfDoc checks a document's API fields.
func apiOfDoc(doc *oasDoc) (*pb.RestApi, *apiError) {
	if doc.Info.Title == "" {
		return nil, badRequest("Invalid OpenAPI input: info.title (the API's name) is required")
	}
	if e := checkName("REST API", doc.Info.Title); e != nil {
		return nil, e
	}
	if e := checkDescription("REST API", doc.Info.Description); e != nil {
		return nil, e
	}
	if e := checkName("REST API version", doc.Info.Version); e != nil {
		return nil, e
	}
	switch strings.ToUpper(doc.APIKeySource) {
	case "", "HEADER":
	default:
		return nil, badRequest("x-amazon-apigateway-api-key-source %q is not supported: API keys are read from the x-api-key header (HEADER)", truncate(doc.APIKeySource))
	}
	return &pb.RestApi{Name: doc.Info.Title, Description: doc.Info.Description, Version: doc.Info.Version, ApiKeySource: "HEADER"}, nil
}

// importRestAPI is ImportRestApi: POST /restapis?mode=import.
func (s *Server) importRestAPI(w http.ResponseWriter, r *http.Request) *apiError {
	body, e := readBody(w, r)
	if e != nil {
		return e
	}
	failOnWarnings := r.URL.Query().Get("failonwarnings") == "true"
	doc, paths, warnings, e := parseOpenAPI(body)
	if e != nil {
		return e
	}
	if failOnWarnings && len(warnings) > 0 {
		return badRequest("Errors found during import: %s", strings.Join(warnings, "; "))
	}
	api, e := apiOfDoc(doc)
	if e != nil {
		return e
	}
	api.Id = freshID(newRestAPIID, func(id string) bool { return s.store.Config().GetRestApis()[id] != nil })
	tree := buildTree(api.Id, nil, paths, false)
	if err := rules.Tree(api.Id, tree); err != nil {
		return badRequest("Invalid OpenAPI input: %s", err.Error())
	}
	cmd := &pb.Command{Body: &pb.Command_PutResourceTree{PutResourceTree: &pb.PutResourceTree{RestApiId: api.Id, Tree: tree, CreateApi: api}}}
	if _, e := s.apply(r.Context(), cmd); e != nil {
		return e
	}
	if cur := s.store.Config().GetRestApis()[api.Id]; cur != nil {
		api = cur
	}
	writeJSON(w, http.StatusCreated, importView{restAPIViewOf(api), warnings})
	return nil
}

// putRestAPI is PutRestApi: PUT /restapis/{id}?mode=overwrite|merge.
func (s *Server) putRestAPI(w http.ResponseWriter, r *http.Request) *apiError {
	apiID := r.PathValue("restapi_id")
	body, e := readBody(w, r)
	if e != nil {
		return e
	}
	q := r.URL.Query()
	mode := q.Get("mode")
	switch mode {
	case "":
		mode = "merge"
	case "merge", "overwrite":
	default:
		return badRequest("Invalid mode %q: want merge or overwrite", truncate(mode))
	}
	cfg := s.store.Config()
	cur := cfg.GetRestApis()[apiID]
	if cur == nil {
		return notFound(msgAPINotFound)
	}
	doc, paths, warnings, e := parseOpenAPI(body)
	if e != nil {
		return e
	}
	if q.Get("failonwarnings") == "true" && len(warnings) > 0 {
		return badRequest("Errors found during import: %s", strings.Join(warnings, "; "))
	}
	fields, e := apiOfDoc(doc)
	if e != nil {
		return e
	}
	upd := &pb.RestApi{Id: apiID, Name: fields.Name, Description: fields.Description, Version: fields.Version,
		ApiKeySource: fields.ApiKeySource, Tags: cur.GetTags()}
	tree := buildTree(apiID, treeOf(cfg, apiID), paths, mode == "merge")
	if err := rules.Tree(apiID, tree); err != nil {
		return badRequest("Invalid OpenAPI input: %s", err.Error())
	}
	cmd := &pb.Command{Body: &pb.Command_PutResourceTree{PutResourceTree: &pb.PutResourceTree{RestApiId: apiID, Tree: tree, UpdateApi: upd}}}
	if _, e := s.apply(r.Context(), cmd); e != nil {
		return e
	}
	if now := s.store.Config().GetRestApis()[apiID]; now != nil {
		upd = now
	}
	writeJSON(w, http.StatusOK, importView{restAPIViewOf(upd), warnings})
	return nil
}

// openAPITypes are the media types an OpenAPI document may be sent as.
var openAPITypes = map[string]bool{
	"application/json": true, "application/yaml": true, "application/x-yaml": true, "text/yaml": true,
	"application/octet-stream": true, "application/vnd.oai.openapi": true, "application/vnd.oai.openapi+json": true,
}

// openAPIBody tells whether a request's body is an OpenAPI document
// (ImportRestApi, PutRestApi).
func openAPIBody(r *http.Request, pattern string) bool {
	return pattern == "PUT /restapis/{restapi_id}" || pattern == "POST /restapis" && r.URL.Query().Get("mode") == "import"
}
