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
// apiKeyRequired (default true). The cache cluster and tracing settings
// are stored and shown, and act on nothing; canary and documentation
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

		CacheClusterEnabled: req.CacheClusterEnabled,
		CacheClusterSize:    req.CacheClusterSize,
		TracingEnabled:      req.TracingEnabled,
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
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteStage{DeleteStage: &pb.DeleteStage{RestApiId: apiID, StageName: name, DetachPlans: true}}}); e != nil {
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

// stagePatch is UpdateStage's patch table. A method setting's path is
// /{resourcePath}/{httpMethod}/{area}/{name}, where the resource path is
// one segment with "/" written as "~1" ("/~1pets/GET/throttling/rateLimit"
// is the setting of "/pets/GET"), "*" for every resource
// ("/*/*/throttling/burstLimit"), or raw segments without the leading
// slash, as Terraform sends them ("/pets/GET/throttling/rateLimit").
var stagePatch = patchTable[*pb.Stage]{
	{path: "/description", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		st.Description = op.Value
		return nil
	}},
	{path: "/deploymentId", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		if op.Value == "" {
			return badRequest("Invalid deployment identifier specified")
		}
		st.DeploymentId = op.Value
		return nil
	}},
	{path: "/variables/{name}", match: "/variables/*", ops: opAdd | opReplace | opRemove,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			if e := checkVariable(args[0], op.Value); e != nil {
				return e
			}
			if st.Variables == nil {
				st.Variables = map[string]string{}
			}
			st.Variables[args[0]] = op.Value
			return nil
		},
		remove: func(st *pb.Stage, args []string, _ patchOp) *apiError {
			delete(st.Variables, args[0])
			return nil
		}},
	{path: "/apiKeyRequired", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		req, e := patchStrictBool(op)
		st.ApiKeyNotRequired = !req
		return e
	}},
	{path: "/tracingEnabled", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		var e *apiError
		st.TracingEnabled, e = patchStrictBool(op)
		return e
	}},
	{path: "/cacheClusterEnabled", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		var e *apiError
		st.CacheClusterEnabled, e = patchStrictBool(op)
		return e
	}},
	{path: "/cacheClusterSize", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		st.CacheClusterSize = strings.TrimSpace(op.Value)
		return nil
	}},
	{path: "/accessLogSettings/format", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		accessLogOf(st).Format = op.Value
		return nil
	}},
	{path: "/accessLogSettings/destinationArn", ops: opReplace, set: func(st *pb.Stage, _ []string, op patchOp) *apiError {
		accessLogOf(st).DestinationArn = op.Value
		return nil
	}},
	{path: "/accessLogSettings", ops: opRemove, remove: func(st *pb.Stage, _ []string, _ patchOp) *apiError {
		st.AccessLogSettings = nil
		return nil
	}},
	{path: "/{resourcePath}/{httpMethod}/throttling/rateLimit", match: "/**/throttling/rateLimit", ops: opReplace | opRemove,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			m, e := methodSetting(st, args[0], true)
			if e != nil {
				return e
			}
			f, e := patchRate(op)
			m.ThrottlingRateLimit = &f
			return e
		},
		remove: func(st *pb.Stage, args []string, _ patchOp) *apiError {
			m, e := methodSetting(st, args[0], false)
			if e == nil {
				m.ThrottlingRateLimit = nil
			}
			return e
		}},
	{path: "/{resourcePath}/{httpMethod}/throttling/burstLimit", match: "/**/throttling/burstLimit", ops: opReplace | opRemove,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			m, e := methodSetting(st, args[0], true)
			if e != nil {
				return e
			}
			n, e := patchBurst(op)
			m.ThrottlingBurstLimit = &n
			return e
		},
		remove: func(st *pb.Stage, args []string, _ patchOp) *apiError {
			m, e := methodSetting(st, args[0], false)
			if e == nil {
				m.ThrottlingBurstLimit = nil
			}
			return e
		}},
	methodFlag("/{resourcePath}/{httpMethod}/metrics/enabled", "/**/metrics/enabled",
		func(m *pb.MethodSetting, b bool) { m.MetricsEnabled = b }),
	{path: "/{resourcePath}/{httpMethod}/logging/loglevel", match: "/**/logging/loglevel", ops: opReplace,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			m, e := methodSetting(st, args[0], true)
			if e != nil {
				return e
			}
			lvl := strings.ToUpper(strings.TrimSpace(op.Value))
			if !slices.Contains(loggingLevels, lvl) {
				return badRequest("Invalid logging level %q: want OFF, ERROR or INFO", truncate(op.Value))
			}
			m.LoggingLevel = lvl
			return nil
		}},
	methodFlag("/{resourcePath}/{httpMethod}/logging/dataTrace", "/**/logging/dataTrace",
		func(m *pb.MethodSetting, b bool) { m.DataTraceEnabled = b }),
	methodFlag("/{resourcePath}/{httpMethod}/caching/enabled", "/**/caching/enabled",
		func(m *pb.MethodSetting, b bool) { m.CachingEnabled = b }),
	{path: "/{resourcePath}/{httpMethod}/caching/ttlInSeconds", match: "/**/caching/ttlInSeconds", ops: opReplace,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			m, e := methodSetting(st, args[0], true)
			if e != nil {
				return e
			}
			n, e := patchInt(op, 0, rules.MaxCacheTTL)
			m.CacheTtlInSeconds = int32(n)
			return e
		}},
	methodFlag("/{resourcePath}/{httpMethod}/caching/dataEncrypted", "/**/caching/dataEncrypted",
		func(m *pb.MethodSetting, b bool) { m.CacheDataEncrypted = b }),
	methodFlag("/{resourcePath}/{httpMethod}/caching/requireAuthorizationForCacheControl", "/**/caching/requireAuthorizationForCacheControl",
		func(m *pb.MethodSetting, b bool) { m.RequireAuthorizationForCacheControl = b }),
	{path: "/{resourcePath}/{httpMethod}/caching/unauthorizedCacheControlHeaderStrategy",
		match: "/**/caching/unauthorizedCacheControlHeaderStrategy", ops: opReplace,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			m, e := methodSetting(st, args[0], true)
			if e != nil {
				return e
			}
			m.UnauthorizedCacheControlHeaderStrategy = strings.TrimSpace(op.Value)
			return nil
		}},
	{path: "/{resourcePath}/{httpMethod}", match: "/**", ops: opRemove,
		remove: func(st *pb.Stage, args []string, _ patchOp) *apiError {
			key, e := methodSettingKey(args[0])
			if e != nil {
				return e
			}
			if _, ok := st.MethodSettings[key]; !ok {
				return notFound("No method setting " + truncate(escapeMethodKey(key)) + " in stage " + st.StageName)
			}
			delete(st.MethodSettings, key)
			return nil
		}},
}

// methodFlag is the row of a boolean method setting.
func methodFlag(path, match string, set func(*pb.MethodSetting, bool)) patchRule[*pb.Stage] {
	return patchRule[*pb.Stage]{path: path, match: match, ops: opReplace,
		set: func(st *pb.Stage, args []string, op patchOp) *apiError {
			m, e := methodSetting(st, args[0], true)
			if e != nil {
				return e
			}
			b, e := patchStrictBool(op)
			set(m, b)
			return e
		}}
}

func accessLogOf(st *pb.Stage) *pb.AccessLogSettings {
	if st.AccessLogSettings == nil {
		st.AccessLogSettings = &pb.AccessLogSettings{}
	}
	return st.AccessLogSettings
}

// methodSettingKey turns the "{resourcePath}/{httpMethod}" of a patch path
// into the key a method setting is stored under: "*/*", or the resource
// path with "~1" and "~0" unescaped and a leading "/" ("/pets/GET").
func methodSettingKey(raw string) (string, *apiError) {
	i := strings.LastIndexByte(raw, '/')
	if i < 0 {
		return "", badRequest("Invalid method setting path %q: want /{resourcePath}/{httpMethod}", truncate(raw))
	}
	res, err := unescapePointer(raw[:i])
	if err != nil {
		return "", badRequest("Invalid patch path %q: %v", truncate(raw), err)
	}
	if res != "*" && !strings.HasPrefix(res, "/") {
		res = "/" + res
	}
	key := res + raw[i:]
	if e := checkStageMethodKey(key); e != nil {
		return "", e
	}
	return key, nil
}

// escapeMethodKey shows a stored method setting key as the original does:
// the resource path as one JSON Pointer segment ("~1pets/GET").
func escapeMethodKey(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 || key == "*/*" {
		return key
	}
	res := strings.ReplaceAll(key[:i], "~", "~0")
	return strings.ReplaceAll(res, "/", "~1") + key[i:]
}

// methodSetting returns the setting a patch path names; create says whether
// a missing one is made (set) or not found (remove).
func methodSetting(st *pb.Stage, raw string, create bool) (*pb.MethodSetting, *apiError) {
	key, e := methodSettingKey(raw)
	if e != nil {
		return nil, e
	}
	m := st.MethodSettings[key]
	if m != nil {
		return m, nil
	}
	if !create {
		return nil, notFound("No method setting " + truncate(escapeMethodKey(key)) + " in stage " + st.StageName)
	}
	if st.MethodSettings == nil {
		st.MethodSettings = map[string]*pb.MethodSetting{}
	}
	m = &pb.MethodSetting{}
	st.MethodSettings[key] = m
	return m, nil
}

// patchStage applies UpdateStage's operations, then validates the stage.
func patchStage(st *pb.Stage, ops []patchOp, acct *pb.ThrottleSettings) *apiError {
	if e := applyPatch(stagePatch, st, ops); e != nil {
		return e
	}
	return checkStage(st, acct)
}
