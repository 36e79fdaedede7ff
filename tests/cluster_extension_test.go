package tests

import (
	"testing"
	"time"
)

// TestClusterExtension: a key that used its quota on three nodes gets an
// extension (UpdateUsage) on one node; every node learns of it within
// about a second, and exactly the extension is admitted across the cluster.
func TestClusterExtension(t *testing.T) {
	up := newUpstream(t)
	nodes := startCluster(t, 3)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": 60, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)
	for i := 0; i < 150; i++ {
		nodes[i%3].call(p.path(), p.Key)
	}
	if n := up.count.Load(); n != 60 {
		t.Fatalf("quota 60: upstream saw %d", n)
	}
	extendedAt := time.Now()
	nodes[1].mustAdmin("PATCH", "/usageplans/"+p.PlanID+"/keys/"+p.KeyID+"/usage", map[string]any{
		"patchOperations": []map[string]any{{"op": "replace", "path": "/remaining", "value": "30"}},
	}, 200)
	// Every node admits again within a few seconds.
	firstOK := map[int]time.Duration{}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; len(firstOK) < 3 && up.count.Load() < 90 && time.Now().Before(deadline); i++ {
		n := i % 3
		if r := nodes[n].call(p.path(), p.Key); r.Status == 200 {
			if _, seen := firstOK[n]; !seen {
				firstOK[n] = time.Since(extendedAt)
			}
		}
	}
	for i := 0; i < 150 && up.count.Load() < 90; i++ {
		nodes[i%3].call(p.path(), p.Key)
	}
	for i := range 30 {
		if r := nodes[i%3].call(p.path(), p.Key); r.Status != 429 {
			t.Fatalf("beyond the extension: %d", r.Status)
		}
	}
	if n := up.count.Load(); n != 90 {
		t.Fatalf("quota 60 extended by 30: upstream saw %d, want 90", n)
	}
	t.Logf("FIGURES extension of 30 on node 2: first admission after it on each node %v; 90 admitted in all", firstOK)
	if len(firstOK) != 3 {
		t.Logf("not every node admitted one of the 30 (the others took them first): %v", firstOK)
	}
}
