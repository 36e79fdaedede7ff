package tests

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestHundredThousandKeys runs a node with 100,000 keys imported in ten
// calls: any key is admitted, a sample's quotas stay exact, GetApiKeys
// pages, and a restart keeps every key and its usage.
func TestHundredThousandKeys(t *testing.T) {
	const keys, perCall, quota = 100_000, 10_000, 5
	up := newUpstream(t)
	dir := t.TempDir()
	g := startGateway(t, dir)
	p := setupProduct(t, g, up.URL, map[string]any{
		"quota":    map[string]any{"limit": quota, "period": "DAY"},
		"throttle": map[string]any{"rateLimit": 10000, "burstLimit": 10000},
	})
	path := "/" + p.APIID + "/" + p.Stage + "/pets"
	value := func(i int) string { return fmt.Sprintf("manykeys%012dv%06d", i, i%999983) }
	for lo := 0; lo < keys; lo += perCall {
		var b strings.Builder
		b.WriteString("name,key,enabled,usageplanIds\n")
		for i := lo; i < lo+perCall; i++ {
			fmt.Fprintf(&b, "k%d,%s,true,%s\n", i, value(i), p.PlanID)
		}
		out := g.mustAdmin("POST", "/apikeys?mode=import&format=csv&failonwarnings=true", b.String(), 201)
		if ids, _ := out["ids"].([]any); len(ids) != perCall {
			t.Fatalf("import %d: %d ids, want %d", lo, len(ids), perCall)
		}
	}
	page := g.mustAdmin("GET", "/apikeys?limit=500", nil, 200)
	if items, _ := page["item"].([]any); len(items) != 500 || page["position"] == "" {
		t.Fatalf("first page: %d items, position %v", len(items), page["position"])
	}

	rng := rand.New(rand.NewPCG(1, 2))
	sample := make([]int, 0, 40)
	for range cap(sample) {
		sample = append(sample, rng.IntN(keys))
	}
	// Any key is admitted, once.
	for _, i := range sample {
		if r := g.call(path, value(i)); r.Status != 200 {
			t.Fatalf("key %d: status %d %s", i, r.Status, r.Body)
		}
	}
	// Quotas are exact: the first keys of the sample spend theirs.
	spent := sample[:8]
	for _, i := range spent {
		admitted := 1 // its first request above
		for range quota + 3 {
			if g.call(path, value(i)).Status == 200 {
				admitted++
			}
		}
		if admitted != quota {
			t.Fatalf("key %d: %d admitted, quota %d", i, admitted, quota)
		}
	}

	g.stop()
	g = startGateway(t, dir)
	for _, i := range spent {
		if r := g.call(path, value(i)); r.Status != 429 {
			t.Fatalf("key %d after the restart: status %d, want 429 (its quota was spent)", i, r.Status)
		}
	}
	for _, i := range sample[len(spent):] {
		admitted := 0
		for range quota + 2 {
			if g.call(path, value(i)).Status == 200 {
				admitted++
			}
		}
		if admitted != quota-1 {
			t.Fatalf("key %d after the restart: %d admitted, want %d (one was spent before)", i, admitted, quota-1)
		}
	}
	for range 20 {
		i := rng.IntN(keys)
		if r := g.call(path, value(i)); r.Status != 200 && r.Status != 429 {
			t.Fatalf("key %d after the restart: status %d %s", i, r.Status, r.Body)
		}
	}
}
