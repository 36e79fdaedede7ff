package admin

import (
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

type throttleIn struct {
	BurstLimit int64   `json:"burstLimit"`
	RateLimit  float64 `json:"rateLimit"`
}

type quotaIn struct {
	Limit  int64  `json:"limit"`
	Offset int64  `json:"offset"`
	Period string `json:"period"`
}

type apiStageIn struct {
	APIID    string                `json:"apiId"`
	Stage    string                `json:"stage"`
	Throttle map[string]throttleIn `json:"throttle"`
}

type createUsagePlanRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	APIStages   []apiStageIn      `json:"apiStages"`
	Throttle    *throttleIn       `json:"throttle"`
	Quota       *quotaIn          `json:"quota"`
	Tags        map[string]string `json:"tags"`
}

// throttleFromIn validates a throttle as given and converts it.
func throttleFromIn(where string, t throttleIn) (*pb.ThrottleSettings, *apiError) {
	if e := checkThrottle(where, t.RateLimit, t.BurstLimit); e != nil {
		return nil, e
	}
	return &pb.ThrottleSettings{RateLimit: t.RateLimit, BurstLimit: int32(t.BurstLimit)}, nil
}

func quotaFromIn(q quotaIn) (*pb.QuotaSettings, *apiError) {
	p, err := limiter.ParsePeriod(q.Period)
	if err != nil {
		return nil, badRequest("Invalid quota: %v", err)
	}
	if err := limiter.ValidateQuota(p, q.Offset, q.Limit); err != nil {
		return nil, badRequest("Invalid quota: %v", err)
	}
	return &pb.QuotaSettings{Limit: q.Limit, Offset: int32(q.Offset), Period: q.Period}, nil
}

// methodThrottles converts the per-method throttles of a plan stage.
func methodThrottles(stage string, in map[string]throttleIn) (map[string]*pb.ThrottleSettings, *apiError) {
	if len(in) > maxMethodThrottle {
		return nil, badRequest("Too many method throttles for API Stage %s: at most %d are allowed", stage, maxMethodThrottle)
	}
	out := make(map[string]*pb.ThrottleSettings, len(in))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		if e := checkPlanMethodKey(stage, k); e != nil {
			return nil, e
		}
		t, e := throttleFromIn("throttle for "+k+" in API Stage "+stage, in[k])
		if e != nil {
			return nil, e
		}
		out[k] = t
	}
	return out, nil
}

// checkPlan validates a whole plan, as created or as patched.
func checkPlan(p *pb.UsagePlan) *apiError { return invalid(rules.Plan(p)) }

func (s *Server) createUsagePlan(w http.ResponseWriter, r *http.Request) *apiError {
	var req createUsagePlanRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	p := &pb.UsagePlan{Id: s.newPlanID(), Name: req.Name, Description: req.Description, Tags: req.Tags}
	if req.Throttle != nil {
		t, e := throttleFromIn("throttle", *req.Throttle)
		if e != nil {
			return e
		}
		p.Throttle = t
	}
	if req.Quota != nil {
		q, e := quotaFromIn(*req.Quota)
		if e != nil {
			return e
		}
		p.Quota = q
	}
	for _, st := range req.APIStages {
		ref := st.APIID + ":" + st.Stage
		th, e := methodThrottles(ref, st.Throttle)
		if e != nil {
			return e
		}
		p.ApiStages = append(p.ApiStages, &pb.ApiStage{ApiId: st.APIID, Stage: st.Stage, Throttle: th})
	}
	if e := checkPlan(p); e != nil {
		return e
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: p, Create: true}}}); e != nil {
		return e
	}
	if cur := s.store.Config().GetUsagePlans()[p.Id]; cur != nil {
		p = cur
	}
	writeJSON(w, http.StatusCreated, planView(p, tagsIfAny))
	return nil
}

func (s *Server) listUsagePlans(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	pr, e := parsePage(q)
	if e != nil {
		return e
	}
	cfg := s.store.Config()
	keyID := q.Get("keyId")
	var plans []*pb.UsagePlan
	for id, p := range cfg.GetUsagePlans() {
		if keyID != "" {
			if _, in := cfg.GetPlanKeys()[id].GetKeys()[keyID]; !in {
				continue
			}
		}
		plans = append(plans, p)
	}
	page, next := paginate(plans, func(p *pb.UsagePlan) cursor { return cursor{p.GetCreatedDate(), p.GetId()} }, pr)
	out := listView[usagePlanView]{Item: make([]usagePlanView, 0, len(page)), Position: next}
	for _, p := range page {
		out.Item = append(out.Item, planView(p, tagsOmit))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getUsagePlan(w http.ResponseWriter, r *http.Request) *apiError {
	p := s.store.Config().GetUsagePlans()[r.PathValue("usageplan_id")]
	if p == nil {
		return notFound(msgPlanNotFound)
	}
	writeJSON(w, http.StatusOK, planView(p, tagsAlways))
	return nil
}

func (s *Server) deleteUsagePlan(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("usageplan_id")
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteUsagePlan{DeleteUsagePlan: &pb.DeleteUsagePlan{Id: id}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

func (s *Server) updateUsagePlan(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("usageplan_id")
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	p, e := update(s, r.Context(),
		func(c *pb.Config) (*pb.UsagePlan, uint64, *apiError) {
			p := c.GetUsagePlans()[id]
			if p == nil {
				return nil, 0, notFound(msgPlanNotFound)
			}
			return p, p.GetRevision(), nil
		},
		func(p *pb.UsagePlan, _ *pb.Config) *apiError { return patchPlan(p, ops) },
		func(p *pb.UsagePlan, rev uint64) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: p, IfRevision: rev}}}
		})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, planView(p, tagsAlways))
	return nil
}

// The paths each op takes on a usage plan, as the original lists them.
var (
	planAddPaths = []string{"/apiStages", "/productCode", "/quota/limit", "/quota/offset", "/quota/period",
		"/throttle/burstLimit", "/throttle/rateLimit"}
	planReplacePaths = []string{"/name", "/description", "/productCode", "/quota/limit", "/quota/offset", "/quota/period",
		"/throttle/burstLimit", "/throttle/rateLimit",
		"/apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>/rateLimit",
		"/apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>/burstLimit",
		"/apiStages/<apidId:stageName>/throttle"}
	planRemovePaths = []string{"/apiStages", "/quota", "/throttle", "/productCode",
		"/apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>", "/apiStages/<apidId:stageName>/throttle"}
)

func planPaths(op string) []string {
	switch op {
	case "add":
		return planAddPaths
	case "replace":
		return planReplacePaths
	case "remove":
		return planRemovePaths
	}
	return nil
}

// patchPlan applies patch operations to a plan, then validates the result.
func patchPlan(p *pb.UsagePlan, ops []patchOp) *apiError {
	if e := checkPatchOps(ops); e != nil {
		return e
	}
	for _, op := range ops {
		if e := patchPlanOp(p, op); e != nil {
			return e
		}
	}
	return checkPlan(p)
}

func patchPlanOp(p *pb.UsagePlan, op patchOp) *apiError {
	bad := func() *apiError { return badPatchPath(op, planPaths(op.Op)) }
	set := op.Op == "add" || op.Op == "replace"
	switch op.Path {
	case "/name", "/description":
		if op.Op != "replace" {
			return bad()
		}
		if op.Path == "/name" {
			p.Name = op.Value
		} else {
			p.Description = op.Value
		}
	case "/productCode":
		switch {
		case set:
			p.ProductCode = op.Value
		case op.Op == "remove":
			p.ProductCode = ""
		default:
			return bad()
		}
	case "/apiStages":
		return patchPlanStages(p, op, bad)
	case "/quota", "/throttle":
		if op.Op != "remove" {
			return bad()
		}
		if op.Path == "/quota" {
			p.Quota = nil
		} else {
			p.Throttle = nil
		}
	case "/quota/limit", "/quota/offset", "/quota/period":
		if !set {
			return bad()
		}
		if p.Quota == nil {
			p.Quota = &pb.QuotaSettings{}
		}
		switch op.Path {
		case "/quota/limit":
			n, e := patchInt(op, 0, limiter.MaxQuotaLimit)
			if e != nil {
				return e
			}
			p.Quota.Limit = n
		case "/quota/offset":
			n, e := patchInt(op, 0, math.MaxInt32)
			if e != nil {
				return e
			}
			p.Quota.Offset = int32(n)
		default:
			p.Quota.Period = strings.TrimSpace(op.Value)
		}
	case "/throttle/burstLimit", "/throttle/rateLimit":
		if !set {
			return bad()
		}
		if p.Throttle == nil {
			p.Throttle = &pb.ThrottleSettings{}
		}
		if op.Path == "/throttle/burstLimit" {
			n, e := patchBurst(op)
			if e != nil {
				return e
			}
			p.Throttle.BurstLimit = n
		} else {
			f, e := patchRate(op)
			if e != nil {
				return e
			}
			p.Throttle.RateLimit = f
		}
	default:
		if strings.HasPrefix(op.Path, "/apiStages/") {
			return patchPlanStageThrottle(p, op, bad)
		}
		return bad()
	}
	return nil
}

// parseStageRef reads "apiId:stageName".
func parseStageRef(v string) (apiID, stage string, ok bool) {
	apiID, stage, ok = strings.Cut(strings.TrimSpace(v), ":")
	if !ok || apiID == "" || stage == "" || strings.ContainsAny(apiID, "/:") || !isStageName(stage) {
		return "", "", false
	}
	return apiID, stage, true
}

func findStage(p *pb.UsagePlan, apiID, stage string) int {
	for i, s := range p.ApiStages {
		if s.ApiId == apiID && s.Stage == stage {
			return i
		}
	}
	return -1
}

func stageNotInPlan(p *pb.UsagePlan, apiID, stage string) *apiError {
	return notFound("Invalid API Stage {api: " + truncate(apiID) + ", stage: " + truncate(stage) + "} specified for usageplan " + p.Id)
}

func patchPlanStages(p *pb.UsagePlan, op patchOp, bad func() *apiError) *apiError {
	if op.Op != "add" && op.Op != "remove" {
		return bad()
	}
	apiID, stage, ok := parseStageRef(op.Value)
	if !ok {
		return badRequest("Invalid API Stage specified")
	}
	i := findStage(p, apiID, stage)
	if op.Op == "add" {
		if i >= 0 {
			return conflict("API Stage " + apiID + ":" + stage + " is already in usage plan " + p.Id)
		}
		p.ApiStages = append(p.ApiStages, &pb.ApiStage{ApiId: apiID, Stage: stage})
		return nil
	}
	if i < 0 {
		return stageNotInPlan(p, apiID, stage)
	}
	p.ApiStages = append(p.ApiStages[:i], p.ApiStages[i+1:]...)
	return nil
}

// patchPlanStageThrottle handles /apiStages/{apiId}:{stage}/throttle[...].
// Resource paths appear raw, slashes included:
// /apiStages/a:prod/throttle//pets/GET/rateLimit names "/pets/GET".
func patchPlanStageThrottle(p *pb.UsagePlan, op patchOp, bad func() *apiError) *apiError {
	rest := strings.TrimPrefix(op.Path, "/apiStages/")
	ref, tail, _ := strings.Cut(rest, "/")
	if tail != "throttle" && !strings.HasPrefix(tail, "throttle/") {
		return bad()
	}
	apiID, stage, ok := parseStageRef(ref)
	if !ok {
		return bad()
	}
	method := strings.TrimPrefix(tail, "throttle")
	method = strings.TrimPrefix(method, "/")
	var field string
	switch {
	case method == "":
		if op.Op != "replace" && op.Op != "remove" {
			return bad()
		}
	case op.Op == "replace":
		switch {
		case strings.HasSuffix(method, "/rateLimit"):
			field, method = "rateLimit", strings.TrimSuffix(method, "/rateLimit")
		case strings.HasSuffix(method, "/burstLimit"):
			field, method = "burstLimit", strings.TrimSuffix(method, "/burstLimit")
		default:
			return bad()
		}
	case op.Op != "remove":
		return bad()
	}
	i := findStage(p, apiID, stage)
	if i < 0 {
		return stageNotInPlan(p, apiID, stage)
	}
	st := p.ApiStages[i]
	if method == "" {
		if op.Op == "remove" {
			st.Throttle = nil
			return nil
		}
		var in map[string]throttleIn
		if err := decodeStrict([]byte(op.Value), &in); err != nil {
			return badRequest("Invalid value for %s: want a JSON object such as {\"/pets/GET\":{\"rateLimit\":10.0,\"burstLimit\":20}}: %v", truncate(op.Path), err)
		}
		th, e := methodThrottles(ref, in)
		if e != nil {
			return e
		}
		st.Throttle = th
		return nil
	}
	if e := checkPlanMethodKey(ref, method); e != nil {
		return e
	}
	if op.Op == "remove" {
		if _, ok := st.Throttle[method]; !ok {
			return notFound("No throttle for method " + method + " in API Stage " + ref + " of usage plan " + p.Id)
		}
		delete(st.Throttle, method)
		return nil
	}
	if st.Throttle == nil {
		st.Throttle = map[string]*pb.ThrottleSettings{}
	}
	t := st.Throttle[method]
	if t == nil {
		t = &pb.ThrottleSettings{}
		st.Throttle[method] = t
	}
	if field == "rateLimit" {
		f, e := patchRate(op)
		if e != nil {
			return e
		}
		t.RateLimit = f
	} else {
		n, e := patchBurst(op)
		if e != nil {
			return e
		}
		t.BurstLimit = n
	}
	return nil
}

func (s *Server) newPlanID() string {
	return freshID(newPlanID, func(id string) bool { return s.store.Config().GetUsagePlans()[id] != nil })
}

// createDefaultPlan is the extension POST
// /restapis/{id}/stages/{stage}/defaultusageplan.
func (s *Server) createDefaultPlan(w http.ResponseWriter, r *http.Request) *apiError {
	var req struct{}
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	apiID, stage := r.PathValue("restapi_id"), r.PathValue("stage_name")
	if !checkPathID(apiID) || !isStageName(stage) {
		return notFound(msgStageNotFound)
	}
	id := s.newPlanID()
	res, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_CreateDefaultPlan{CreateDefaultPlan: &pb.CreateDefaultPlan{
		PlanId: id, RestApiId: apiID, StageName: stage, Name: "default-" + apiID + "-" + stage,
	}}})
	if e != nil {
		return e
	}
	if res.GetId() != "" {
		id = res.GetId()
	}
	p := s.store.Config().GetUsagePlans()[id]
	if p == nil {
		return unavailable("The default usage plan was created but is not visible yet; read it with GET /usageplans/" + id)
	}
	writeJSON(w, http.StatusCreated, planView(p, tagsIfAny))
	return nil
}
