package cluster

import (
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// maxGrant caps one grant request, whatever a node asks for.
const maxGrant = 1_000_000

// usageRetentionDays is how much daily usage history a ledger keeps.
const usageRetentionDays = 400

// lapsedGrantDays is how long after its period ended a grant may stay
// unreported before the ledger settles it: its node has had every chance
// to report or hand it back.
const lapsedGrantDays = 2

// DayOf returns the Unix day number (UTC) of a Unix time in seconds.
func DayOf(sec int64) int64 { return limiter.DayOf(sec) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// PlanQuota returns the quota of a plan; ok is false when it has none (or
// it cannot be read, which validation prevents).
func PlanQuota(p *pb.UsagePlan) (limiter.Quota, bool) {
	q := p.GetQuota()
	if q == nil {
		return limiter.Quota{}, false
	}
	quota, err := limiter.ParseQuota(q.Period, int64(q.Offset), q.Limit)
	return quota, err == nil
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
	if l.Daily == nil {
		l.Daily = map[int64]int64{}
	}
	if l.PeriodExtra == nil {
		l.PeriodExtra = map[int64]int64{}
	}
	return l
}

// periodView is a key's quota in the period that contains the entry's time.
type periodView struct {
	span     limiter.Span
	limit    int64 // plan limit + the period's extension
	consumed int64 // reported on the period's days + settled by grants overlapping it
	held     int64 // units of grants whose period overlaps this one
}

func (v periodView) avail() int64 { return v.limit - v.consumed - v.held }

// viewAt computes a ledger's period at sec under the plan's quota. A grant
// counts against every period its own overlaps: after a change of the
// plan's period or offset, units handed out under the old calendar stay
// counted until they are reported or handed back, so a plan edit never
// makes a unit spendable twice. Settled units count the same way, for
// good: nobody knows on which day of their period they were spent.
func viewAt(l *pb.KeyLedger, q limiter.Quota, sec int64) periodView {
	start, end := q.Bounds(sec)
	v := periodView{span: limiter.Span{Start: start, End: end}}
	v.limit = q.Limit + l.PeriodExtra[start]
	first, last := v.span.Days()
	for d := first; d <= last; d++ {
		v.consumed += l.Daily[d]
	}
	for _, g := range l.Settled {
		if v.span.Overlaps(limiter.Span{Start: g.Start, End: g.End}) {
			v.consumed += g.Units
		}
	}
	for _, g := range l.Grants {
		if v.span.Overlaps(limiter.Span{Start: g.Start, End: g.End}) {
			v.held += g.Units
		}
	}
	return v
}

// grantOf returns a node's grant for a period, or nil.
func grantOf(l *pb.KeyLedger, node string, s limiter.Span) *pb.Grant {
	for _, g := range l.Grants {
		if g.NodeId == node && g.Start == s.Start && g.End == s.End {
			return g
		}
	}
	return nil
}

// dropEmpty removes grants with no units left.
func dropEmpty(l *pb.KeyLedger) {
	l.Grants = slices.DeleteFunc(l.Grants, func(g *pb.Grant) bool { return g.Units <= 0 })
}

// settleGrant turns a grant's units into settled units: they may have
// been spent on any day of the grant's period.
func settleGrant(l *pb.KeyLedger, g *pb.Grant) {
	if g.Units <= 0 {
		return
	}
	for _, s := range l.Settled {
		if s.Start == g.Start && s.End == g.End {
			s.Units += g.Units
			g.Units = 0
			return
		}
	}
	l.Settled = append(l.Settled, &pb.Grant{Start: g.Start, End: g.End, Units: g.Units})
	g.Units = 0
}

// prune settles grants long lapsed and forgets history past retention.
func prune(l *pb.KeyLedger, sec int64) {
	changed := false
	for _, g := range l.Grants {
		if g.End+lapsedGrantDays*limiter.SecondsPerDay <= sec {
			settleGrant(l, g)
			changed = true
		}
	}
	if changed {
		dropEmpty(l)
	}
	// History past retention goes once the maps hold more days than that:
	// a key with traffic every day, after more than a year.
	oldest := DayOf(sec) - usageRetentionDays
	if len(l.Daily) > usageRetentionDays {
		for d := range l.Daily {
			if d < oldest {
				delete(l.Daily, d)
			}
		}
	}
	if len(l.PeriodExtra) > usageRetentionDays {
		for ps := range l.PeriodExtra {
			if ps < limiter.DayStart(oldest) {
				delete(l.PeriodExtra, ps)
			}
		}
	}
	l.Settled = slices.DeleteFunc(l.Settled, func(g *pb.Grant) bool { return g.End < limiter.DayStart(oldest) })
}

func keyInPlan(c *pb.Config, planID, keyID string) bool {
	pk := c.PlanKeys[planID]
	if pk == nil {
		return false
	}
	_, ok := pk.Keys[keyID]
	return ok
}

// settleNode counts every unit a node holds as consumed: it holds them no
// more (it restarted, or it was removed), and they may have been spent.
func (f *FSM) settleNode(node string) {
	for _, m := range f.ledgers {
		for _, l := range m {
			hit := false
			for _, g := range l.Grants {
				if g.NodeId == node {
					settleGrant(l, g)
					hit = true
				}
			}
			if hit {
				dropEmpty(l)
			}
		}
	}
}

// applyLedger applies one batch of a node's usage reports and grant
// requests, once: a batch whose (run, seq) was applied already answers its
// first result again and changes nothing, however late it arrives. Reports
// go first, so units they hand back can be granted again.
func (f *FSM) applyLedger(a *applyCtx, c *pb.Config, b *pb.LedgerBatch) *pb.Result {
	node := b.NodeId
	st := f.nodes[node]
	switch {
	case st != nil && b.Run != "" && st.Run == b.Run && b.Seq <= st.Seq:
		if b.Seq == st.Seq && st.Last != nil {
			return proto.Clone(st.Last).(*pb.Result)
		}
		return &pb.Result{} // older than the last applied: its answer went long ago
	case b.Settle:
		// A new run (or a removed node): what it held may have been spent.
		f.settleNode(node)
		if b.Run == "" {
			delete(f.nodes, node)
		} else {
			st = &pb.NodeLedger{Run: b.Run}
			f.nodes[node] = st
		}
	case b.Run == "":
		// A batch without a run (an older node's): applied as it comes;
		// its request id de-duplicates it within the window.
	case st == nil || st.Run != b.Run:
		return &pb.Result{Ledger: &pb.LedgerBatchResult{StaleRun: true}}
	}
	for _, r := range b.Reports {
		f.applyReport(a, c, node, r)
	}
	res := &pb.Result{}
	if len(b.Grants) > 0 {
		res.Ledger = &pb.LedgerBatchResult{Grants: make([]*pb.GrantResult, 0, len(b.Grants))}
	}
	for _, g := range b.Grants {
		res.Ledger.Grants = append(res.Ledger.Grants, f.applyGrant(a, c, node, g))
	}
	if st != nil && b.Run != "" {
		st.Seq = b.Seq
		st.Last = res
	}
	return res
}

func (f *FSM) applyReport(a *applyCtx, c *pb.Config, node string, r *pb.UsageReport) {
	p := c.UsagePlans[r.PlanId]
	if p == nil || c.ApiKeys[r.KeyId] == nil {
		return // the plan or key is gone: nothing to count against
	}
	if r.Count < 0 || r.Release < 0 || r.Count > limiter.MaxQuotaLimit || r.Release > limiter.MaxQuotaLimit {
		return // no node spends or holds that much: a forged or broken report
	}
	if r.Count == 0 && r.Release == 0 {
		return // a demand report
	}
	l := f.ledgerOf(r.PlanId, r.KeyId)
	span := limiter.Span{Start: r.PeriodStart, End: r.PeriodEnd}
	if span.End == 0 && span.Start != 0 {
		// A report of an older node names only the period's start: the
		// grant of that node that starts there.
		for _, g := range l.Grants {
			if g.NodeId == node && g.Start == span.Start {
				span.End = g.End
				break
			}
		}
	}
	day := r.Day
	if span.End > span.Start {
		day = span.ClampDay(day)
	}
	l.Daily[day] += r.Count
	if g := grantOf(l, node, span); g != nil {
		g.Units -= min(r.Count+r.Release, g.Units)
		dropEmpty(l)
	}
	prune(l, a.sec)
}

func (f *FSM) applyGrant(a *applyCtx, c *pb.Config, node string, g *pb.GrantRequest) *pb.GrantResult {
	out := &pb.GrantResult{PlanId: g.PlanId, KeyId: g.KeyId}
	p := c.UsagePlans[g.PlanId]
	if p == nil || !keyInPlan(c, g.PlanId, g.KeyId) {
		out.Unknown = true
		return out
	}
	q, ok := PlanQuota(p)
	if !ok {
		out.Limit, out.Remaining = -1, -1
		return out
	}
	l := f.ledgerOf(g.PlanId, g.KeyId)
	prune(l, a.sec)
	v := viewAt(l, q, a.sec)
	avail := v.avail()
	n := min(max(g.Want, 0), maxGrant, max(avail, 0))
	if n > 0 {
		held := grantOf(l, node, v.span)
		if held == nil {
			held = &pb.Grant{NodeId: node, Start: v.span.Start, End: v.span.End}
			l.Grants = append(l.Grants, held)
		}
		held.Units += n
	}
	l.PeriodStart, l.PeriodEnd = v.span.Start, v.span.End
	out.Granted = n
	out.PeriodStart = v.span.Start
	out.PeriodEnd = v.span.End
	out.Limit = v.limit
	out.Remaining = max(avail-n, 0)
	return out
}

// applySetRemaining is UpdateUsage: the key's remaining quota for the
// current period becomes m.Remaining, by extending (or shrinking) the
// period's limit: limit + extension − consumed (reported + settled) = remaining.
// Units nodes hold stay counted until they are reported or handed back, so
// they come off the new remaining; a decrease also revokes them (see
// quotaEvents), so nodes hand back what they did not spend.
func (f *FSM) applySetRemaining(a *applyCtx, c *pb.Config, m *pb.SetRemaining) (*pb.Result, bool) {
	p := c.UsagePlans[m.PlanId]
	if p == nil {
		return fail(codeNotFound, "Invalid Usage Plan ID specified"), false
	}
	if !keyInPlan(c, m.PlanId, m.KeyId) {
		return fail(codeNotFound, "Invalid API Key identifier specified"), false
	}
	q, ok := PlanQuota(p)
	if !ok {
		return fail(codeBad, "Usage plan %s has no quota, so there is no remaining quota to set", m.PlanId), false
	}
	if r := refused(rules.Remaining(m.Remaining)); r != nil {
		return r, false
	}
	l := f.ledgerOf(m.PlanId, m.KeyId)
	v := viewAt(l, q, a.sec)
	before := v.limit - v.consumed
	l.PeriodExtra[v.span.Start] = m.Remaining + v.consumed - q.Limit
	l.PeriodStart, l.PeriodEnd = v.span.Start, v.span.End
	return &pb.Result{Id: m.KeyId}, m.Remaining < before
}
