package admin

import (
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// GetExport: GET /restapis/{id}/stages/{stage}/exports/{oas30|swagger},
// the resources the stage serves (its deployment's) as an OpenAPI 3.0.1
// or Swagger 2.0 document, JSON or (Accept: application/yaml) YAML. The
// query parameter extensions=integrations (or apigateway) adds each
// method's x-amazon-apigateway-integration, as the original does.

type exportParameter struct {
	Name     string            `json:"name"`
	In       string            `json:"in"`
	Required bool              `json:"required"`
	Schema   map[string]string `json:"schema,omitempty"` // OpenAPI 3
	Type     string            `json:"type,omitempty"`   // Swagger 2
}

type exportOperation struct {
	OperationID string                `json:"operationId,omitempty"`
	Parameters  []exportParameter     `json:"parameters,omitempty"`
	Responses   map[string]any        `json:"responses"`
	Security    []map[string][]string `json:"security,omitempty"`
	Integration *oasIntegration       `json:"x-amazon-apigateway-integration,omitempty"`
}

var exportLocations = map[string]string{"path": "path", "querystring": "query", "header": "header"}

func exportOperationOf(m *pb.Method, resID string, swagger, integrations bool) exportOperation {
	op := exportOperation{OperationID: m.GetOperationName(),
		Responses: map[string]any{"default": map[string]string{"description": "The integration's response"}}}
	for _, k := range slices.Sorted(maps.Keys(m.GetRequestParameters())) {
		loc, name, _ := strings.Cut(strings.TrimPrefix(k, "method.request."), ".")
		p := exportParameter{Name: name, In: exportLocations[loc], Required: m.GetRequestParameters()[k]}
		if swagger {
			p.Type = "string"
		} else {
			p.Schema = map[string]string{"type": "string"}
		}
		op.Parameters = append(op.Parameters, p)
	}
	if m.GetApiKeyRequired() {
		op.Security = []map[string][]string{{"api_key": {}}}
	}
	if in := m.GetIntegration(); in != nil && integrations {
		op.Integration = &oasIntegration{
			Type: strings.ToLower(in.GetType()), HTTPMethod: in.GetHttpMethod(), URI: in.GetUri(),
			RequestParameters: in.GetRequestParameters(), RequestTemplates: in.GetRequestTemplates(),
			PassthroughBehavior: strings.ToLower(in.GetPassthroughBehavior()), TimeoutInMillis: in.GetTimeoutInMillis(),
			ConnectionType: in.GetConnectionType(), CacheKeyParameters: in.GetCacheKeyParameters(),
		}
		if ns := in.GetCacheNamespace(); ns != resID {
			op.Integration.CacheNamespace = ns
		}
	}
	return op
}

// exportDocument builds the document of an API's tree.
func exportDocument(api *pb.RestApi, stage string, tree *pb.ResourceTree, swagger, integrations bool) map[string]any {
	paths := map[string]map[string]exportOperation{}
	resPaths := rules.ResourcePaths(tree)
	for id, r := range tree.GetResources() {
		if len(r.GetMethods()) == 0 {
			continue
		}
		item := map[string]exportOperation{}
		for verb, m := range r.GetMethods() {
			key := strings.ToLower(verb)
			if verb == "ANY" {
				key = "x-amazon-apigateway-any-method"
			}
			item[key] = exportOperationOf(m, id, swagger, integrations)
		}
		paths[resPaths[id]] = item
	}
	info := oasInfo{Title: api.GetName(), Description: api.GetDescription(), Version: api.GetVersion()}
	scheme := map[string]any{"api_key": oasScheme{Type: "apiKey", Name: "x-api-key", In: "header"}}
	doc := map[string]any{
		"info":                               info,
		"paths":                              paths,
		"x-amazon-apigateway-api-key-source": "HEADER",
	}
	if swagger {
		doc["swagger"] = "2.0"
		doc["basePath"] = "/" + api.GetId() + "/" + stage
		doc["securityDefinitions"] = scheme
	} else {
		doc["openapi"] = "3.0.1"
		doc["servers"] = []any{map[string]any{"url": "/" + api.GetId() + "/{basePath}",
			"variables": map[string]any{"basePath": map[string]string{"default": stage}}}}
		doc["components"] = map[string]any{"securitySchemes": scheme}
	}
	return doc
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, stageName, kind := r.PathValue("restapi_id"), r.PathValue("stage_name"), r.PathValue("export_type")
	cfg := s.store.Config()
	api := cfg.GetRestApis()[apiID]
	if api == nil {
		return notFound(msgAPINotFound)
	}
	st := cfg.GetStages()[apiID+"/"+stageName]
	if st == nil {
		return notFound(msgStageNotFound)
	}
	var swagger bool
	switch kind {
	case "oas30":
	case "swagger":
		swagger = true
	default:
		return badRequest("Invalid export type %q: want oas30 or swagger", truncate(kind))
	}
	ext := r.URL.Query().Get("extensions")
	integrations := strings.Contains(ext, "integrations") || strings.Contains(ext, "apigateway")
	tree := cfg.GetDeploymentResources()[apiID+"/"+st.GetDeploymentId()]
	doc, err := json.Marshal(exportDocument(api, stageName, tree, swagger, integrations))
	if err != nil {
		return &apiError{status: http.StatusInternalServerError, code: "InternalFailure", msg: "could not encode the document"}
	}
	ct := "application/json"
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Accept")); mt == "application/yaml" || mt == "application/x-yaml" {
		if doc, err = yaml.JSONToYAML(doc); err != nil {
			return &apiError{status: http.StatusInternalServerError, code: "InternalFailure", msg: "could not encode the document"}
		}
		ct = "application/yaml"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="`+apiID+"-"+stageName+"-"+kind+`.json"`)
	w.WriteHeader(http.StatusOK)
	w.Write(doc) //nolint:errcheck // the client went away: nothing to do
	return nil
}
