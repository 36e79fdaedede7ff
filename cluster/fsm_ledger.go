package cluster

import (
	"strconv"
	"time"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// maxGrant caps one grant request, whatever a node asks for.
const maxGrant = 1_000_000

// usageRetentionDays is how much daily usage history a ledger keeps.
const usageRetentionDays = 400

const secondsPerDay = 86400

// DayOf returns the Unix day number (UTC) of a Unix time in seconds.
func DayOf(sec int64) int64 {
	d := sec / secondsPerDay
	if sec%secondsPerDay < 0 {
		d--
	}
	return d
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// planQuota returns the quota of a plan; ok is false when it has none or it
// cannot be read (which validation prevents).
func planQuota(p *pb.UsagePlan) (period limiter.Period, offset, limit int64, ok bool) {
	q := p.GetQuota()
	if q == nil {
		return 0, 0, 0, false
	}
	period, err := limiter.ParsePeriod(q.Period)
	if err != nil {
		return 0, 0, 0, false
	}
	return period, int64(q.Offset), q.Limit, true
}

// periodBounds is the quota period that contains sec, in Unix seconds.
func periodBounds(period limiter.Period, offset, sec int64) (start, end int64) {
	t := time.Unix(sec, 0)
	return limiter.PeriodStart(period, offset, t).Unix(), limiter.NextPeriodStart(period, offset, t).Unix()
}

func (f *FSM) ledgerOf(planID, keyID string) *pb.KeyLedger {
	m := f.ledgers[planID]
	if m == nil {
		m = map[string]*pb.KeyLedger{}
		f.ledgers[planID] = m
	}
	l := m[keyID]
	if l == nil {
		l = &pb.KeyLedger{PlanId: planID, KeyId: keyID}
		m[keyID] = l
	}
	if l.Granted == nil {
		l.Granted = map[string]int64{}
	}
	if l.Daily == nil {
		l.Daily = map[int64]int64{}
	}
	if l.PeriodExtra == nil {
		l.PeriodExtra = map[int64]int64{}
	}
	return l
}

// ledgerView is a ledger brought to the period of the command's time.
type ledgerView struct {
	l          *pb.KeyLedger
	quota      bool
	limit      int64 // effective: plan limit + extension
	start, end int64 // current period, Unix seconds
}

// roll brings a ledger to the quota period that contains sec. When the
// period changes (a new period begins, or the plan's period was changed)
// the grants of the old one lapse and `used` is recounted from the daily
// history, so a period change never forgets requests already made in it.
func roll(l *pb.KeyLedger, p *pb.UsagePlan, sec int64) ledgerView {
	period, offset, limit, ok := planQuota(p)
	if !ok {
		l.PeriodStart = 0
		return ledgerView{l: l}
	}
	start, end := periodBounds(period, offset, sec)
	if l.PeriodStart != start {
		l.PeriodStart = start
		clear(l.Granted)
		l.Extra = l.PeriodExtra[start]
		var used int64
		first, last := DayOf(start), DayOf(end)
		for d, n := range l.Daily {
			if d >= first && d < last {
				used += n
			}
			if d < first-usageRetentionDays {
				delete(l.Daily, d)
			}
		}
		l.Used = used
		for ps := range l.PeriodExtra {
			if ps < start-usageRetentionDays*secondsPerDay {
				delete(l.PeriodExtra, ps)
			}
		}
	}
	return ledgerView{l: l, quota: true, limit: limit + l.Extra, start: start, end: end}
}

func sumGranted(l *pb.KeyLedger) int64 {
	var s int64
	for _, g := range l.Granted {
		s += g
	}
	return s
}

func keyInPlan(c *pb.Config, planID, keyID string) bool {
	pk := c.PlanKeys[planID]
	if pk == nil {
		return false
	}
	_, ok := pk.Keys[keyID]
	return ok
}

func takeGranted(l *pb.KeyLedger, node string, n int64) {
	g := l.Granted[node] - n
	if g <= 0 {
		delete(l.Granted, node)
		return
	}
	l.Granted[node] = g
}

// applyLedger applies one batch of a node's usage reports and grant
// requests. Reports go first, so units they return can be granted again.
//
// Invariant, for the current period of every ledger:
// used + Σ granted ≤ limit + extra, as long as the limit is not lowered.
func (f *FSM) applyLedger(a *applyCtx, c *pb.Config, b *pb.LedgerBatch) *pb.Result {
	node := b.NodeId
	if b.Settle {
		// The node holds no grant any more: what it was granted but did
		// not report may have been spent, so it counts as used.
		for _, m := range f.ledgers {
			for _, l := range m {
				if g := l.Granted[node]; g > 0 {
					l.Used += g
					delete(l.Granted, node)
				}
			}
		}
	}
	for _, r := range b.Reports {
		p := c.UsagePlans[r.PlanId]
		if p == nil || c.ApiKeys[r.KeyId] == nil || r.Count < 0 || r.Release < 0 {
			continue // the plan or key is gone: nothing to count against
		}
		l := f.ledgerOf(r.PlanId, r.KeyId)
		v := roll(l, p, a.sec)
		l.Daily[r.Day] += r.Count
		day := r.Day * secondsPerDay
		switch {
		case !v.quota:
			l.Used += r.Count
		case day >= v.start && day < v.end:
			l.Used += r.Count
			takeGranted(l, node, r.Count)
		}
		if v.quota && r.Release > 0 && r.PeriodStart == v.start {
			takeGranted(l, node, r.Release)
		}
	}
	res := &pb.Result{}
	if len(b.Grants) > 0 {
		res.Ledger = &pb.LedgerBatchResult{Grants: make([]*pb.GrantResult, 0, len(b.Grants))}
	}
	for _, g := range b.Grants {
		out := &pb.GrantResult{PlanId: g.PlanId, KeyId: g.KeyId}
		res.Ledger.Grants = append(res.Ledger.Grants, out)
		p := c.UsagePlans[g.PlanId]
		if p == nil || !keyInPlan(c, g.PlanId, g.KeyId) {
			out.Unknown = true
			continue
		}
		v := roll(f.ledgerOf(g.PlanId, g.KeyId), p, a.sec)
		if !v.quota {
			out.Limit = -1
			out.Remaining = -1
			continue
		}
		avail := v.limit - v.l.Used - sumGranted(v.l)
		n := min(max(g.Want, 0), maxGrant, max(avail, 0))
		if n > 0 {
			v.l.Granted[node] += n
		}
		out.Granted = n
		out.PeriodStart = v.start
		out.PeriodEnd = v.end
		out.Limit = v.limit
		out.Remaining = max(avail-n, 0)
	}
	return res
}

// applySetRemaining is UpdateUsage: the key's remaining quota for the current
// period becomes m.Remaining, by extending (or shrinking) its limit.
func (f *FSM) applySetRemaining(a *applyCtx, c *pb.Config, m *pb.SetRemaining) *pb.Result {
	p := c.UsagePlans[m.PlanId]
	if p == nil {
		return fail(codeNotFound, "Invalid Usage Plan ID specified")
	}
	if !keyInPlan(c, m.PlanId, m.KeyId) {
		return fail(codeNotFound, "Invalid API Key identifier specified")
	}
	if p.Quota == nil {
		return fail(codeBad, "Usage plan %s has no quota, so there is no remaining quota to set", m.PlanId)
	}
	if m.Remaining < 0 {
		return fail(codeBad, "remaining must be 0 or more")
	}
	l := f.ledgerOf(m.PlanId, m.KeyId)
	v := roll(l, p, a.sec)
	l.Extra = m.Remaining + l.Used - p.Quota.Limit
	l.PeriodExtra[v.start] = l.Extra
	return &pb.Result{Id: m.KeyId}
}
