package cluster

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

// checkLedgerInvariant fails when the period the ledger last decided in
// has consumed + held (by grants overlapping it) > limit + extension, or a
// grant holds no unit.
func checkLedgerInvariant(t testing.TB, l *pb.KeyLedger, limit int64, step string) {
	t.Helper()
	if l == nil || l.PeriodEnd == 0 {
		return
	}
	var held int64
	for _, g := range l.Grants {
		if g.Units <= 0 {
			t.Fatalf("%s: node %s holds a grant of %d", step, g.NodeId, g.Units)
		}
		if g.Start < l.PeriodEnd && l.PeriodStart < g.End {
			held += g.Units
		}
	}
	if usedNow(l)+held > limit+extraNow(l) {
		t.Fatalf("%s: consumed %d + held %d > limit %d + extra %d", step, usedNow(l), held, limit, extraNow(l))
	}
}

// modelNode is what an honest node knows of one key: the units it holds and
// the requests it admitted but did not report yet.
type modelNode struct {
	held  int64
	unrep map[int64]int64 // day -> admitted, not reported
}

func (m *modelNode) unreported() int64 {
	var s int64
	for _, n := range m.unrep {
		s += n
	}
	return s
}

// TestLedgerInvariantRandom drives the ledger of one key with a random mix
// of grants, spending, reports, releases, settles and extensions from three
// nodes, and checks after every step that the ledger keeps
// used + Σ granted ≤ limit + extra and accounts for every unit exactly.
func TestLedgerInvariantRandom(t *testing.T) {
	const limit = 500
	nodes := []string{"n1", "n2", "n3"}
	for seed := int64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			start := date(2024, time.February, 1, 0, 0, 0)
			h := newTestFSM(t, start)
			h.setup(quota(limit, "MONTH", 0))
			periodStart, periodEnd := start.Unix(), date(2024, time.March, 1, 0, 0, 0).Unix()

			model := map[string]*modelNode{}
			for _, n := range nodes {
				model[n] = &modelNode{unrep: map[int64]int64{}}
			}
			var admitted, reported, settled, extra int64
			var short, settles int // grants cut by what was left; settles of a grant
			for step := 0; step < 1500; step++ {
				// Time moves forward within February (29 days in 2024).
				if next := h.now.Add(time.Duration(rng.Intn(15*60)) * time.Second); next.Unix() < periodEnd {
					h.now = next
				}
				day := DayOf(h.now.Unix())
				node := nodes[rng.Intn(len(nodes))]
				m := model[node]
				before := h.ledger("p1", "k1")
				var what string
				switch op := rng.Intn(100); {
				case op < 35:
					want := int64(rng.Intn(40))
					avail := int64(limit)
					if before != nil {
						avail = limit + extraNow(before) - usedNow(before) - sumHeld(before)
					}
					g := h.grant(node, "p1", "k1", want)
					what = fmt.Sprintf("step %d: %s grant want %d -> %v", step, node, want, g)
					if exp := min(want, max(avail, 0)); g.Granted != exp {
						t.Fatalf("%s: granted %d, want min(want, available %d) = %d", what, g.Granted, avail, exp)
					}
					if g.Remaining != max(avail-g.Granted, 0) || g.Limit != limit+extra || g.PeriodStart != periodStart || g.PeriodEnd != periodEnd || g.Unknown {
						t.Fatalf("%s: want remaining %d, limit %d, period [%d,%d)", what, max(avail-g.Granted, 0), limit+extra, periodStart, periodEnd)
					}
					m.held += g.Granted
					if g.Granted < want {
						short++
					}
				case op < 65:
					k := rng.Int63n(m.held + 1)
					m.held -= k
					m.unrep[day] += k
					admitted += k
					what = fmt.Sprintf("step %d: %s admits %d", step, node, k)
				case op < 90:
					var rel int64
					if m.held > 0 && rng.Intn(3) == 0 {
						rel = rng.Int63n(m.held + 1)
					}
					b := &pb.LedgerBatch{NodeId: node}
					days := make([]int64, 0, len(m.unrep))
					for d := range m.unrep {
						days = append(days, d)
					}
					sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
					count := m.unreported()
					for _, d := range days {
						b.Reports = append(b.Reports, &pb.UsageReport{PlanId: "p1", KeyId: "k1", Day: d, Count: m.unrep[d], PeriodStart: periodStart})
					}
					if rel > 0 {
						b.Reports = append(b.Reports, &pb.UsageReport{PlanId: "p1", KeyId: "k1", Day: day, Release: rel, PeriodStart: periodStart})
					}
					h.ok(cmdLedger(b))
					what = fmt.Sprintf("step %d: %s reports %d, releases %d", step, node, count, rel)
					after := h.ledger("p1", "k1")
					for _, d := range days {
						if after.Daily[d] != before.GetDaily()[d]+m.unrep[d] {
							t.Fatalf("%s: day %d usage %d, want %d", what, d, after.Daily[d], before.GetDaily()[d]+m.unrep[d])
						}
					}
					if count > 0 && usedNow(after) != usedNow(before)+count {
						t.Fatalf("%s: used %d, want %d", what, usedNow(after), usedNow(before)+count)
					}
					reported += count
					m.held -= rel
					clear(m.unrep)
				case op < 95:
					// The node restarted: what it held and had not reported is
					// gone, so its grant counts as used.
					var g int64
					if before != nil {
						g = heldBy(before, node)
					}
					h.ok(cmdLedger(&pb.LedgerBatch{NodeId: node, Settle: true}))
					what = fmt.Sprintf("step %d: %s settles %d", step, node, g)
					after := h.ledger("p1", "k1")
					if heldBy(after, node) != 0 {
						t.Fatalf("%s: node still holds %d", what, heldBy(after, node))
					}
					if after != nil && usedNow(after) != usedNow(before)+g {
						t.Fatalf("%s: used %d, want %d", what, usedNow(after), usedNow(before)+g)
					}
					settled += g
					if g > 0 {
						settles++
					}
					*m = modelNode{unrep: map[int64]int64{}}
				default:
					// An extension that raises what is left.
					var used int64
					if before != nil {
						used = usedNow(before)
					}
					left := limit + extra - used
					r := max(left, 0) + int64(rng.Intn(20))
					h.ok(cmdSetRemaining("p1", "k1", r))
					extra = r + used - limit
					what = fmt.Sprintf("step %d: remaining set to %d", step, r)
				}

				l := h.ledger("p1", "k1")
				checkLedgerInvariant(t, l, limit, what)
				if l == nil {
					continue
				}
				if extraNow(l) != extra {
					t.Fatalf("%s: extra %d, want %d", what, extraNow(l), extra)
				}
				for _, n := range nodes {
					if got, want := heldBy(l, n), model[n].held+model[n].unreported(); got != want {
						t.Fatalf("%s: ledger says %s holds %d, the node holds %d + %d unreported", what, n, got, model[n].held, model[n].unreported())
					}
				}
				if usedNow(l) != reported+settled {
					t.Fatalf("%s: used %d, want reported %d + settled %d", what, usedNow(l), reported, settled)
				}
				var daily int64
				for _, n := range l.Daily {
					daily += n
				}
				if daily != reported {
					t.Fatalf("%s: daily usage sums to %d, reported %d", what, daily, reported)
				}
				if admitted > limit+extra {
					t.Fatalf("%s: %d admitted over a limit of %d", what, admitted, limit+extra)
				}
			}
			if short < 10 || settles < 5 {
				t.Fatalf("the sequence hardly reached exhaustion (%d short grants) or settles (%d)", short, settles)
			}
		})
	}
}

func TestLedgerGrantsAndExhaustion(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(10, "DAY", 0))
	start, end := date(2024, time.March, 13, 0, 0, 0).Unix(), date(2024, time.March, 14, 0, 0, 0).Unix()
	g := h.grant("n1", "p1", "k1", 6)
	if g.Granted != 6 || g.Remaining != 4 || g.Limit != 10 || g.PeriodStart != start || g.PeriodEnd != end {
		t.Fatalf("first grant %v", g)
	}
	if g := h.grant("n2", "p1", "k1", 6); g.Granted != 4 || g.Remaining != 0 {
		t.Fatalf("second grant %v, want the 4 left", g)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if g := h.grant(n, "p1", "k1", 1); g.Granted != 0 || g.Remaining != 0 || g.Limit != 10 || g.Unknown {
			t.Fatalf("grant of an exhausted quota to %s: %v", n, g)
		}
	}
	if g := h.grant("n1", "p1", "k1", -5); g.Granted != 0 {
		t.Fatalf("negative want granted %d", g.Granted)
	}
	l := h.ledger("p1", "k1")
	if heldBy(l, "n1") != 6 || heldBy(l, "n2") != 4 || len(l.Grants) != 2 || usedNow(l) != 0 {
		t.Fatalf("ledger %v", l)
	}

	// A report moves units from granted to used and to the day.
	day := DayOf(t0.Unix())
	h.report("n1", "p1", "k1", day, 5, start, 0)
	l = h.ledger("p1", "k1")
	if usedNow(l) != 5 || heldBy(l, "n1") != 1 || l.Daily[day] != 5 {
		t.Fatalf("after a report of 5: %v", l)
	}
	// Release hands units back; a release of another period is ignored.
	h.report("n2", "p1", "k1", day, 0, start-86400, 3)
	if l = h.ledger("p1", "k1"); heldBy(l, "n2") != 4 {
		t.Fatalf("a release of an old period was applied: %v", l)
	}
	h.report("n2", "p1", "k1", day, 0, start, 3)
	if l = h.ledger("p1", "k1"); heldBy(l, "n2") != 1 || usedNow(l) != 5 {
		t.Fatalf("after a release of 3: %v", l)
	}
	if g := h.grant("n3", "p1", "k1", 5); g.Granted != 3 || g.Remaining != 0 {
		t.Fatalf("grant of released units %v", g)
	}
	// Settle: n2's unreported grant counts as used.
	h.ok(cmdLedger(&pb.LedgerBatch{NodeId: "n2", Settle: true}))
	if l = h.ledger("p1", "k1"); usedNow(l) != 6 || heldBy(l, "n2") != 0 || len(l.Grants) != 2 {
		t.Fatalf("after n2 settled: %v", l)
	}
	// Reports go before grants in one batch: what n1 hands back, n1 may get
	// again in the same entry.
	res := h.ok(cmdLedger(&pb.LedgerBatch{NodeId: "n1",
		Reports: []*pb.UsageReport{{PlanId: "p1", KeyId: "k1", Day: day, PeriodStart: start, Release: 1}},
		Grants:  []*pb.GrantRequest{grantReq("p1", "k1", 1)},
	}))
	if g := res.Ledger.Grants[0]; g.Granted != 1 {
		t.Fatalf("grant after a release in the same batch: %v", g)
	}
	checkLedgerInvariant(t, h.ledger("p1", "k1"), 10, "end")
	// Negative reports are ignored.
	h.report("n1", "p1", "k1", day, -100, start, 0)
	if l = h.ledger("p1", "k1"); usedNow(l) != 6 {
		t.Fatalf("a negative report changed used: %v", l)
	}
}

func TestLedgerGrantCap(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(1_000_000_000_000, "MONTH", 0))
	if g := h.grant("n1", "p1", "k1", 1<<40); g.Granted != maxGrant {
		t.Fatalf("granted %d, want the cap %d", g.Granted, maxGrant)
	}
}

func TestLedgerNoQuotaAndUnknown(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(10, "DAY", 0))
	h.ok(cmdPlan("free", true, nil, "a1/dev"))
	h.ok(cmdAttach("free", "k2"))
	day := DayOf(t0.Unix())

	g := h.grant("n1", "free", "k2", 5)
	if g.Limit != -1 || g.Remaining != -1 || g.Granted != 0 || g.Unknown {
		t.Fatalf("grant in a plan without quota: %v", g)
	}
	h.report("n1", "free", "k2", day, 7, 0, 0)
	h.report("n2", "free", "k2", day, 2, 0, 0)
	if l := h.ledger("free", "k2"); l.Daily[day] != 9 || len(l.Grants) != 0 {
		t.Fatalf("usage without quota: %v", l)
	}

	for _, tc := range []struct{ plan, key string }{
		{"p1", "k2"},   // key not in the plan
		{"p1", "k9"},   // no such key
		{"nope", "k1"}, // no such plan
	} {
		g := h.grant("n1", tc.plan, tc.key, 5)
		if !g.Unknown || g.Granted != 0 {
			t.Fatalf("grant of %s in %s: %v", tc.key, tc.plan, g)
		}
		if l := h.ledger(tc.plan, tc.key); l != nil {
			t.Fatalf("an unknown grant made a ledger: %v", l)
		}
	}

	// A detached key is unknown for grants, but its last reports count.
	h.grant("n1", "p1", "k1", 4)
	h.ok(cmdDetach("p1", "k1"))
	if g := h.grant("n1", "p1", "k1", 1); !g.Unknown {
		t.Fatalf("grant of a detached key: %v", g)
	}
	h.report("n1", "p1", "k1", day, 3, 0, 0)
	if l := h.ledger("p1", "k1"); usedNow(l) != 3 || l.Daily[day] != 3 {
		t.Fatalf("report of a detached key: %v", l)
	}
}

// TestLedgerRollover checks that a new period starts without the old
// period's grants and with the usage its days already have.
func TestLedgerRollover(t *testing.T) {
	type step struct {
		at         time.Time
		start, end time.Time
	}
	for _, tc := range []struct {
		name   string
		q      *pb.QuotaSettings
		before step // the last moment of a period
		after  step // the first moment of the next
	}{
		{"day", quota(10, "DAY", 0),
			step{date(2024, time.March, 13, 23, 59, 59), date(2024, time.March, 13, 0, 0, 0), date(2024, time.March, 14, 0, 0, 0)},
			step{date(2024, time.March, 14, 0, 0, 0), date(2024, time.March, 14, 0, 0, 0), date(2024, time.March, 15, 0, 0, 0)}},
		{"week from Wednesday", quota(10, "WEEK", 3),
			step{date(2024, time.March, 12, 23, 59, 59), date(2024, time.March, 6, 0, 0, 0), date(2024, time.March, 13, 0, 0, 0)},
			step{date(2024, time.March, 13, 0, 0, 0), date(2024, time.March, 13, 0, 0, 0), date(2024, time.March, 20, 0, 0, 0)}},
		{"week from Sunday", quota(10, "WEEK", 0),
			step{date(2024, time.March, 9, 23, 59, 59), date(2024, time.March, 3, 0, 0, 0), date(2024, time.March, 10, 0, 0, 0)},
			step{date(2024, time.March, 10, 0, 0, 0), date(2024, time.March, 10, 0, 0, 0), date(2024, time.March, 17, 0, 0, 0)}},
		{"month end", quota(10, "MONTH", 0),
			step{date(2023, time.January, 31, 23, 59, 59), date(2023, time.January, 1, 0, 0, 0), date(2023, time.February, 1, 0, 0, 0)},
			step{date(2023, time.February, 1, 0, 0, 0), date(2023, time.February, 1, 0, 0, 0), date(2023, time.March, 1, 0, 0, 0)}},
		{"month from the 28th", quota(10, "MONTH", 27),
			step{date(2023, time.February, 27, 23, 59, 59), date(2023, time.January, 28, 0, 0, 0), date(2023, time.February, 28, 0, 0, 0)},
			step{date(2023, time.February, 28, 0, 0, 0), date(2023, time.February, 28, 0, 0, 0), date(2023, time.March, 28, 0, 0, 0)}},
		{"year end", quota(10, "MONTH", 0),
			step{date(2023, time.December, 31, 23, 59, 59), date(2023, time.December, 1, 0, 0, 0), date(2024, time.January, 1, 0, 0, 0)},
			step{date(2024, time.January, 1, 0, 0, 0), date(2024, time.January, 1, 0, 0, 0), date(2024, time.February, 1, 0, 0, 0)}},
		{"leap day", quota(10, "DAY", 0),
			step{date(2024, time.February, 29, 23, 59, 59), date(2024, time.February, 29, 0, 0, 0), date(2024, time.March, 1, 0, 0, 0)},
			step{date(2024, time.March, 1, 0, 0, 0), date(2024, time.March, 1, 0, 0, 0), date(2024, time.March, 2, 0, 0, 0)}},
		{"leap month", quota(10, "MONTH", 0),
			step{date(2024, time.February, 29, 23, 59, 59), date(2024, time.February, 1, 0, 0, 0), date(2024, time.March, 1, 0, 0, 0)},
			step{date(2024, time.March, 1, 0, 0, 0), date(2024, time.March, 1, 0, 0, 0), date(2024, time.April, 1, 0, 0, 0)}},
		{"leap week", quota(10, "WEEK", 4), // Thursday 29 February 2024
			step{date(2024, time.February, 28, 23, 59, 59), date(2024, time.February, 22, 0, 0, 0), date(2024, time.February, 29, 0, 0, 0)},
			step{date(2024, time.February, 29, 0, 0, 0), date(2024, time.February, 29, 0, 0, 0), date(2024, time.March, 7, 0, 0, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestFSM(t, tc.before.at)
			h.setup(tc.q)
			g := h.grant("n1", "p1", "k1", 8)
			if g.Granted != 8 || g.PeriodStart != tc.before.start.Unix() || g.PeriodEnd != tc.before.end.Unix() {
				t.Fatalf("grant before the rollover: %v, want period [%v, %v)", g, tc.before.start, tc.before.end)
			}
			oldDay := DayOf(tc.before.at.Unix())
			h.report("n1", "p1", "k1", oldDay, 5, g.PeriodStart, 0)

			h.now = tc.after.at
			g2 := h.grant("n2", "p1", "k1", 10)
			if g2.Granted != 10 || g2.Remaining != 0 || g2.PeriodStart != tc.after.start.Unix() || g2.PeriodEnd != tc.after.end.Unix() {
				t.Fatalf("grant after the rollover: %v, want all 10 in [%v, %v)", g2, tc.after.start, tc.after.end)
			}
			l := h.ledger("p1", "k1")
			// n1's grant of the old period is held until n1 reports or
			// hands it back, but no longer counts against the new period.
			if usedNow(l) != 0 || heldBy(l, "n1") != 3 || heldBy(l, "n2") != 10 || l.PeriodStart != tc.after.start.Unix() {
				t.Fatalf("ledger after the rollover: %v", l)
			}
			// n1's last report of the old period counts for its day only.
			h.report("n1", "p1", "k1", oldDay, 3, g.PeriodStart, 0)
			h.report("n1", "p1", "k1", oldDay, 0, g.PeriodStart, 3) // a release of a lapsed grant
			l = h.ledger("p1", "k1")
			if usedNow(l) != 0 || l.Daily[oldDay] != 8 || heldBy(l, "n2") != 10 || heldBy(l, "n1") != 0 {
				t.Fatalf("late report of the old period: %v", l)
			}
			checkLedgerInvariant(t, l, 10, "after the rollover")
		})
	}
}

// TestLedgerRecountsUsedFromDays changes a plan's period mid-way: the new
// period's used is what its days already hold.
func TestLedgerRecountsUsedFromDays(t *testing.T) {
	for _, tc := range []struct {
		name     string
		usage    map[time.Time]int64 // day -> requests
		at       time.Time           // when the period changes
		to       *pb.QuotaSettings
		wantUsed int64
	}{
		{"day to week from Sunday", map[time.Time]int64{
			date(2024, time.March, 9, 0, 0, 0):  100, // Saturday: the week before
			date(2024, time.March, 10, 0, 0, 0): 7,   // Sunday
			date(2024, time.March, 11, 0, 0, 0): 11,
			date(2024, time.March, 12, 0, 0, 0): 13,
		}, date(2024, time.March, 12, 18, 0, 0), quota(1000, "WEEK", 0), 31},
		{"day to week from Monday", map[time.Time]int64{
			date(2024, time.March, 10, 0, 0, 0): 7,
			date(2024, time.March, 11, 0, 0, 0): 11,
			date(2024, time.March, 12, 0, 0, 0): 13,
		}, date(2024, time.March, 12, 18, 0, 0), quota(1000, "WEEK", 1), 24},
		{"day to month across the leap day", map[time.Time]int64{
			date(2024, time.January, 31, 0, 0, 0):  50,
			date(2024, time.February, 1, 0, 0, 0):  1,
			date(2024, time.February, 28, 0, 0, 0): 5,
			date(2024, time.February, 29, 0, 0, 0): 7,
		}, date(2024, time.February, 29, 20, 0, 0), quota(1000, "MONTH", 0), 13},
		{"day to month from the 15th", map[time.Time]int64{
			date(2024, time.February, 14, 0, 0, 0): 50,
			date(2024, time.February, 15, 0, 0, 0): 1,
			date(2024, time.March, 1, 0, 0, 0):     2,
			date(2024, time.March, 14, 0, 0, 0):    4,
		}, date(2024, time.March, 14, 20, 0, 0), quota(1000, "MONTH", 14), 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first time.Time
			for d := range tc.usage {
				if first.IsZero() || d.Before(first) {
					first = d
				}
			}
			h := newTestFSM(t, first)
			h.setup(quota(1000, "DAY", 0))
			days := make([]time.Time, 0, len(tc.usage))
			for d := range tc.usage {
				days = append(days, d)
			}
			sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
			for _, d := range days {
				h.now = d.Add(12 * time.Hour)
				g := h.grant("n1", "p1", "k1", tc.usage[d])
				h.report("n1", "p1", "k1", DayOf(d.Unix()), tc.usage[d], g.PeriodStart, 0)
			}
			h.now = tc.at
			h.ok(cmdPlan("p1", false, tc.to, "a1/prod"))
			g := h.grant("n1", "p1", "k1", 1)
			if g.Remaining != 1000-tc.wantUsed-1 {
				t.Fatalf("remaining %d, want %d", g.Remaining, 1000-tc.wantUsed-1)
			}
			if l := h.ledger("p1", "k1"); usedNow(l) != tc.wantUsed {
				t.Fatalf("used %d, want %d (daily %v)", usedNow(l), tc.wantUsed, l.Daily)
			}
		})
	}
}

// TestLedgerReportFromAheadCountsWhenItsPeriodComes: a node whose clock is
// ahead reports a day of the next period; the ledger counts it there.
func TestLedgerReportFromAheadCountsWhenItsPeriodComes(t *testing.T) {
	h := newTestFSM(t, date(2024, time.March, 13, 23, 59, 0))
	h.setup(quota(10, "DAY", 0))
	h.grant("n1", "p1", "k1", 4)
	tomorrow := DayOf(date(2024, time.March, 14, 0, 0, 0).Unix())
	h.report("n1", "p1", "k1", tomorrow, 2, 0, 0)
	if l := h.ledger("p1", "k1"); usedNow(l) != 0 || l.Daily[tomorrow] != 2 {
		t.Fatalf("report of the next day: %v", l)
	}
	h.now = date(2024, time.March, 14, 0, 0, 1)
	if g := h.grant("n1", "p1", "k1", 100); g.Granted != 8 {
		t.Fatalf("granted %d in the new day, want 10 - 2 already used", g.Granted)
	}
}

func TestLedgerSetRemaining(t *testing.T) {
	h := newTestFSM(t, t0) // Wednesday 13 March 2024
	h.setup(quota(50, "DAY", 0))
	day := DayOf(t0.Unix())
	start := date(2024, time.March, 13, 0, 0, 0).Unix()
	g := h.grant("n1", "p1", "k1", 10)
	h.report("n1", "p1", "k1", day, 10, g.PeriodStart, 0)

	h.ok(cmdSetRemaining("p1", "k1", 100))
	l := h.ledger("p1", "k1")
	if extraNow(l) != 60 || l.PeriodExtra[start] != 60 {
		t.Fatalf("extension: %v", l)
	}
	g = h.grant("n1", "p1", "k1", 1000)
	if g.Granted != 100 || g.Limit != 110 || g.Remaining != 0 {
		t.Fatalf("grant after an extension to 100: %v", g)
	}
	checkLedgerInvariant(t, h.ledger("p1", "k1"), 50, "after the extension")

	// The extension belongs to its period: changing the period away and back
	// keeps it; the next period starts without it.
	h.ok(cmdPlan("p1", false, quota(50, "WEEK", 0), "a1/prod"))
	if g := h.grant("n2", "p1", "k1", 0); g.Limit != 50 {
		t.Fatalf("limit in the week period %d, want 50", g.Limit)
	}
	h.ok(cmdPlan("p1", false, quota(50, "DAY", 0), "a1/prod"))
	if g := h.grant("n2", "p1", "k1", 0); g.Limit != 110 {
		t.Fatalf("limit back in the day period %d, want 110", g.Limit)
	}
	h.now = t0.Add(24 * time.Hour)
	g = h.grant("n1", "p1", "k1", 1000)
	if g.Limit != 50 || g.Granted != 50 {
		t.Fatalf("next day: %v, want the plan's 50", g)
	}
	l = h.ledger("p1", "k1")
	if extraNow(l) != 0 || l.PeriodExtra[start] != 60 {
		t.Fatalf("the extension's history: %v", l)
	}
	// Zero remaining stops grants at once.
	h.report("n1", "p1", "k1", DayOf(h.now.Unix()), 20, g.PeriodStart, 30)
	h.ok(cmdSetRemaining("p1", "k1", 0))
	if g := h.grant("n2", "p1", "k1", 5); g.Granted != 0 {
		t.Fatalf("granted %d after remaining was set to 0", g.Granted)
	}
}

// TestLedgerSettlesGrantsLongLapsed: a grant left unreported two days past
// its period's end is settled: its units stay counted, in no node's name.
func TestLedgerSettlesGrantsLongLapsed(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(10, "WEEK", 0))
	g := h.grant("n1", "p1", "k1", 4)
	h.now = time.Unix(g.PeriodEnd, 0).Add(48 * time.Hour)
	h.grant("n2", "p1", "k1", 0)
	l := h.ledger("p1", "k1")
	if len(l.Grants) != 0 || len(l.Settled) != 1 || l.Settled[0].Units != 4 || l.Settled[0].Start != g.PeriodStart || l.Settled[0].End != g.PeriodEnd {
		t.Fatalf("a grant two days past its period: %v", l)
	}
}

// TestLedgerNoQuotaUsageCountsWhenQuotaComesBack: requests reported while
// the plan had no quota count against a quota added back in the period.
func TestLedgerNoQuotaUsageCountsWhenQuotaComesBack(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(nil)
	h.report("n1", "p1", "k1", DayOf(t0.Unix()), 30, 0, 0)
	h.ok(cmdPlan("p1", false, quota(50, "DAY", 0), "a1/prod"))
	if g := h.grant("n1", "p1", "k1", 100); g.Granted != 20 {
		t.Fatalf("granted %d after 30 reported without a quota, limit 50: want 20", g.Granted)
	}
}

// TestLedgerStaleRun: once the ledger settled a node (it was removed), the
// node's later batches of the same run apply nothing and say so; a new run
// starts with a settle.
func TestLedgerStaleRun(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(100, "DAY", 0))
	batch := func(run string, seq uint64, settle bool, want int64) *pb.Result {
		return h.ok(cmdLedger(&pb.LedgerBatch{NodeId: "n1", Run: run, Seq: seq, Settle: settle, Grants: []*pb.GrantRequest{grantReq("p1", "k1", want)}}))
	}
	if r := batch("r1", 1, true, 10); r.Ledger.Grants[0].Granted != 10 {
		t.Fatalf("first batch: %v", r)
	}
	if r := batch("r1", 1, true, 10); r.Ledger.Grants[0].Granted != 10 || heldBy(h.ledger("p1", "k1"), "n1") != 10 || len(h.ledger("p1", "k1").Settled) != 0 {
		t.Fatalf("a resent first batch applied again (or settled the first's grant): %v %v", r, h.ledger("p1", "k1"))
	}
	h.ok(cmdLedger(&pb.LedgerBatch{NodeId: "n1", Settle: true})) // the leader removed n1
	r := batch("r1", 2, false, 10)
	if !r.GetLedger().GetStaleRun() || len(r.GetLedger().GetGrants()) != 0 || heldBy(h.ledger("p1", "k1"), "n1") != 0 {
		t.Fatalf("a batch of a settled run: %v %v", r, h.ledger("p1", "k1"))
	}
	if r := batch("r2", 1, true, 10); r.Ledger.Grants[0].Granted != 10 {
		t.Fatalf("a new run: %v", r)
	}
}
