package tests

import (
	"fmt"
	"testing"
	"time"
)

// TestScenario1PlanPeriodChangeUnderLoad (issue 7, scenario 1): changing a
// plan's quota period mid-period (DAY→WEEK→DAY, four times over) while
// three real nodes spend its quota never frees units the nodes hold: the
// upstream receives at most the quota of 300. Before the ledger rework it
// received 302.
func TestScenario1PlanPeriodChangeUnderLoad(t *testing.T) {
	skipNearMidnight(t, 5*time.Minute) // a UTC week starts at a UTC midnight too
	const limit = 300
	up := newNodeUpstream(t)
	nodes := startCluster(t, 3)
	quotaOnly(t, nodes)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": limit, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)

	// 450 requests at 100/s over the three nodes: the quota runs out after
	// about 3s; a period change at every 30 requests the upstream sees
	// until 240, alternating WEEK and DAY and ending on DAY.
	run := startLoad(t, 30*time.Second, "--targets", dataTargets(nodes), "--spread", "1,1,1", "--path", p.path(),
		"--key", p.Key, "--rate", "100", "--requests", fmt.Sprint(limit*3/2))
	periods := []string{"WEEK", "DAY", "WEEK", "DAY", "WEEK", "DAY", "WEEK", "DAY"}
	var changedAt []int64
	deadline := time.Now().Add(20 * time.Second)
	for i, period := range periods {
		at := int64(30 * (i + 1))
		for up.count.Load() < at {
			select {
			case <-run.done:
				t.Fatalf("the load ended before the upstream saw %d requests (it saw %d); changes made at %v", at, up.count.Load(), changedAt)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the upstream saw only %d requests after 20s; changes made at %v", up.count.Load(), changedAt)
			}
			time.Sleep(2 * time.Millisecond) // polling the upstream's count
		}
		changedAt = append(changedAt, up.count.Load())
		nodes[i%3].mustAdmin("PATCH", "/usageplans/"+p.PlanID, map[string]any{"patchOperations": []map[string]any{
			{"op": "replace", "path": "/quota/period", "value": period},
		}}, 200)
	}
	rep := run.wait()
	afterLoad := up.count.Load()
	logFigures(t, "scenario 1, quota 300, period DAY→WEEK→DAY ×4 under 100/s", rep, limit, afterLoad, up.forwarded(nodes))

	rounds, seen := untilEveryNodeRefuses(t, nodes, p, 200, 15*time.Second)
	atRefusal := up.count.Load()
	final := untilUpstreamReaches(t, nodes, p, up, limit, 12*time.Second)
	t.Logf("FIGURES scenario 1: period changes at upstream counts %v; upstream %d after the load, %d once every node answered Limit Exceeded (%d more rounds: %v), %d at the end (limit %d; 302 before the ledger rework)",
		changedAt, afterLoad, atRefusal, rounds, seen, final, limit)
	if final > limit {
		t.Errorf("the upstream received %d requests on a quota of %d", final, limit)
	}
	if final < limit-int64(len(nodes)) {
		t.Errorf("the upstream received %d requests, fewer than the quota %d minus one unit per node: period changes lost quota", final, limit)
	}
	if n := rep.Total.Sent - rep.Total.OK - rep.Total.QuotaExceed; n != 0 {
		t.Errorf("%d answers were neither 200 nor 429 Limit Exceeded: %v (first error %q)", n, rep.Total.Statuses, rep.Total.FirstError)
	}
	waitUsageEverywhere(t, nodes, p, final)
}
