package cluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// checkSnapshot checks a snapshot's state with the checks the FSM makes
// on commands (fsm_validate.go, package rules), so a snapshot that no
// sequence of accepted commands could have written (a crafted or
// corrupted file, a peer's InstallSnapshot) is refused by Restore and the
// state stays as it was. Each object is checked as the command that
// stores it is, and under the id it is stored by; ledgers hold no
// negative count. The checks only look at the snapshot.
func checkSnapshot(c *pb.Config, ledgers map[string]map[string]*pb.KeyLedger) error {
	var errs []error
	bad := func(what, key string, r *pb.Result) {
		if r != nil && len(errs) < 8 {
			errs = append(errs, fmt.Errorf("%s %q: %s", what, key, r.Message))
		}
	}
	mismatch := func(key, want string) *pb.Result {
		if key == want {
			return nil
		}
		return fail(codeBad, "stored under %q, names %q", key, want)
	}
	for _, k := range slices.Sorted(maps.Keys(c.RestApis)) {
		a := c.RestApis[k]
		bad("API", k, mismatch(k, a.GetId()))
		bad("API", k, checkRestApi(a))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Deployments)) {
		d := c.Deployments[k]
		bad("deployment", k, mismatch(k, stageKey(d.GetRestApiId(), d.GetId())))
		bad("deployment", k, badID("API", d.GetRestApiId()))
		bad("deployment", k, checkDeployment(d, nil, nil))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Stages)) {
		s := c.Stages[k]
		bad("stage", k, mismatch(k, stageKey(s.GetRestApiId(), s.GetStageName())))
		bad("stage", k, badID("API", s.GetRestApiId()))
		bad("stage", k, checkStage(ownThrottles(s), nil))
	}
	for _, k := range slices.Sorted(maps.Keys(c.UsagePlans)) {
		p := c.UsagePlans[k]
		bad("usage plan", k, mismatch(k, p.GetId()))
		if p.IsDefault && p.Name == "" {
			// CreateDefaultPlan takes the name as given, empty too.
			p = proto.Clone(p).(*pb.UsagePlan)
			p.Name = "default"
		}
		bad("usage plan", k, checkPlan(p))
	}
	// The per-key maps (keys, memberships, ledgers: a million entries) are
	// checked in map order, not sorted: which of several bad entries the
	// error names may differ from one Restore to the next.
	for k, key := range c.ApiKeys {
		bad("API key", k, mismatch(k, key.GetId()))
		bad("API key", k, checkKey(key, true))
	}
	for _, k := range slices.Sorted(maps.Keys(c.DeletedApiKeys)) {
		dk := c.DeletedApiKeys[k]
		bad("deleted API key", k, mismatch(k, dk.GetId()))
		bad("deleted API key", k, refused(rules.DeletedApiKey(dk)))
		if c.ApiKeys[k] != nil {
			bad("deleted API key", k, fail(codeBad, "an API key of the same id exists"))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.PlanKeys)) {
		bad("usage plan keys", k, badID("Usage Plan", k))
		for id := range c.PlanKeys[k].GetKeys() {
			bad("usage plan keys", k, badID("API Key", id))
		}
	}
	if c.Account != nil {
		bad("account", "", checkAccount(c.Account))
	}
	if c.DataKey != nil {
		bad("data key", "", checkDataKey(c.DataKey))
	}
	for _, k := range slices.Sorted(maps.Keys(c.AdminCredentials)) {
		cr := c.AdminCredentials[k]
		bad("admin credential", k, mismatch(k, cr.GetId()))
		bad("admin credential", k, checkAdminCredential(cr))
	}
	checkResourceTrees(c, bad)
	checkQuotaNotices(c, bad)
	for _, plan := range slices.Sorted(maps.Keys(ledgers)) {
		for key, l := range ledgers[plan] {
			bad("ledger", plan+"/"+key, checkLedger(l))
		}
	}
	return errors.Join(errs...)
}

// ownThrottles returns s with each method throttle half that inherits the
// account's (unset) made consistent with the half that is set: the
// account's values were checked when the account was set, and the
// inheritance follows whatever account is in force, so a stage is
// checked on the values it holds itself.
func ownThrottles(s *pb.Stage) *pb.Stage {
	s = proto.Clone(s).(*pb.Stage)
	for _, m := range s.MethodSettings {
		switch {
		case m == nil:
		case m.ThrottlingRateLimit != nil && m.ThrottlingBurstLimit == nil:
			burst := int32(0)
			if m.GetThrottlingRateLimit() > 0 {
				burst = 1
			}
			m.ThrottlingBurstLimit = &burst
		case m.ThrottlingRateLimit == nil && m.ThrottlingBurstLimit != nil:
			rate := 0.0
			if m.GetThrottlingBurstLimit() > 0 {
				rate = 1
			}
			m.ThrottlingRateLimit = &rate
		}
	}
	return s
}

// checkLedger refuses a ledger of a bad plan or key id, or that counts a
// negative number of units anywhere: reports, grants and hand-backs only
// ever move counts of zero or more.
func checkLedger(l *pb.KeyLedger) *pb.Result {
	if r := badID("Usage Plan", l.GetPlanId()); r != nil {
		return r
	}
	if r := badID("API Key", l.GetKeyId()); r != nil {
		return r
	}
	for d, n := range l.Daily {
		if n < 0 {
			return fail(codeBad, "%d requests counted on day %d", n, d)
		}
	}
	for _, g := range append(slices.Clone(l.Grants), l.Settled...) {
		if g.GetUnits() < 0 {
			return fail(codeBad, "a grant of %d units", g.GetUnits())
		}
	}
	return nil
}
