package admin

import (
	"encoding/json"
	"net/http"

	pb "github.com/tollgate/tollgate/proto"
)

// createRestAPIRequest is CreateRestApi's body. Fields of the original that
// change nothing here (binary media types, compression, policy, endpoint
// configuration and access mode, TLS security policy, the execute-api
// switch) are accepted and ignored, so that tools which send them keep
// working.
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
	EndpointConfiguration     json.RawMessage   `json:"endpointConfiguration"`
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
	api := &pb.RestApi{
		Id:           freshID(newRestAPIID, func(id string) bool { return s.store.Config().GetRestApis()[id] != nil }),
		Name:         req.Name,
		Description:  req.Description,
		Version:      req.Version,
		ApiKeySource: "HEADER",
		Tags:         req.Tags,
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
	pr, e := parsePage(r.URL.Query())
	if e != nil {
		return e
	}
	var apis []*pb.RestApi
	for _, a := range s.store.Config().GetRestApis() {
		apis = append(apis, a)
	}
	page, next := paginate(apis, func(a *pb.RestApi) cursor { return cursor{a.GetCreatedDate(), a.GetId()} }, pr)
	out := listView[restAPIView]{Item: make([]restAPIView, 0, len(page)), Position: next}
	for _, a := range page {
		out.Item = append(out.Item, restAPIViewOf(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
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
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: id}}}); e != nil {
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
	pr, e := parsePage(r.URL.Query())
	if e != nil {
		return e
	}
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
	page, next := paginate(ds, func(d *pb.Deployment) cursor { return cursor{d.GetCreatedDate(), d.GetId()} }, pr)
	out := listView[deploymentView]{Item: make([]deploymentView, 0, len(page)), Position: next}
	for _, d := range page {
		out.Item = append(out.Item, deploymentViewOf(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, id := r.PathValue("restapi_id"), r.PathValue("deployment_id")
	if !checkPathID(apiID) || !checkPathID(id) {
		return notFound(msgDeploymentNotFound)
	}
	d := s.store.Config().GetDeployments()[apiID+"/"+id]
	if d == nil {
		return notFound(msgDeploymentNotFound)
	}
	writeJSON(w, http.StatusOK, deploymentViewOf(d))
	return nil
}

var restAPIReplacePaths = []string{"/name", "/description", "/version", "/apiKeySource"}

// patchRestAPI applies UpdateRestApi's operations: replace of /name,
// /description, /version and /apiKeySource (HEADER only).
func patchRestAPI(a *pb.RestApi, ops []patchOp) *apiError {
	if e := checkPatchOps(ops); e != nil {
		return e
	}
	for _, op := range ops {
		if op.Op != "replace" {
			return badPatchPath(op, nil)
		}
		switch op.Path {
		case "/name":
			if op.Value == "" {
				return badRequest("Invalid REST API name specified: a name is required")
			}
			if e := checkName("REST API", op.Value); e != nil {
				return e
			}
			a.Name = op.Value
		case "/description":
			if e := checkDescription("REST API", op.Value); e != nil {
				return e
			}
			a.Description = op.Value
		case "/version":
			if e := checkName("REST API version", op.Value); e != nil {
				return e
			}
			a.Version = op.Value
		case "/apiKeySource":
			if op.Value != "HEADER" {
				return badRequest("Invalid apiKeySource %q: only HEADER is supported", truncate(op.Value))
			}
			a.ApiKeySource = op.Value
		default:
			return badPatchPath(op, restAPIReplacePaths)
		}
	}
	return nil
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
