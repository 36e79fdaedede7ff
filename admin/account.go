package admin

import (
	"net/http"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

type accountView struct {
	CloudwatchRoleArn string       `json:"cloudwatchRoleArn,omitempty"`
	ThrottleSettings  throttleView `json:"throttleSettings"`
	Features          []string     `json:"features"`
	APIKeyVersion     string       `json:"apiKeyVersion"`
}

func accountViewOf(c *pb.Config) accountView {
	return accountView{
		CloudwatchRoleArn: c.GetAccount().GetCloudwatchRoleArn(),
		ThrottleSettings:  throttleOf(accountThrottle(c)),
		Features:          []string{"UsagePlans"},
		APIKeyVersion:     "4",
	}
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, http.StatusOK, accountViewOf(s.store.Config()))
	return nil
}

// accountPatch is UpdateAccount's patch table. add /features UsagePlans
// is accepted and changes nothing: usage plans are always on. The
// CloudWatch role is stored and shown; Tollgate sends nothing to
// CloudWatch.
var accountPatch = patchTable[*pb.Account]{
	{path: "/cloudwatchRoleArn", ops: opReplace, set: func(a *pb.Account, _ []string, op patchOp) *apiError {
		a.CloudwatchRoleArn = strings.TrimSpace(op.Value)
		return nil
	}},
	{path: "/throttle/rateLimit", ops: opReplace, set: func(a *pb.Account, _ []string, op patchOp) *apiError {
		var e *apiError
		a.Throttle.RateLimit, e = patchRate(op)
		return e
	}},
	{path: "/throttle/burstLimit", ops: opReplace, set: func(a *pb.Account, _ []string, op patchOp) *apiError {
		var e *apiError
		a.Throttle.BurstLimit, e = patchBurst(op)
		return e
	}},
	{path: "/features", ops: opAdd, set: func(_ *pb.Account, _ []string, op patchOp) *apiError {
		if op.Value != "UsagePlans" {
			return badRequest("Invalid feature %q: the only feature is UsagePlans", truncate(op.Value))
		}
		return nil
	}},
}

// patchAccount applies UpdateAccount's operations to a, whose throttle is
// set (the defaults when none was).
func patchAccount(a *pb.Account, ops []patchOp) *apiError {
	if e := applyPatch(accountPatch, a, ops); e != nil {
		return e
	}
	return invalid(rules.Account(a))
}

// updateAccount is UpdateAccount. The account has no revision to guard the
// write with, so two concurrent updates of different fields may lose one.
func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) *apiError {
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	cfg := s.store.Config()
	cur := &pb.Account{Throttle: accountThrottle(cfg), CloudwatchRoleArn: cfg.GetAccount().GetCloudwatchRoleArn()}
	a := proto.Clone(cur).(*pb.Account)
	if e := patchAccount(a, ops); e != nil {
		return e
	}
	if !proto.Equal(cur, a) {
		if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{
			Account: a,
		}}}); e != nil {
			return e
		}
	}
	writeJSON(w, http.StatusOK, accountViewOf(s.store.Config()))
	return nil
}
