package tests

import (
	"strings"
	"testing"
	"time"
)

// TestScenario4UpdateUsageBelowHeldThroughRealNodes (issue 7, scenario 4):
// UpdateUsage setting a key's remaining to 0 while three real nodes hold
// grants of it revokes what they hold: once the update has answered,
// traffic across every node for a few seconds reaches the upstream at most
// a handful of times. Before the ledger rework 171 more got through.
func TestScenario4UpdateUsageBelowHeldThroughRealNodes(t *testing.T) {
	skipNearMidnight(t, 5*time.Minute)
	const (
		limit  = 1000
		before = 60
		// after bounds what may still reach the upstream once UpdateUsage
		// answered: requests a node admitted from its grant before the
		// revocation reached it (other nodes apply the update within
		// milliseconds of the node that took it).
		after = 3
	)
	up := newNodeUpstream(t)
	nodes := startCluster(t, 3)
	quotaOnly(t, nodes)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": limit, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)

	// 60 requests spread over the nodes, in bursts so that each node asks
	// for more than one unit and holds a grant.
	for i := 0; up.count.Load() < before && i < 10*before; i++ {
		if r := nodes[i%3].call(p.path(), p.Key); r.Status != 200 {
			t.Fatalf("request %d on n%d below the quota: %d %s", i, i%3+1, r.Status, r.Body)
		}
	}
	if n := up.count.Load(); n != before {
		t.Fatalf("the upstream saw %d requests, want %d", n, before)
	}
	atUpdate, atUpdateNodes := up.count.Load(), up.forwarded(nodes)
	res := nodes[1].admin("PATCH", "/usageplans/"+p.PlanID+"/keys/"+p.KeyID+"/usage", map[string]any{
		"patchOperations": []map[string]any{{"op": "replace", "path": "/remaining", "value": "0"}},
	})
	if res.Status != 200 {
		t.Fatalf("UpdateUsage remaining=0: %d %s", res.Status, res.Body)
	}
	sinceUpdate := up.count.Load() - atUpdate

	rep := runLoad(t, 30*time.Second, "--targets", dataTargets(nodes), "--spread", "1,1,1", "--path", p.path(),
		"--key", p.Key, "--rate", "300", "--duration", "3s")
	got, perNodeUp := up.count.Load()-atUpdate, up.forwarded(nodes)
	for i := range perNodeUp {
		perNodeUp[i] -= atUpdateNodes[i]
	}
	logFigures(t, "scenario 4, quota 1000, remaining set to 0 after 60, then 300/s for 3s", rep, 0, got, perNodeUp)
	t.Logf("FIGURES scenario 4: UpdateUsage remaining=0 on n2 answered %s; the upstream received %d more after it (%d while it was being applied), at most %d allowed (171 before the ledger rework)",
		strings.TrimSpace(string(res.Body)), got, sinceUpdate, after)
	if got > after {
		t.Errorf("the upstream received %d requests after remaining was set to 0, want at most %d", got, after)
	}
	if n := rep.Total.Sent - rep.Total.OK - rep.Total.QuotaExceed; n != 0 {
		t.Errorf("%d answers were neither 200 nor 429 Limit Exceeded: %v (first error %q)", n, rep.Total.Statuses, rep.Total.FirstError)
	}
	// The remaining stays 0 on every node, and today's usage holds every
	// request the upstream saw.
	waitUsageEverywhere(t, nodes, p, up.count.Load())
	for i, g := range nodes {
		if _, remaining, _ := usageToday(t, g, p); remaining != 0 {
			t.Errorf("GetUsage on n%d shows remaining %d, want 0", i+1, remaining)
		}
	}
}
