package cluster

import (
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

const (
	codeBad      = pb.ErrorCode_ERROR_CODE_BAD_REQUEST
	codeNotFound = pb.ErrorCode_ERROR_CODE_NOT_FOUND
	codeConflict = pb.ErrorCode_ERROR_CODE_CONFLICT
)

// applyConfig applies a configuration command to c, a private copy of the
// current configuration. On failure c is thrown away, so a command changes
// all it says or nothing.
func (f *FSM) applyConfig(a *applyCtx, c *pb.Config, cmd *pb.Command) *pb.Result {
	f.keys.sync(f.config.Load(), c)
	res := f.applyConfigBody(a, c, cmd)
	if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
		f.keys.of = c // published next
	}
	return res
}

func (f *FSM) applyConfigBody(a *applyCtx, c *pb.Config, cmd *pb.Command) *pb.Result {
	switch b := cmd.Body.(type) {
	case *pb.Command_CreateRestApi:
		return applyCreateRestApi(a, c, b.CreateRestApi)
	case *pb.Command_UpdateRestApi:
		return applyUpdateRestApi(a, c, b.UpdateRestApi)
	case *pb.Command_DeleteRestApi:
		return applyDeleteRestApi(a, c, b.DeleteRestApi)
	case *pb.Command_CreateDeployment:
		return applyCreateDeployment(a, c, b.CreateDeployment)
	case *pb.Command_PutStage:
		return applyPutStage(a, c, b.PutStage)
	case *pb.Command_DeleteStage:
		return applyDeleteStage(a, c, b.DeleteStage)
	case *pb.Command_DeleteDeployment:
		return applyDeleteDeployment(c, b.DeleteDeployment)
	case *pb.Command_UpdateDeployment:
		return applyUpdateDeployment(c, b.UpdateDeployment)
	case *pb.Command_PutUsagePlan:
		return applyPutUsagePlan(a, c, b.PutUsagePlan)
	case *pb.Command_DeleteUsagePlan:
		res := applyDeleteUsagePlan(c, b.DeleteUsagePlan)
		if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
			delete(f.ledgers, b.DeleteUsagePlan.Id)
			dropPlanNotices(c, b.DeleteUsagePlan.Id)
		}
		return res
	case *pb.Command_PutApiKey:
		return f.applyPutApiKey(a, c, b.PutApiKey)
	case *pb.Command_DeleteApiKey:
		res := f.applyDeleteApiKey(a, c, b.DeleteApiKey)
		if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
			f.forgetDeletedKeys(a, c, b.DeleteApiKey)
		}
		return res
	case *pb.Command_ImportApiKeys:
		return f.applyImportApiKeys(a, c, b.ImportApiKeys)
	case *pb.Command_CreateUsagePlanKey:
		return applyCreateUsagePlanKey(a, c, b.CreateUsagePlanKey)
	case *pb.Command_DeleteUsagePlanKey:
		return applyDeleteUsagePlanKey(a, c, b.DeleteUsagePlanKey)
	case *pb.Command_UpdateAccount:
		if b.UpdateAccount.GetAccount() == nil {
			return fail(codeBad, "account settings are missing")
		}
		if r := checkAccount(b.UpdateAccount.Account); r != nil {
			return r
		}
		c.Account = b.UpdateAccount.Account
		return &pb.Result{}
	case *pb.Command_CreateDefaultPlan:
		return applyCreateDefaultPlan(a, c, b.CreateDefaultPlan)
	case *pb.Command_SetDataKey:
		return applySetDataKey(c, b.SetDataKey)
	case *pb.Command_PutAdminCredential:
		return applyPutAdminCredential(a, c, b.PutAdminCredential)
	case *pb.Command_DeleteAdminCredential:
		return applyDeleteAdminCredential(c, b.DeleteAdminCredential)
	case *pb.Command_SealApiKeys:
		return f.applySealApiKeys(c, b.SealApiKeys)
	case *pb.Command_PutResource:
		return applyPutResource(a, c, b.PutResource)
	case *pb.Command_DeleteResource:
		return applyDeleteResource(a, c, b.DeleteResource)
	case *pb.Command_PutResourceTree:
		return applyPutResourceTree(a, c, b.PutResourceTree)
	case *pb.Command_RecordQuotaNotices:
		return applyRecordQuotaNotices(a, c, b.RecordQuotaNotices)
	default:
		return fail(codeBad, "unsupported command %T", cmd.Body)
	}
}

func stageKey(apiID, stage string) string { return apiID + "/" + stage }

func planCovers(p *pb.UsagePlan, apiID, stage string) bool {
	for _, s := range p.ApiStages {
		if s.ApiId == apiID && s.Stage == stage {
			return true
		}
	}
	return false
}

// plansUsingStage lists the ids of the plans that cover a stage.
func plansUsingStage(c *pb.Config, apiID, stage string) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(c.UsagePlans)) {
		if planCovers(c.UsagePlans[id], apiID, stage) {
			out = append(out, id)
		}
	}
	return out
}

// keyConflict reports whether attaching keyID to planID (covering stages)
// would put the key in two plans that cover the same stage.
func keyConflict(c *pb.Config, keyID, planID string, stages []*pb.ApiStage) *pb.Result {
	for _, otherID := range slices.Sorted(maps.Keys(c.PlanKeys)) {
		if otherID == planID {
			continue
		}
		if _, in := c.PlanKeys[otherID].Keys[keyID]; !in {
			continue
		}
		other := c.UsagePlans[otherID]
		if other == nil {
			continue
		}
		for _, s := range stages {
			if planCovers(other, s.ApiId, s.Stage) {
				return fail(codeConflict, "API Key %s is already associated with usage plan %s on API Stage %s:%s; a key can be in only one usage plan for each stage", keyID, otherID, s.ApiId, s.Stage)
			}
		}
	}
	return nil
}

func applyCreateRestApi(a *applyCtx, c *pb.Config, m *pb.CreateRestApi) *pb.Result {
	api := m.GetApi()
	if api == nil || api.Id == "" {
		return fail(codeBad, "RestApi id is missing")
	}
	if r := checkRestApi(api); r != nil {
		return r
	}
	if _, ok := c.RestApis[api.Id]; ok {
		return fail(codeConflict, "RestApi %s already exists", api.Id)
	}
	api.CreatedDate = a.sec
	api.Revision = a.index
	if api.ApiKeySource == "" {
		api.ApiKeySource = "HEADER"
	}
	c.RestApis[api.Id] = api
	return &pb.Result{Id: api.Id}
}

func applyUpdateRestApi(a *applyCtx, c *pb.Config, m *pb.UpdateRestApi) *pb.Result {
	api := m.GetApi()
	if api == nil {
		return fail(codeBad, "RestApi is missing")
	}
	if r := checkRestApi(api); r != nil {
		return r
	}
	old, ok := c.RestApis[api.Id]
	if !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	if m.IfRevision != 0 && m.IfRevision != old.Revision {
		return fail(codeConflict, "RestApi %s was changed concurrently; retry", api.Id)
	}
	api.CreatedDate = old.CreatedDate
	api.Revision = a.index
	c.RestApis[api.Id] = api
	return &pb.Result{Id: api.Id}
}

func applyDeleteRestApi(a *applyCtx, c *pb.Config, m *pb.DeleteRestApi) *pb.Result {
	if _, ok := c.RestApis[m.Id]; !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Stages)) {
		s := c.Stages[k]
		if s.RestApiId != m.Id {
			continue
		}
		plans := plansUsingStage(c, m.Id, s.StageName)
		if len(plans) > 0 && !m.DetachPlans {
			return fail(codeBad, "Cannot delete API %s because usage plans are associated with its stage %s, including %s", m.Id, s.StageName, plans[0])
		}
		detachStage(a, c, plans, m.Id, s.StageName)
	}
	for k, s := range c.Stages {
		if s.RestApiId == m.Id {
			delete(c.Stages, k)
		}
	}
	for k, d := range c.Deployments {
		if d.RestApiId == m.Id {
			delete(c.Deployments, k)
		}
	}
	deleteResources(c, m.Id)
	delete(c.RestApis, m.Id)
	return &pb.Result{Id: m.Id}
}

func applyCreateDeployment(a *applyCtx, c *pb.Config, m *pb.CreateDeployment) *pb.Result {
	d := m.GetDeployment()
	if d == nil || d.Id == "" {
		return fail(codeBad, "Deployment id is missing")
	}
	if r := checkDeployment(d, m.GetStage(), rules.AccountThrottle(c)); r != nil {
		return r
	}
	if _, ok := c.RestApis[d.RestApiId]; !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	dk := stageKey(d.RestApiId, d.Id)
	if _, ok := c.Deployments[dk]; ok {
		return fail(codeConflict, "Deployment %s already exists", d.Id)
	}
	if r := snapshotResources(c, d.RestApiId, d.Id); r != nil {
		return r
	}
	d.CreatedDate = a.sec
	c.Deployments[dk] = d
	if s := m.GetStage(); s != nil && s.StageName != "" {
		s.RestApiId = d.RestApiId
		s.DeploymentId = d.Id
		sk := stageKey(s.RestApiId, s.StageName)
		if old, ok := c.Stages[sk]; ok {
			// Redeploying to an existing stage moves it to the new
			// deployment and keeps its settings; given variables are set.
			upd := proto.Clone(old).(*pb.Stage)
			upd.DeploymentId = d.Id
			if upd.Variables == nil {
				upd.Variables = map[string]string{}
			}
			for k, v := range s.Variables {
				upd.Variables[k] = v
			}
			upd.LastUpdatedDate = a.sec
			upd.Revision = a.index
			c.Stages[sk] = upd
		} else {
			s.CreatedDate = a.sec
			s.LastUpdatedDate = a.sec
			s.Revision = a.index
			c.Stages[sk] = s
		}
	}
	return &pb.Result{Id: d.Id}
}

func applyPutStage(a *applyCtx, c *pb.Config, m *pb.PutStage) *pb.Result {
	s := m.GetStage()
	if s == nil || s.StageName == "" {
		return fail(codeBad, "Stage name is missing")
	}
	if r := checkStage(s, rules.AccountThrottle(c)); r != nil {
		return r
	}
	if _, ok := c.RestApis[s.RestApiId]; !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	if s.DeploymentId != "" {
		if _, ok := c.Deployments[stageKey(s.RestApiId, s.DeploymentId)]; !ok {
			return fail(codeNotFound, "Invalid deployment identifier specified")
		}
	}
	sk := stageKey(s.RestApiId, s.StageName)
	old, exists := c.Stages[sk]
	switch {
	case m.Create && exists:
		return fail(codeConflict, "Stage already exists")
	case m.Create:
		s.CreatedDate = a.sec
	case !exists:
		return fail(codeNotFound, "Invalid Stage identifier specified")
	default:
		if m.IfRevision != 0 && m.IfRevision != old.Revision {
			return fail(codeConflict, "Stage %s was changed concurrently; retry", s.StageName)
		}
		s.CreatedDate = old.CreatedDate
	}
	s.LastUpdatedDate = a.sec
	s.Revision = a.index
	c.Stages[sk] = s
	return &pb.Result{Id: s.StageName}
}

func applyDeleteStage(a *applyCtx, c *pb.Config, m *pb.DeleteStage) *pb.Result {
	sk := stageKey(m.RestApiId, m.StageName)
	if _, ok := c.Stages[sk]; !ok {
		return fail(codeNotFound, "Invalid Stage identifier specified")
	}
	plans := plansUsingStage(c, m.RestApiId, m.StageName)
	if len(plans) > 0 && !m.DetachPlans {
		return fail(codeBad, "Cannot delete Stage %s of API %s because usage plans are associated with it, including %s", m.StageName, m.RestApiId, plans[0])
	}
	detachStage(a, c, plans, m.RestApiId, m.StageName)
	delete(c.Stages, sk)
	return &pb.Result{Id: m.StageName}
}

// detachStage removes a stage from the plans that cover it, as the
// original does when the stage or its API is deleted. Each plan changed
// gets a new revision, so a concurrent update of it starts over.
func detachStage(a *applyCtx, c *pb.Config, plans []string, apiID, stage string) {
	for _, id := range plans {
		p := proto.Clone(c.UsagePlans[id]).(*pb.UsagePlan)
		p.ApiStages = slices.DeleteFunc(p.ApiStages, func(s *pb.ApiStage) bool { return s.ApiId == apiID && s.Stage == stage })
		p.Revision = a.index
		c.UsagePlans[id] = p
	}
}

func applyDeleteDeployment(c *pb.Config, m *pb.DeleteDeployment) *pb.Result {
	if r := badID("API", m.RestApiId); r != nil {
		return r
	}
	if r := badID("deployment", m.Id); r != nil {
		return r
	}
	dk := stageKey(m.RestApiId, m.Id)
	if _, ok := c.Deployments[dk]; !ok {
		return fail(codeNotFound, "Invalid Deployment identifier specified")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Stages)) {
		if s := c.Stages[k]; s.RestApiId == m.RestApiId && s.DeploymentId == m.Id {
			return fail(codeBad, "Active stages pointing to this deployment must be moved or deleted")
		}
	}
	delete(c.Deployments, dk)
	delete(c.DeploymentResources, dk)
	return &pb.Result{Id: m.Id}
}

func applyUpdateDeployment(c *pb.Config, m *pb.UpdateDeployment) *pb.Result {
	if r := badID("API", m.RestApiId); r != nil {
		return r
	}
	if r := badID("deployment", m.Id); r != nil {
		return r
	}
	if r := refused(rules.Description("Deployment", m.Description)); r != nil {
		return r
	}
	dk := stageKey(m.RestApiId, m.Id)
	d, ok := c.Deployments[dk]
	if !ok {
		return fail(codeNotFound, "Invalid Deployment identifier specified")
	}
	d = proto.Clone(d).(*pb.Deployment)
	d.Description = m.Description
	c.Deployments[dk] = d
	return &pb.Result{Id: m.Id}
}

func applyPutUsagePlan(a *applyCtx, c *pb.Config, m *pb.PutUsagePlan) *pb.Result {
	p := m.GetPlan()
	if p == nil || p.Id == "" {
		return fail(codeBad, "Usage plan id is missing")
	}
	if r := checkPlan(p); r != nil {
		return r
	}
	old, exists := c.UsagePlans[p.Id]
	switch {
	case m.Create && exists:
		return fail(codeConflict, "Usage plan %s already exists", p.Id)
	case m.Create:
		p.CreatedDate = a.sec
		p.IsDefault = false // only CreateDefaultPlan makes a default plan
	case !exists:
		return fail(codeNotFound, "Invalid Usage Plan ID specified")
	default:
		if m.IfRevision != 0 && m.IfRevision != old.Revision {
			return fail(codeConflict, "Usage plan %s was changed concurrently; retry", p.Id)
		}
		p.CreatedDate = old.CreatedDate
		p.IsDefault = old.IsDefault
	}
	seen := map[string]bool{}
	for _, s := range p.ApiStages {
		if s.ApiId == "" || s.Stage == "" {
			return fail(codeBad, "Invalid API Stage {api: %s, stage: %s} specified for usageplan %s", s.ApiId, s.Stage, p.Id)
		}
		if _, ok := c.Stages[stageKey(s.ApiId, s.Stage)]; !ok {
			return fail(codeNotFound, "Invalid API Stage {api: %s, stage: %s} specified for usageplan %s", s.ApiId, s.Stage, p.Id)
		}
		k := stageKey(s.ApiId, s.Stage)
		if seen[k] {
			return fail(codeBad, "API Stage %s:%s is listed twice in usage plan %s", s.ApiId, s.Stage, p.Id)
		}
		seen[k] = true
	}
	if pk := c.PlanKeys[p.Id]; pk != nil {
		for _, keyID := range slices.Sorted(maps.Keys(pk.Keys)) {
			if res := keyConflict(c, keyID, p.Id, p.ApiStages); res != nil {
				return res
			}
		}
	}
	p.Revision = a.index
	c.UsagePlans[p.Id] = p
	return &pb.Result{Id: p.Id}
}

func applyDeleteUsagePlan(c *pb.Config, m *pb.DeleteUsagePlan) *pb.Result {
	p, ok := c.UsagePlans[m.Id]
	if !ok {
		return fail(codeNotFound, "Invalid Usage Plan ID specified")
	}
	if len(p.ApiStages) > 0 {
		s := p.ApiStages[0]
		return fail(codeBad, "Cannot delete Usage Plan %s because there are API Stages associated with it, including %s:%s", m.Id, s.ApiId, s.Stage)
	}
	delete(c.UsagePlans, m.Id)
	delete(c.PlanKeys, m.Id)
	return &pb.Result{Id: m.Id}
}

func (f *FSM) applyPutApiKey(a *applyCtx, c *pb.Config, m *pb.PutApiKey) *pb.Result {
	k := m.GetKey()
	if k == nil || k.Id == "" {
		return fail(codeBad, "API key id is missing")
	}
	if m.Create && !hasValue(k) {
		return fail(codeBad, "API Key value is missing")
	}
	if r := checkKey(k, m.Create); r != nil {
		return r
	}
	old, exists := c.ApiKeys[k.Id]
	switch {
	case m.Create && exists:
		return fail(codeConflict, "API Key %s already exists", k.Id)
	case m.Create && c.DeletedApiKeys[k.Id] != nil:
		return fail(codeConflict, "API Key id %s belonged to a deleted key whose usage is kept; choose another id", k.Id)
	case m.Create:
		if f.keys.holder(c, k) != nil {
			return fail(codeConflict, "API Key already exists")
		}
		k.CreatedDate = a.sec
		f.keys.add(k)
	case !exists:
		return fail(codeNotFound, "Invalid API Key identifier specified")
	default:
		if m.IfRevision != 0 && m.IfRevision != old.Revision {
			return fail(codeConflict, "API Key %s was changed concurrently; retry", k.Id)
		}
		k.CreatedDate = old.CreatedDate
		// A key's value never changes.
		k.Value, k.ValueLookup, k.ValueSealed = old.Value, old.ValueLookup, old.ValueSealed
	}
	k.LastUpdatedDate = a.sec
	k.Revision = a.index
	c.ApiKeys[k.Id] = k
	return &pb.Result{Id: k.Id}
}

func (f *FSM) applyDeleteApiKey(a *applyCtx, c *pb.Config, m *pb.DeleteApiKey) *pb.Result {
	k, ok := c.ApiKeys[m.Id]
	if !ok {
		return fail(codeNotFound, "Invalid API Key identifier specified")
	}
	f.keys.remove(k)
	delete(c.ApiKeys, m.Id)
	for planID, pk := range c.PlanKeys {
		if _, in := pk.GetKeys()[m.Id]; in {
			delete(ownPlanKeys(a, c, planID).Keys, m.Id)
		}
	}
	if m.KeepUsage && f.hasUsage(m.Id) {
		c.DeletedApiKeys[m.Id] = &pb.DeletedApiKey{Id: m.Id, Name: k.Name, CustomerId: k.CustomerId, DeletedDate: a.sec}
	}
	return &pb.Result{Id: m.Id}
}

// hasUsage tells whether a key has a ledger in any plan.
func (f *FSM) hasUsage(keyID string) bool {
	for _, m := range f.ledgers {
		if _, ok := m[keyID]; ok {
			return true
		}
	}
	return false
}

// forgetDeletedKeys drops the ledgers of the key a DeleteApiKey deleted,
// unless they are kept for the billing export, and those of keys deleted
// longer ago than usage is retained.
func (f *FSM) forgetDeletedKeys(a *applyCtx, c *pb.Config, m *pb.DeleteApiKey) {
	drop := func(id string) {
		for _, l := range f.ledgers {
			delete(l, id)
		}
	}
	if c.DeletedApiKeys[m.Id] == nil {
		drop(m.Id)
	}
	for _, id := range slices.Sorted(maps.Keys(c.DeletedApiKeys)) {
		if c.DeletedApiKeys[id].DeletedDate < a.sec-usageRetentionDays*limiter.SecondsPerDay {
			delete(c.DeletedApiKeys, id)
			drop(id)
		}
	}
}

// attachKey puts a key into a plan, checking the one-plan-per-stage rule.
func attachKey(a *applyCtx, c *pb.Config, planID, keyID string) *pb.Result {
	p, ok := c.UsagePlans[planID]
	if !ok {
		return fail(codeNotFound, "Invalid Usage Plan ID specified")
	}
	if _, ok := c.ApiKeys[keyID]; !ok {
		return fail(codeNotFound, "Invalid API Key identifier specified")
	}
	if _, in := c.PlanKeys[planID].GetKeys()[keyID]; in {
		return fail(codeConflict, "Usage Plan %s already contains API Key %s", planID, keyID)
	}
	if res := keyConflict(c, keyID, planID, p.ApiStages); res != nil {
		return res
	}
	ownPlanKeys(a, c, planID).Keys[keyID] = a.index
	return nil
}

func (f *FSM) applyImportApiKeys(a *applyCtx, c *pb.Config, m *pb.ImportApiKeys) *pb.Result {
	if r := checkImport(m); r != nil {
		return r
	}
	res := &pb.Result{}
	for _, ik := range m.Keys {
		k := ik.GetKey()
		if k == nil || !hasValue(k) {
			res.Warnings = append(res.Warnings, warnLine(ik.Line, "API Key value is missing"))
			continue
		}
		if old := f.keys.holder(c, k); old != nil {
			// Importing a key again overwrites it; it keeps its id.
			upd := proto.Clone(old).(*pb.ApiKey)
			upd.Name = k.Name
			upd.Description = k.Description
			upd.Enabled = k.Enabled
			upd.LastUpdatedDate = a.sec
			upd.Revision = a.index
			c.ApiKeys[upd.Id] = upd
			k = upd
		} else {
			if k.Id == "" {
				res.Warnings = append(res.Warnings, warnLine(ik.Line, "API Key id is missing"))
				continue
			}
			if _, taken := c.ApiKeys[k.Id]; taken || c.DeletedApiKeys[k.Id] != nil {
				return fail(codeConflict, "API Key %s already exists", k.Id)
			}
			k.CreatedDate = a.sec
			k.LastUpdatedDate = a.sec
			k.Revision = a.index
			c.ApiKeys[k.Id] = k
			f.keys.add(k)
		}
		res.Ids = append(res.Ids, k.Id)
		for _, planID := range ik.UsagePlanIds {
			if pk := c.PlanKeys[planID]; pk != nil {
				if _, in := pk.Keys[k.Id]; in {
					continue // already attached: importing again is idempotent
				}
			}
			if r := attachKey(a, c, planID, k.Id); r != nil {
				res.Warnings = append(res.Warnings, warnLine(ik.Line, r.Message+" (usage plan "+planID+")"))
			}
		}
	}
	if m.FailOnWarnings && len(res.Warnings) > 0 {
		return fail(codeBad, "Import failed: %s", strings.Join(res.Warnings, "; "))
	}
	return res
}

func warnLine(line int32, msg string) string {
	if line <= 0 {
		return msg
	}
	return "line " + itoa(int64(line)) + ": " + msg
}

func applyCreateUsagePlanKey(a *applyCtx, c *pb.Config, m *pb.CreateUsagePlanKey) *pb.Result {
	if r := attachKey(a, c, m.PlanId, m.KeyId); r != nil {
		return r
	}
	return &pb.Result{Id: m.KeyId}
}

func applyDeleteUsagePlanKey(a *applyCtx, c *pb.Config, m *pb.DeleteUsagePlanKey) *pb.Result {
	if _, ok := c.UsagePlans[m.PlanId]; !ok {
		return fail(codeNotFound, "Invalid Usage Plan ID specified")
	}
	if _, in := c.PlanKeys[m.PlanId].GetKeys()[m.KeyId]; !in {
		return fail(codeNotFound, "Invalid API Key identifier specified")
	}
	delete(ownPlanKeys(a, c, m.PlanId).Keys, m.KeyId)
	return &pb.Result{Id: m.KeyId}
}

func applyCreateDefaultPlan(a *applyCtx, c *pb.Config, m *pb.CreateDefaultPlan) *pb.Result {
	if m.PlanId == "" {
		return fail(codeBad, "Usage plan id is missing")
	}
	if r := checkDefaultPlan(m); r != nil {
		return r
	}
	if _, ok := c.Stages[stageKey(m.RestApiId, m.StageName)]; !ok {
		return fail(codeNotFound, "Invalid API Stage {api: %s, stage: %s} specified for usageplan %s", m.RestApiId, m.StageName, m.PlanId)
	}
	if _, ok := c.UsagePlans[m.PlanId]; ok {
		return fail(codeConflict, "Usage plan %s already exists", m.PlanId)
	}
	for _, id := range plansUsingStage(c, m.RestApiId, m.StageName) {
		if c.UsagePlans[id].IsDefault {
			return fail(codeConflict, "API Stage %s:%s already has a default usage plan: %s", m.RestApiId, m.StageName, id)
		}
	}
	p := &pb.UsagePlan{
		Id:          m.PlanId,
		Name:        m.Name,
		Description: "Default usage plan: no throttle, no quota",
		ApiStages:   []*pb.ApiStage{{ApiId: m.RestApiId, Stage: m.StageName}},
		CreatedDate: a.sec,
		Revision:    a.index,
		IsDefault:   true,
	}
	c.UsagePlans[p.Id] = p
	// Every key that no plan yet admits on this stage joins the default plan,
	// so turning plans on for the stage changes no caller's access.
	covered := map[string]bool{}
	for _, planID := range plansUsingStage(c, m.RestApiId, m.StageName) {
		if pk := c.PlanKeys[planID]; pk != nil {
			for keyID := range pk.Keys {
				covered[keyID] = true
			}
		}
	}
	pk := &pb.PlanKeys{Keys: map[string]uint64{}}
	for keyID := range c.ApiKeys {
		if !covered[keyID] {
			pk.Keys[keyID] = a.index
		}
	}
	c.PlanKeys[p.Id] = pk
	return &pb.Result{Id: p.Id}
}
