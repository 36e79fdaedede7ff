package admin

import (
	"net/http"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

type accountView struct {
	ThrottleSettings throttleView `json:"throttleSettings"`
	Features         []string     `json:"features"`
	APIKeyVersion    string       `json:"apiKeyVersion"`
}

func accountViewOf(c *pb.Config) accountView {
	return accountView{
		ThrottleSettings: throttleOf(accountThrottle(c)),
		Features:         []string{"UsagePlans"},
		APIKeyVersion:    "4",
	}
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, http.StatusOK, accountViewOf(s.store.Config()))
	return nil
}

var accountReplacePaths = []string{"/throttle/rateLimit", "/throttle/burstLimit"}

// patchAccount applies UpdateAccount's operations to the account throttle:
// replace /throttle/rateLimit and /throttle/burstLimit. add /features
// UsagePlans is accepted and changes nothing: usage plans are always on.
func patchAccount(t *pb.ThrottleSettings, ops []patchOp) *apiError {
	if e := checkPatchOps(ops); e != nil {
		return e
	}
	for _, op := range ops {
		switch {
		case op.Op == "add" && op.Path == "/features":
			if op.Value != "UsagePlans" {
				return badRequest("Invalid feature %q: the only feature is UsagePlans", truncate(op.Value))
			}
		case op.Op != "replace":
			if op.Op == "add" {
				return badPatchPath(op, []string{"/features"})
			}
			return badPatchPath(op, nil)
		case op.Path == "/throttle/rateLimit":
			f, e := patchRate(op)
			if e != nil {
				return e
			}
			t.RateLimit = f
		case op.Path == "/throttle/burstLimit":
			n, e := patchBurst(op)
			if e != nil {
				return e
			}
			t.BurstLimit = n
		default:
			return badPatchPath(op, accountReplacePaths)
		}
	}
	return checkThrottle("account throttle", t.RateLimit, int64(t.BurstLimit))
}

// updateAccount is UpdateAccount. The account has no revision to guard the
// write with, so two concurrent updates of different fields may lose one.
func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) *apiError {
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	cur := accountThrottle(s.store.Config())
	t := proto.Clone(cur).(*pb.ThrottleSettings)
	if e := patchAccount(t, ops); e != nil {
		return e
	}
	if !proto.Equal(cur, t) {
		if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_UpdateAccount{UpdateAccount: &pb.UpdateAccount{
			Account: &pb.Account{Throttle: t},
		}}}); e != nil {
			return e
		}
	}
	writeJSON(w, http.StatusOK, accountViewOf(s.store.Config()))
	return nil
}
