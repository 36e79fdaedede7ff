package cluster

import (
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// The state machine checks every configuration command with package
// rules, the same checks the admin API answers 400 with, so a command that
// did not come through the admin API (forged on the gRPC port, or sent by
// a buggy node) is refused with a typed result and never applied. Each
// check below runs in its applyX after the command's shape is known and
// before anything is looked up or changed.

// refused turns a failed rule into a bad-request result with the rule's
// message (the admin API's wording), or nil.
func refused(err error) *pb.Result {
	if err == nil {
		return nil
	}
	return fail(codeBad, "%s", err.Error())
}

func badID(what, id string) *pb.Result {
	if rules.IsID(id) {
		return nil
	}
	return fail(codeBad, "Invalid %s identifier %q: it must have 1 to %d characters without / or NUL", what, rules.Truncate(id), rules.MaxIDLen)
}

func checkRestApi(api *pb.RestApi) *pb.Result {
	if r := badID("API", api.Id); r != nil {
		return r
	}
	return refused(rules.RestApi(api))
}

func checkDeployment(d *pb.Deployment, s *pb.Stage, acct *pb.ThrottleSettings) *pb.Result {
	if r := badID("deployment", d.Id); r != nil {
		return r
	}
	if r := refused(rules.Description("Deployment", d.Description)); r != nil {
		return r
	}
	if s != nil && s.StageName != "" {
		return refused(rules.Stage(s, acct))
	}
	return nil
}

func checkStage(s *pb.Stage, acct *pb.ThrottleSettings) *pb.Result {
	if r := refused(rules.Stage(s, acct)); r != nil {
		return r
	}
	if s.DeploymentId != "" {
		return badID("deployment", s.DeploymentId)
	}
	return nil
}

func checkPlan(p *pb.UsagePlan) *pb.Result {
	if r := badID("Usage Plan", p.Id); r != nil {
		return r
	}
	return refused(rules.Plan(p))
}

// checkKey checks a key as created (its value too) or updated (its value
// is kept: the command's is ignored).
func checkKey(k *pb.ApiKey, create bool) *pb.Result {
	if r := badID("API Key", k.Id); r != nil {
		return r
	}
	if create {
		if r := checkKeyValue(k); r != nil {
			return r
		}
	}
	return refused(rules.ApiKeyFields(k))
}

// checkImport checks an import: its size, and each key it names with a
// value. A row without a value or an id stays a warning, as before.
func checkImport(m *pb.ImportApiKeys) *pb.Result {
	if len(m.Keys) > rules.MaxImportKeys {
		return fail(codeBad, "Too many API keys in one import: %d, at most %d are allowed", len(m.Keys), rules.MaxImportKeys)
	}
	for _, ik := range m.Keys {
		k := ik.GetKey()
		if k == nil || !hasValue(k) {
			continue
		}
		line := "line " + itoa(int64(ik.Line)) + ": "
		if r := checkKeyValue(k); r != nil {
			return fail(codeBad, "%s%s", line, r.Message)
		}
		if k.Id != "" && !rules.IsID(k.Id) {
			return fail(codeBad, "%s%v", line, badID("API Key", k.Id).Message)
		}
		if err := rules.ApiKeyFields(k); err != nil {
			return fail(codeBad, "%s%v", line, err)
		}
		if len(ik.UsagePlanIds) > rules.MaxImportKeys {
			return fail(codeBad, "%stoo many usage plan ids: at most %d are allowed", line, rules.MaxImportKeys)
		}
		for _, p := range ik.UsagePlanIds {
			if !rules.IsPlanID(p) {
				return fail(codeBad, "%sinvalid usage plan id %q", line, rules.Truncate(p))
			}
		}
	}
	return nil
}

func checkAccount(a *pb.Account) *pb.Result {
	return refused(rules.Account(a))
}

func checkDefaultPlan(m *pb.CreateDefaultPlan) *pb.Result {
	if r := badID("Usage Plan", m.PlanId); r != nil {
		return r
	}
	return refused(rules.Name("Usage Plan", m.Name))
}
