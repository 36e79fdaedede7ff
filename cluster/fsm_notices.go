package cluster

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// Quota notices (package notify sends them) are recorded in the
// configuration, so every node knows which thresholds each key reached in
// its period and a new leader never fires one again. Config.QuotaNotices
// is shared between configurations like the key maps: a command that
// changes it copies the map and replaces the entries it changes.

// applyRecordQuotaNotices records notices about to be sent and the
// outcome of ones sent. A pending notice is recorded only when its plan
// exists, its period has not ended and its key has not reached that
// threshold in that period; an outcome only for a pending notice still
// kept. What is skipped changes nothing; a malformed notice refuses the
// whole command.
func applyRecordQuotaNotices(a *applyCtx, c *pb.Config, r *pb.RecordQuotaNotices) *pb.Result {
	for _, n := range r.GetNotices() {
		if res := refused(rules.QuotaNotice(n)); res != nil {
			return res
		}
	}
	notices := maps.Clone(c.QuotaNotices)
	if notices == nil {
		notices = map[string]*pb.PlanNotices{}
	}
	own := map[string]*pb.PlanNotices{} // the plans' entries copied by this command
	planOf := func(id string) *pb.PlanNotices {
		if pn := own[id]; pn != nil {
			return pn
		}
		pn := &pb.PlanNotices{}
		if old := notices[id]; old != nil {
			pn = proto.Clone(old).(*pb.PlanNotices)
		}
		if pn.Fired == nil {
			pn.Fired = map[string]*pb.FiredThresholds{}
		}
		for k, f := range pn.Fired {
			if f.PeriodEnd <= a.sec {
				delete(pn.Fired, k) // its period is over: it cannot fire again
			}
		}
		own[id], notices[id] = pn, pn
		return pn
	}
	res := &pb.Result{}
	for _, n := range r.GetNotices() {
		if c.UsagePlans[n.PlanId] == nil {
			continue
		}
		pn := planOf(n.PlanId)
		if n.State != rules.NoticePending {
			for i := len(pn.Recent) - 1; i >= 0; i-- {
				if old := pn.Recent[i]; rules.NoticeID(old) == rules.NoticeID(n) && old.State == rules.NoticePending {
					old.State, old.Attempts, old.Error = n.State, n.Attempts, n.Error
					break
				}
			}
			continue
		}
		if n.PeriodEnd <= a.sec {
			continue
		}
		f := pn.Fired[n.KeyId]
		switch {
		case f == nil || f.PeriodStart < n.PeriodStart:
			f = &pb.FiredThresholds{PeriodStart: n.PeriodStart, PeriodEnd: n.PeriodEnd}
			pn.Fired[n.KeyId] = f
		case f.PeriodStart > n.PeriodStart:
			continue // a later period fired already
		}
		if slices.Contains(f.Thresholds, n.Threshold) {
			continue
		}
		f.Thresholds = append(f.Thresholds, n.Threshold)
		slices.Sort(f.Thresholds)
		rec := proto.Clone(n).(*pb.QuotaNotice)
		rec.TimeUnix = a.sec
		pn.Recent = append(pn.Recent, rec)
		if extra := len(pn.Recent) - rules.MaxRecentNotices; extra > 0 {
			pn.Recent = slices.Delete(pn.Recent, 0, extra)
		}
		res.Ids = append(res.Ids, rules.NoticeID(rec))
	}
	c.QuotaNotices = notices
	return res
}

// dropPlanNotices forgets a deleted plan's notices.
func dropPlanNotices(c *pb.Config, planID string) {
	if _, ok := c.QuotaNotices[planID]; !ok {
		return
	}
	c.QuotaNotices = maps.Clone(c.QuotaNotices)
	delete(c.QuotaNotices, planID)
}

// checkQuotaNotices checks a snapshot's notices: each of an existing plan,
// valid as the leader records them, fired thresholds in range and
// ascending.
func checkQuotaNotices(c *pb.Config, bad func(what, key string, r *pb.Result)) {
	for _, id := range slices.Sorted(maps.Keys(c.QuotaNotices)) {
		pn := c.QuotaNotices[id]
		if c.UsagePlans[id] == nil {
			bad("quota notices", id, fail(codeBad, "no such usage plan"))
			continue
		}
		if len(pn.GetRecent()) > rules.MaxRecentNotices {
			bad("quota notices", id, fail(codeBad, "more than %d notices", rules.MaxRecentNotices))
		}
		for _, n := range pn.GetRecent() {
			if n.GetPlanId() != id {
				bad("quota notices", id, fail(codeBad, "a notice of plan %q", n.GetPlanId()))
			}
			bad("quota notices", id, refused(rules.QuotaNotice(n)))
		}
		for _, k := range slices.Sorted(maps.Keys(pn.GetFired())) {
			f := pn.GetFired()[k]
			if k == "" || f.GetPeriodEnd() <= f.GetPeriodStart() || !slices.IsSorted(f.GetThresholds()) {
				bad("quota notices", id, fail(codeBad, "bad thresholds reached by key %q", k))
				continue
			}
			for i, t := range f.GetThresholds() {
				if t < 1 || t > rules.MaxNotifyThreshold || (i > 0 && t == f.GetThresholds()[i-1]) {
					bad("quota notices", id, fail(codeBad, "bad threshold %d reached by key %q", t, k))
				}
			}
		}
	}
}
