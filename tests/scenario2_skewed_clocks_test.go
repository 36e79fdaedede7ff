package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScenario2SkewedClocksThroughRealNodes (issue 7, scenario 2): the
// ledger's calendar is the leader's clock. Three real nodes, the leader
// (n1) on the true clock and the followers' whole clocks shifted (the
// faults build): a DAY quota of 300 spent flat out across the three admits
// no more than 300 at the upstream, all on today's date, and the skewed
// nodes say on /metrics how far off they are.
func TestScenario2SkewedClocksThroughRealNodes(t *testing.T) {
	skipNearMidnight(t, 5*time.Minute)
	for _, c := range []struct {
		name    string
		offsets []time.Duration // per node; n1 leads and must be 0
	}{
		{"followers +1h and -2s", []time.Duration{0, time.Hour, -2 * time.Second}},
		{"followers +720h and -2s", []time.Duration{0, 720 * time.Hour, -2 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) { testSkewedClocks(t, c.name, c.offsets) })
	}
}

func testSkewedClocks(t *testing.T, name string, offsets []time.Duration) {
	const limit = 300
	specs := make([]nodeSpec, len(offsets))
	for i, off := range offsets {
		if off != 0 {
			specs[i].clockOffset = off.String()
		}
	}
	start := time.Now()
	nodes := startLedCluster(t, specs)
	if _, id := leaderOf(t, nodes); id != "n1" {
		t.Fatalf("the leader is %s, want n1 (the node on the true clock)", id)
	}
	for i, off := range offsets {
		if off != 0 && !strings.Contains(nodes[i].logs.String(), "this node's clock is skewed for a test") {
			t.Fatalf("node n%d (offset %s) did not say its clock is skewed: is it the faults build?", i+1, off)
		}
	}
	up := newNodeUpstream(t)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": limit, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)
	quotaOnly(t, nodes)
	t.Logf("%.1fs: cluster formed, n1 leads, followers skewed by %v", time.Since(start).Seconds(), offsets[1:])

	rep := runLoad(t, 30*time.Second, "--targets", dataTargets(nodes), "--spread", "1,1,1", "--path", p.path(),
		"--key", p.Key, "--requests", fmt.Sprint(3*limit), "--concurrency", "32")
	afterLoad := up.count.Load()
	logFigures(t, "scenario 2, "+name+", quota 300/DAY, 900 flat out", rep, limit, afterLoad, up.forwarded(nodes))

	rounds, seen := untilEveryNodeRefuses(t, nodes, p, 200, 15*time.Second)
	atRefusal := up.count.Load()
	// A unit a node holds when the others run out is handed back when the
	// key has been idle 5s there, and spent by whoever asks next.
	final := untilUpstreamReaches(t, nodes, p, up, limit, 12*time.Second)
	// The scenario wants the true clock to lead throughout: a skewed node
	// that wins an election (the leader stepping down under load) makes its
	// clock the ledger's calendar.
	if v, _ := nodes[0].cluster(); v.Leader != "n1" {
		t.Errorf("the leader changed to %s (a node with a skewed clock) during the load; n1 measures offset %.3fs to it",
			v.Leader, metric(t, nodes[0], "tollgate_clock_offset_seconds"))
	}
	t.Logf("FIGURES scenario 2, %s: upstream %d after the load, %d once every node answered Limit Exceeded (%d more rounds: %v), %d at the end (limit %d); per node %v",
		name, afterLoad, atRefusal, rounds, seen, final, limit, up.forwarded(nodes))

	if final > limit {
		t.Errorf("the upstream received %d requests on a quota of %d a day", final, limit)
	}
	// Units stranded in grants are handed back and spent again, so the
	// whole quota is admitted: at most one unit per node may still be in
	// flight.
	if final < limit-int64(len(nodes)) {
		t.Errorf("the upstream received %d requests, fewer than the quota %d minus one unit per node", final, limit)
	}
	if rep.Total.Throttled != 0 || rep.Total.Forbidden != 0 || rep.Total.Other != 0 || rep.Total.Errors != 0 {
		t.Errorf("answers other than 200, 429 Limit Exceeded and 503: %v (first error %q)", rep.Total.Statuses, rep.Total.FirstError)
	}

	// Today's usage (the leader's and the true calendar) holds every
	// request; no other day holds any, neither the skewed nodes' days.
	today := time.Now().UTC()
	for i, g := range nodes {
		want := map[string]int64{}
		for d := -1; d <= 1; d++ {
			want[today.AddDate(0, 0, d).Format(time.DateOnly)] = 0
		}
		want[today.Format(time.DateOnly)] = final
		var got map[string]int64
		eventually(t, 10*time.Second, fmt.Sprintf("GetUsage on n%d to show %d today and nothing on the days around", i+1, final), func() bool {
			got = usageDays(t, g, p, today.AddDate(0, 0, -1), today.AddDate(0, 0, 1))
			return fmt.Sprint(got) == fmt.Sprint(want)
		})
		for _, off := range offsets {
			if off < 24*time.Hour {
				continue
			}
			day := today.Add(off)
			if got := usageDays(t, g, p, day, day); got[day.Format(time.DateOnly)] != 0 {
				t.Errorf("GetUsage on n%d shows %v on the skewed node's day", i+1, got)
			}
		}
	}

	// /metrics: the leader's clock minus the node's, and whether that is
	// beyond --max-clock-skew (1s).
	for i, g := range nodes {
		wantOffset := -offsets[i].Seconds()
		wantSkewed := 0.0
		if offsets[i] > time.Second || offsets[i] < -time.Second {
			wantSkewed = 1
		}
		var gotOffset, gotSkewed float64
		deadline := time.Now().Add(5 * time.Second)
		for {
			gotOffset = metric(t, g, "tollgate_clock_offset_seconds")
			gotSkewed = metric(t, g, "tollgate_clock_skewed")
			if near(gotOffset, wantOffset, 0.5) && gotSkewed == wantSkewed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("n%d (clock %+v): /metrics reports tollgate_clock_offset_seconds %.3f, tollgate_clock_skewed %.0f; want %.0f ±0.5 and %.0f",
					i+1, offsets[i], gotOffset, gotSkewed, wantOffset, wantSkewed)
			}
			time.Sleep(50 * time.Millisecond) // polling /metrics
		}
		t.Logf("FIGURES scenario 2, %s: n%d (clock %+v) reports tollgate_clock_offset_seconds %.3f, tollgate_clock_skewed %.0f",
			name, i+1, offsets[i], gotOffset, gotSkewed)
	}
	if v, _ := nodes[0].cluster(); v.Leader != "n1" {
		t.Errorf("the leader changed during the test: %s", v.Leader)
	}
}
