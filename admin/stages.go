package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// createStageRequest is CreateStage's body plus the extension
// apiKeyRequired (default true). Caching, canary, documentation and tracing
// settings are accepted and ignored.
type createStageRequest struct {
	StageName            string            `json:"stageName"`
	DeploymentID         string            `json:"deploymentId"`
	Description          string            `json:"description"`
	Variables            map[string]string `json:"variables"`
	Tags                 map[string]string `json:"tags"`
	APIKeyRequired       *bool             `json:"apiKeyRequired"`
	CacheClusterEnabled  bool              `json:"cacheClusterEnabled"`
	CacheClusterSize     string            `json:"cacheClusterSize"`
	CanarySettings       json.RawMessage   `json:"canarySettings"`
	DocumentationVersion string            `json:"documentationVersion"`
	TracingEnabled       bool              `json:"tracingEnabled"`
}

var loggingLevels = rules.LoggingLevels

// checkStage validates a whole stage, as created or as patched. acct is
// the account throttle that unset method throttles inherit.
func checkStage(st *pb.Stage, acct *pb.ThrottleSettings) *apiError {
	return invalid(rules.Stage(st, acct))
}

func (s *Server) createStage(w http.ResponseWriter, r *http.Request) *apiError {
	apiID := r.PathValue("restapi_id")
	var req createStageRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	cfg := s.store.Config()
	if cfg.GetRestApis()[apiID] == nil {
		return notFound(msgAPINotFound)
	}
	if req.DeploymentID == "" {
		return badRequest("Invalid deployment identifier specified: deploymentId is required")
	}
	st := &pb.Stage{
		RestApiId:         apiID,
		StageName:         req.StageName,
		DeploymentId:      req.DeploymentID,
		Description:       req.Description,
		Variables:         req.Variables,
		Tags:              req.Tags,
		ApiKeyNotRequired: req.APIKeyRequired != nil && !*req.APIKeyRequired,
	}
	if e := checkStage(st, accountThrottle(cfg)); e != nil {
		return e
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: st, Create: true}}}); e != nil {
		return e
	}
	cfg = s.store.Config()
	if cur := cfg.GetStages()[apiID+"/"+st.StageName]; cur != nil {
		st = cur
	}
	writeJSON(w, http.StatusCreated, stageViewOf(st, accountThrottle(cfg)))
	return nil
}

func (s *Server) listStages(w http.ResponseWriter, r *http.Request) *apiError {
	apiID := r.PathValue("restapi_id")
	cfg := s.store.Config()
	if cfg.GetRestApis()[apiID] == nil {
		return notFound(msgAPINotFound)
	}
	dep := r.URL.Query().Get("deploymentId")
	var stages []*pb.Stage
	for _, st := range cfg.GetStages() {
		if st.GetRestApiId() == apiID && (dep == "" || st.GetDeploymentId() == dep) {
			stages = append(stages, st)
		}
	}
	slices.SortFunc(stages, func(a, b *pb.Stage) int { return strings.Compare(a.GetStageName(), b.GetStageName()) })
	acct := accountThrottle(cfg)
	out := struct {
		Item []stageView `json:"item"`
	}{Item: make([]stageView, 0, len(stages))}
	for _, st := range stages {
		out.Item = append(out.Item, stageViewOf(st, acct))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// lookupStage finds the stage a request path names.
func lookupStage(cfg *pb.Config, r *http.Request) (*pb.Stage, *apiError) {
	apiID, name := r.PathValue("restapi_id"), r.PathValue("stage_name")
	if cfg.GetRestApis()[apiID] == nil {
		return nil, notFound(msgAPINotFound)
	}
	if !isStageName(name) {
		return nil, notFound(msgStageNotFound)
	}
	st := cfg.GetStages()[apiID+"/"+name]
	if st == nil {
		return nil, notFound(msgStageNotFound)
	}
	return st, nil
}

func (s *Server) getStage(w http.ResponseWriter, r *http.Request) *apiError {
	cfg := s.store.Config()
	st, e := lookupStage(cfg, r)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, stageViewOf(st, accountThrottle(cfg)))
	return nil
}

func (s *Server) deleteStage(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, name := r.PathValue("restapi_id"), r.PathValue("stage_name")
	if !checkPathID(apiID) || !isStageName(name) {
		return notFound(msgStageNotFound)
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteStage{DeleteStage: &pb.DeleteStage{RestApiId: apiID, StageName: name}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

func (s *Server) updateStage(w http.ResponseWriter, r *http.Request) *apiError {
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	st, e := update(s, r.Context(),
		func(c *pb.Config) (*pb.Stage, uint64, *apiError) {
			st, e := lookupStage(c, r)
			if e != nil {
				return nil, 0, e
			}
			return st, st.GetRevision(), nil
		},
		func(st *pb.Stage, c *pb.Config) *apiError { return patchStage(st, ops, accountThrottle(c)) },
		func(st *pb.Stage, rev uint64) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: st, IfRevision: rev}}}
		})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, stageViewOf(st, accountThrottle(s.store.Config())))
	return nil
}

// The paths each op takes on a stage.
var (
	stageAddPaths     = []string{"/variables/{name}"}
	stageReplacePaths = []string{"/description", "/deploymentId", "/variables/{name}", "/apiKeyRequired",
		"/{resourcePath}/{httpMethod}/throttling/rateLimit", "/{resourcePath}/{httpMethod}/throttling/burstLimit",
		"/{resourcePath}/{httpMethod}/metrics/enabled", "/{resourcePath}/{httpMethod}/logging/loglevel",
		"/{resourcePath}/{httpMethod}/logging/dataTrace"}
	stageRemovePaths = []string{"/variables/{name}", "/{resourcePath}/{httpMethod}",
		"/{resourcePath}/{httpMethod}/throttling/rateLimit", "/{resourcePath}/{httpMethod}/throttling/burstLimit"}
)

func stagePaths(op string) []string {
	switch op {
	case "add":
		return stageAddPaths
	case "replace":
		return stageReplacePaths
	case "remove":
		return stageRemovePaths
	}
	return nil
}

// patchStage applies UpdateStage's operations, then validates the stage.
func patchStage(st *pb.Stage, ops []patchOp, acct *pb.ThrottleSettings) *apiError {
	if e := checkPatchOps(ops); e != nil {
		return e
	}
	for _, op := range ops {
		if e := patchStageOp(st, op); e != nil {
			return e
		}
	}
	return checkStage(st, acct)
}

func patchStageOp(st *pb.Stage, op patchOp) *apiError {
	bad := func() *apiError { return badPatchPath(op, stagePaths(op.Op)) }
	switch {
	case op.Path == "/description":
		if op.Op != "replace" {
			return bad()
		}
		st.Description = op.Value
	case op.Path == "/deploymentId":
		if op.Op != "replace" {
			return bad()
		}
		if op.Value == "" {
			return badRequest("Invalid deployment identifier specified")
		}
		st.DeploymentId = op.Value
	case op.Path == "/apiKeyRequired":
		if op.Op != "replace" {
			return bad()
		}
		req, e := patchStrictBool(op)
		if e != nil {
			return e
		}
		st.ApiKeyNotRequired = !req
	case strings.HasPrefix(op.Path, "/variables/"):
		name := strings.TrimPrefix(op.Path, "/variables/")
		switch op.Op {
		case "add", "replace":
			if e := checkVariable(name, op.Value); e != nil {
				return e
			}
			if st.Variables == nil {
				st.Variables = map[string]string{}
			}
			st.Variables[name] = op.Value
		case "remove":
			delete(st.Variables, name)
		default:
			return bad()
		}
	default:
		return patchMethodSetting(st, op, bad)
	}
	return nil
}

// patchMethodSetting handles /{resourcePath}/{httpMethod}[/{area}/{name}],
// where the resource path is one segment with "/" written as "~1"
// ("/~1pets/GET/throttling/rateLimit" is the setting of "/pets/GET"), or
// "*" for every resource ("/*/*/throttling/burstLimit").
func patchMethodSetting(st *pb.Stage, op patchOp, bad func() *apiError) *apiError {
	if op.Op != "replace" && op.Op != "remove" {
		return bad()
	}
	segs := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
	if !strings.HasPrefix(op.Path, "/") || (len(segs) != 2 && len(segs) != 4) {
		return bad()
	}
	res, err := unescapePointer(segs[0])
	if err != nil {
		return badRequest("Invalid patch path %q: %v", truncate(op.Path), err)
	}
	key := res + "/" + segs[1]
	if e := checkStageMethodKey(key); e != nil {
		return e
	}
	if len(segs) == 2 {
		if op.Op != "remove" {
			return bad()
		}
		if _, ok := st.MethodSettings[key]; !ok {
			return notFound("No method setting " + key + " in stage " + st.StageName)
		}
		delete(st.MethodSettings, key)
		return nil
	}
	setting := segs[2] + "/" + segs[3]
	if st.MethodSettings == nil {
		st.MethodSettings = map[string]*pb.MethodSetting{}
	}
	m := st.MethodSettings[key]
	if m == nil {
		if op.Op == "remove" {
			return notFound("No method setting " + key + " in stage " + st.StageName)
		}
		m = &pb.MethodSetting{}
		st.MethodSettings[key] = m
	}
	if op.Op == "remove" {
		switch setting {
		case "throttling/rateLimit":
			m.ThrottlingRateLimit = nil
		case "throttling/burstLimit":
			m.ThrottlingBurstLimit = nil
		default:
			return bad()
		}
		return nil
	}
	switch setting {
	case "throttling/rateLimit":
		f, e := patchRate(op)
		if e != nil {
			return e
		}
		m.ThrottlingRateLimit = &f
	case "throttling/burstLimit":
		n, e := patchBurst(op)
		if e != nil {
			return e
		}
		m.ThrottlingBurstLimit = &n
	case "metrics/enabled":
		b, e := patchStrictBool(op)
		if e != nil {
			return e
		}
		m.MetricsEnabled = b
	case "logging/loglevel":
		lvl := strings.ToUpper(strings.TrimSpace(op.Value))
		if !slices.Contains(loggingLevels, lvl) {
			return badRequest("Invalid logging level %q: want OFF, ERROR or INFO", truncate(op.Value))
		}
		m.LoggingLevel = lvl
	case "logging/dataTrace":
		b, e := patchStrictBool(op)
		if e != nil {
			return e
		}
		m.DataTraceEnabled = b
	default:
		return bad()
	}
	return nil
}
