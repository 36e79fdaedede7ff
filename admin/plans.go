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
	// QuotaNotifications is a Tollgate extension (notify/doc.go).
	QuotaNotifications *quotaNotificationsIn `json:"quotaNotifications"`
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
	if n := req.QuotaNotifications; n != nil {
		p.QuotaNotifications = &pb.QuotaNotifications{WebhookUrl: n.WebhookURL}
		for _, t := range n.Thresholds {
			if t < 1 || t > rules.MaxNotifyThreshold {
				return badRequest("Invalid quota notification threshold %d: a percent from 1 to %d", t, rules.MaxNotifyThreshold)
			}
			p.QuotaNotifications.Thresholds = append(p.QuotaNotifications.Thresholds, int32(t))
		}
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
	return writePage(w, q, plans, func(p *pb.UsagePlan) cursor { return cursor{p.GetCreatedDate(), p.GetId()} },
		shown(func(p *pb.UsagePlan) usagePlanView { return planView(p, tagsOmit) }))
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

// planPatch is UpdateUsagePlan's patch table. The stage paths name a stage
// as "{apiId}:{stageName}"; a method's resource path follows raw, slashes
// included: /apiStages/a:prod/throttle//pets/GET/rateLimit names "/pets/GET".
var planPatch = patchTable[*pb.UsagePlan]{
	{path: "/name", ops: opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		p.Name = op.Value
		return nil
	}},
	{path: "/description", ops: opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		p.Description = op.Value
		return nil
	}},
	{path: "/apiStages", ops: opAdd | opRemove, set: addPlanStage, remove: removePlanStage},
	{path: "/quota", ops: opRemove, remove: func(p *pb.UsagePlan, _ []string, _ patchOp) *apiError {
		p.Quota = nil
		return nil
	}},
	{path: "/throttle", ops: opRemove, remove: func(p *pb.UsagePlan, _ []string, _ patchOp) *apiError {
		p.Throttle = nil
		return nil
	}},
	{path: "/productCode", ops: opAdd | opReplace | opRemove,
		set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
			p.ProductCode = op.Value
			return nil
		},
		remove: func(p *pb.UsagePlan, _ []string, _ patchOp) *apiError {
			p.ProductCode = ""
			return nil
		}},
	{path: "/quota/limit", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		n, e := patchInt(op, 0, limiter.MaxQuotaLimit)
		quotaOfPlan(p).Limit = n
		return e
	}},
	{path: "/quota/offset", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		n, e := patchInt(op, 0, math.MaxInt32)
		quotaOfPlan(p).Offset = int32(n)
		return e
	}},
	{path: "/quota/period", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		quotaOfPlan(p).Period = strings.TrimSpace(op.Value)
		return nil
	}},
	{path: "/quotaNotifications", ops: opRemove, remove: func(p *pb.UsagePlan, _ []string, _ patchOp) *apiError {
		p.QuotaNotifications = nil
		return nil
	}},
	{path: "/quotaNotifications/webhookUrl", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		notificationsOf(p).WebhookUrl = op.Value
		return nil
	}},
	{path: "/quotaNotifications/thresholds", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		th, e := parseThresholds(op.Value)
		notificationsOf(p).Thresholds = th
		return e
	}},
	{path: "/throttle/burstLimit", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		n, e := patchBurst(op)
		throttleOfPlan(p).BurstLimit = n
		return e
	}},
	{path: "/throttle/rateLimit", ops: opAdd | opReplace, set: func(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
		f, e := patchRate(op)
		throttleOfPlan(p).RateLimit = f
		return e
	}},
	{path: "/apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>/rateLimit",
		match: "/apiStages/*/throttle/**/rateLimit", ops: opReplace,
		set: func(p *pb.UsagePlan, args []string, op patchOp) *apiError {
			t, e := planMethodThrottle(p, args)
			if e != nil {
				return e
			}
			t.RateLimit, e = patchRate(op)
			return e
		}},
	{path: "/apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>/burstLimit",
		match: "/apiStages/*/throttle/**/burstLimit", ops: opReplace,
		set: func(p *pb.UsagePlan, args []string, op patchOp) *apiError {
			t, e := planMethodThrottle(p, args)
			if e != nil {
				return e
			}
			t.BurstLimit, e = patchBurst(op)
			return e
		}},
	{path: "/apiStages/<apidId:stageName>/throttle/<resourcePath>/<httpMethod>",
		match: "/apiStages/*/throttle/**", ops: opRemove,
		remove: func(p *pb.UsagePlan, args []string, _ patchOp) *apiError {
			st, e := planStage(p, args[0])
			if e != nil {
				return e
			}
			if e := checkPlanMethodKey(args[0], args[1]); e != nil {
				return e
			}
			if _, ok := st.Throttle[args[1]]; !ok {
				return notFound("No throttle for method " + truncate(args[1]) + " in API Stage " + truncate(args[0]) + " of usage plan " + p.Id)
			}
			delete(st.Throttle, args[1])
			return nil
		}},
	{path: "/apiStages/<apidId:stageName>/throttle",
		match: "/apiStages/*/throttle", ops: opReplace | opRemove,
		set: setPlanStageThrottles,
		remove: func(p *pb.UsagePlan, args []string, _ patchOp) *apiError {
			st, e := planStage(p, args[0])
			if e != nil {
				return e
			}
			st.Throttle = nil
			return nil
		}},
}

func quotaOfPlan(p *pb.UsagePlan) *pb.QuotaSettings {
	if p.Quota == nil {
		p.Quota = &pb.QuotaSettings{}
	}
	return p.Quota
}

func throttleOfPlan(p *pb.UsagePlan) *pb.ThrottleSettings {
	if p.Throttle == nil {
		p.Throttle = &pb.ThrottleSettings{}
	}
	return p.Throttle
}

// patchPlan applies patch operations to a plan, then validates the result.
func patchPlan(p *pb.UsagePlan, ops []patchOp) *apiError {
	if e := applyPatch(planPatch, p, ops); e != nil {
		return e
	}
	return checkPlan(p)
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

// planStage finds the stage a path's "{apiId}:{stageName}" names.
func planStage(p *pb.UsagePlan, ref string) (*pb.ApiStage, *apiError) {
	apiID, stage, ok := parseStageRef(ref)
	if !ok {
		return nil, badRequest("Invalid API Stage specified")
	}
	i := findStage(p, apiID, stage)
	if i < 0 {
		return nil, stageNotInPlan(p, apiID, stage)
	}
	return p.ApiStages[i], nil
}

// planMethodThrottle returns the throttle of method args[1] in stage
// args[0], made when missing.
func planMethodThrottle(p *pb.UsagePlan, args []string) (*pb.ThrottleSettings, *apiError) {
	st, e := planStage(p, args[0])
	if e != nil {
		return nil, e
	}
	if e := checkPlanMethodKey(args[0], args[1]); e != nil {
		return nil, e
	}
	if st.Throttle == nil {
		st.Throttle = map[string]*pb.ThrottleSettings{}
	}
	t := st.Throttle[args[1]]
	if t == nil {
		t = &pb.ThrottleSettings{}
		st.Throttle[args[1]] = t
	}
	return t, nil
}

// setPlanStageThrottles replaces a plan stage's method throttles with the
// JSON object the value holds.
func setPlanStageThrottles(p *pb.UsagePlan, args []string, op patchOp) *apiError {
	st, e := planStage(p, args[0])
	if e != nil {
		return e
	}
	var in map[string]throttleIn
	if err := decodeStrict([]byte(op.Value), &in); err != nil {
		return badRequest("Invalid value for %s: want a JSON object such as {\"/pets/GET\":{\"rateLimit\":10.0,\"burstLimit\":20}}: %v", truncate(op.Path), err)
	}
	th, e := methodThrottles(args[0], in)
	if e != nil {
		return e
	}
	st.Throttle = th
	return nil
}

func addPlanStage(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
	apiID, stage, ok := parseStageRef(op.Value)
	if !ok {
		return badRequest("Invalid API Stage specified")
	}
	if findStage(p, apiID, stage) >= 0 {
		return conflict("API Stage " + apiID + ":" + stage + " is already in usage plan " + p.Id)
	}
	p.ApiStages = append(p.ApiStages, &pb.ApiStage{ApiId: apiID, Stage: stage})
	return nil
}

func removePlanStage(p *pb.UsagePlan, _ []string, op patchOp) *apiError {
	apiID, stage, ok := parseStageRef(op.Value)
	if !ok {
		return badRequest("Invalid API Stage specified")
	}
	i := findStage(p, apiID, stage)
	if i < 0 {
		return stageNotInPlan(p, apiID, stage)
	}
	p.ApiStages = append(p.ApiStages[:i], p.ApiStages[i+1:]...)
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
