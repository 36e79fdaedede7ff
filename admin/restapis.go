package admin

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// createRestAPIRequest is CreateRestApi's body. Fields of the original that
// change nothing here (binary media types, compression, policy, access
// mode, TLS security policy) are accepted and ignored, so that tools which
// send them keep working; the endpoint type and the execute-api switch are
// stored and shown, and change nothing either.
type endpointConfigIn struct {
	Types          []string `json:"types"`
	VpcEndpointIds []string `json:"vpcEndpointIds"`
}

type createRestAPIRequest struct {
	Name                      string            `json:"name"`
	Description               string            `json:"description"`
	Version                   string            `json:"version"`
	APIKeySource              string            `json:"apiKeySource"`
	Tags                      map[string]string `json:"tags"`
	CloneFrom                 string            `json:"cloneFrom"`
	BinaryMediaTypes          []string          `json:"binaryMediaTypes"`
	MinimumCompressionSize    *int64            `json:"minimumCompressionSize"`
	Policy                    string            `json:"policy"`
	EndpointConfiguration     *endpointConfigIn `json:"endpointConfiguration"`
	DisableExecuteAPIEndpoint bool              `json:"disableExecuteApiEndpoint"`
	EndpointAccessMode        string            `json:"endpointAccessMode"`
	SecurityPolicy            string            `json:"securityPolicy"`
}

func (s *Server) createRestAPI(w http.ResponseWriter, r *http.Request) *apiError {
	if r.URL.Query().Get("mode") == "import" {
		return s.importRestAPI(w, r)
	}
	var req createRestAPIRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if req.Name == "" {
		return badRequest("Invalid REST API name specified: a name is required")
	}
	if e := checkName("REST API", req.Name); e != nil {
		return e
	}
	if e := checkDescription("REST API", req.Description); e != nil {
		return e
	}
	if e := checkName("REST API version", req.Version); e != nil {
		return e
	}
	if e := checkTags(req.Tags); e != nil {
		return e
	}
	switch req.APIKeySource {
	case "", "HEADER":
	case "AUTHORIZER":
		return badRequest("apiKeySource AUTHORIZER is not supported: API keys are read from the x-api-key header (HEADER)")
	default:
		return badRequest("Invalid apiKeySource %q: want HEADER", truncate(req.APIKeySource))
	}
	if req.CloneFrom != "" {
		return badRequest("cloneFrom is not supported")
	}
	var types []string
	if req.EndpointConfiguration != nil {
		types = req.EndpointConfiguration.Types
	}
	api := &pb.RestApi{
		Id:           freshID(newRestAPIID, func(id string) bool { return s.store.Config().GetRestApis()[id] != nil }),
		Name:         req.Name,
		Description:  req.Description,
		Version:      req.Version,
		ApiKeySource: "HEADER",
		Tags:         req.Tags,

		EndpointTypes:             types,
		DisableExecuteApiEndpoint: req.DisableExecuteAPIEndpoint,
	}
	if e := invalid(rules.RestApi(api)); e != nil {
		return e
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_CreateRestApi{CreateRestApi: &pb.CreateRestApi{Api: api}}}); e != nil {
		return e
	}
	if cur := s.store.Config().GetRestApis()[api.Id]; cur != nil {
		api = cur
	}
	writeJSON(w, http.StatusCreated, restAPIViewOf(api))
	return nil
}

func (s *Server) listRestAPIs(w http.ResponseWriter, r *http.Request) *apiError {
	apis := slices.Collect(maps.Values(s.store.Config().GetRestApis()))
	return writePage(w, r.URL.Query(), apis, func(a *pb.RestApi) cursor { return cursor{a.GetCreatedDate(), a.GetId()} },
		shown(restAPIViewOf))
}

func (s *Server) getRestAPI(w http.ResponseWriter, r *http.Request) *apiError {
	a := s.store.Config().GetRestApis()[r.PathValue("restapi_id")]
	if a == nil {
		return notFound(msgAPINotFound)
	}
	writeJSON(w, http.StatusOK, restAPIViewOf(a))
	return nil
}

func (s *Server) deleteRestAPI(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("restapi_id")
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: id, DetachPlans: true}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

// createDeploymentRequest is CreateDeployment's body. Caching, canary and
// tracing settings are accepted and ignored.
type createDeploymentRequest struct {
	StageName           string            `json:"stageName"`
	StageDescription    string            `json:"stageDescription"`
	Description         string            `json:"description"`
	Variables           map[string]string `json:"variables"`
	CacheClusterEnabled bool              `json:"cacheClusterEnabled"`
	CacheClusterSize    string            `json:"cacheClusterSize"`
	CanarySettings      json.RawMessage   `json:"canarySettings"`
	TracingEnabled      bool              `json:"tracingEnabled"`
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) *apiError {
	apiID := r.PathValue("restapi_id")
	var req createDeploymentRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if s.store.Config().GetRestApis()[apiID] == nil {
		return notFound(msgAPINotFound)
	}
	if e := checkDescription("Deployment", req.Description); e != nil {
		return e
	}
	cfg := s.store.Config()
	depID := freshID(newDeploymentID, func(id string) bool { return cfg.GetDeployments()[apiID+"/"+id] != nil })
	d := &pb.Deployment{Id: depID, RestApiId: apiID, Description: req.Description}
	cmd := &pb.CreateDeployment{Deployment: d}
	if req.StageName != "" {
		if e := checkStageName(req.StageName); e != nil {
			return e
		}
		if e := checkDescription("Stage", req.StageDescription); e != nil {
			return e
		}
		if e := checkVariables(req.Variables); e != nil {
			return e
		}
		cmd.Stage = &pb.Stage{RestApiId: apiID, StageName: req.StageName, DeploymentId: d.Id,
			Description: req.StageDescription, Variables: req.Variables}
	} else if len(req.Variables) > 0 || req.StageDescription != "" {
		return badRequest("variables and stageDescription need a stageName")
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_CreateDeployment{CreateDeployment: cmd}}); e != nil {
		return e
	}
	if cur := s.store.Config().GetDeployments()[apiID+"/"+d.Id]; cur != nil {
		d = cur
	}
	writeJSON(w, http.StatusCreated, deploymentViewOf(d))
	return nil
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) *apiError {
	apiID := r.PathValue("restapi_id")
	cfg := s.store.Config()
	if cfg.GetRestApis()[apiID] == nil {
		return notFound(msgAPINotFound)
	}
	var ds []*pb.Deployment
	for _, d := range cfg.GetDeployments() {
		if d.GetRestApiId() == apiID {
			ds = append(ds, d)
		}
	}
	return writePage(w, r.URL.Query(), ds, func(d *pb.Deployment) cursor { return cursor{d.GetCreatedDate(), d.GetId()} },
		shown(deploymentViewOf))
}

// deploymentPatch is UpdateDeployment's patch table.
var deploymentPatch = patchTable[*pb.Deployment]{
	{path: "/description", ops: opReplace, set: func(d *pb.Deployment, _ []string, op patchOp) *apiError {
		d.Description = op.Value
		return checkDescription("Deployment", op.Value)
	}},
}

// lookupDeployment finds the deployment a request path names.
func lookupDeployment(cfg *pb.Config, r *http.Request) (*pb.Deployment, *apiError) {
	apiID, id := r.PathValue("restapi_id"), r.PathValue("deployment_id")
	if !checkPathID(apiID) || !checkPathID(id) {
		return nil, notFound(msgDeploymentNotFound)
	}
	d := cfg.GetDeployments()[apiID+"/"+id]
	if d == nil {
		return nil, notFound(msgDeploymentNotFound)
	}
	return d, nil
}

// updateDeployment is UpdateDeployment: replace /description.
func (s *Server) updateDeployment(w http.ResponseWriter, r *http.Request) *apiError {
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	d, e := lookupDeployment(s.store.Config(), r)
	if e != nil {
		return e
	}
	next := proto.Clone(d).(*pb.Deployment)
	if e := applyPatch(deploymentPatch, next, ops); e != nil {
		return e
	}
	if !proto.Equal(d, next) {
		if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_UpdateDeployment{UpdateDeployment: &pb.UpdateDeployment{
			RestApiId: next.RestApiId, Id: next.Id, Description: next.Description,
		}}}); e != nil {
			return e
		}
		if cur, e := lookupDeployment(s.store.Config(), r); e == nil {
			next = cur
		}
	}
	writeJSON(w, http.StatusOK, deploymentViewOf(next))
	return nil
}

// deleteDeployment is DeleteDeployment: refused while a stage serves it.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, id := r.PathValue("restapi_id"), r.PathValue("deployment_id")
	if !checkPathID(apiID) || !checkPathID(id) {
		return notFound(msgDeploymentNotFound)
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteDeployment{DeleteDeployment: &pb.DeleteDeployment{RestApiId: apiID, Id: id}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) *apiError {
	d, e := lookupDeployment(s.store.Config(), r)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, deploymentViewOf(d))
	return nil
}

// restAPIPatch is UpdateRestApi's patch table. The endpoint type and the
// execute-api switch are stored and shown, and change nothing.
var restAPIPatch = patchTable[*pb.RestApi]{
	{path: "/name", ops: opReplace, set: func(a *pb.RestApi, _ []string, op patchOp) *apiError {
		if op.Value == "" {
			return badRequest("Invalid REST API name specified: a name is required")
		}
		a.Name = op.Value
		return checkName("REST API", op.Value)
	}},
	{path: "/description", ops: opReplace, set: func(a *pb.RestApi, _ []string, op patchOp) *apiError {
		a.Description = op.Value
		return checkDescription("REST API", op.Value)
	}},
	{path: "/version", ops: opReplace, set: func(a *pb.RestApi, _ []string, op patchOp) *apiError {
		a.Version = op.Value
		return checkName("REST API version", op.Value)
	}},
	{path: "/apiKeySource", ops: opReplace, set: func(a *pb.RestApi, _ []string, op patchOp) *apiError {
		if op.Value != "HEADER" {
			return badRequest("Invalid apiKeySource %q: only HEADER is supported", truncate(op.Value))
		}
		a.ApiKeySource = op.Value
		return nil
	}},
	{path: "/disableExecuteApiEndpoint", ops: opReplace, set: func(a *pb.RestApi, _ []string, op patchOp) *apiError {
		var e *apiError
		a.DisableExecuteApiEndpoint, e = patchStrictBool(op)
		return e
	}},
	{path: "/endpointConfiguration/types/{type}", match: "/endpointConfiguration/types/*", ops: opReplace,
		set: func(a *pb.RestApi, args []string, op patchOp) *apiError {
			if cur := endpointType(a); args[0] != cur {
				return badRequest("Invalid endpoint type %q: the API's type is %s", truncate(args[0]), cur)
			}
			a.EndpointTypes = []string{strings.TrimSpace(op.Value)}
			return invalid(rules.RestApi(a))
		}},
}

// endpointType is an API's endpoint type: REGIONAL unless one was given.
func endpointType(a *pb.RestApi) string {
	if t := a.GetEndpointTypes(); len(t) > 0 {
		return t[0]
	}
	return "REGIONAL"
}

// patchRestAPI applies UpdateRestApi's operations.
func patchRestAPI(a *pb.RestApi, ops []patchOp) *apiError {
	return applyPatch(restAPIPatch, a, ops)
}

func (s *Server) updateRestAPI(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("restapi_id")
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	a, e := update(s, r.Context(),
		func(c *pb.Config) (*pb.RestApi, uint64, *apiError) {
			a := c.GetRestApis()[id]
			if a == nil {
				return nil, 0, notFound(msgAPINotFound)
			}
			return a, a.GetRevision(), nil
		},
		func(a *pb.RestApi, _ *pb.Config) *apiError { return patchRestAPI(a, ops) },
		func(a *pb.RestApi, rev uint64) *pb.Command {
			return &pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: a, IfRevision: rev}}}
		})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, restAPIViewOf(a))
	return nil
}
