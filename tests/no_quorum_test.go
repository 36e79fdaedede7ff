package tests

import (
	"strings"
	"testing"
	"time"
)

// TestNoQuorum kills two of three nodes. The survivor cannot reach a
// quorum: it spends the quota units it holds, then answers 503 with
// Retry-After for the quota-limited key (the caller is not over its quota,
// so never 429 Limit Exceeded); a key whose plan has no quota keeps being
// served; configuration reads keep working and writes answer 503.
func TestNoQuorum(t *testing.T) {
	up := newUpstream(t)
	nodes := startCluster(t, 3)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": 100000, "period": "DAY"}})
	free := setupProduct(t, nodes[0], up.URL, map[string]any{})
	survivor := nodes[2]
	quotaPath := "/" + p.APIID + "/" + p.Stage + "/x"
	freePath := "/" + free.APIID + "/" + free.Stage + "/x"
	eventually(t, 10*time.Second, "the survivor to serve both keys", func() bool {
		return survivor.call(quotaPath, p.Key).Status == 200 && survivor.call(freePath, free.Key).Status == 200
	})
	nodes[0].kill()
	nodes[1].kill()

	admitted, unavailable := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for unavailable == 0 && time.Now().Before(deadline) {
		r := survivor.call(quotaPath, p.Key)
		switch r.Status {
		case 200:
			admitted++
		case 503:
			unavailable++
			if strings.TrimSpace(string(r.Body)) != `{"message":"Service Unavailable"}` || r.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without its body or Retry-After: %s %v", r.Body, r.Header)
			}
		default:
			t.Fatalf("quota key without a quorum: %d %s", r.Status, r.Body)
		}
	}
	if unavailable == 0 {
		t.Fatalf("no 503 within 30s; %d admitted from held units", admitted)
	}
	t.Logf("without a quorum the survivor admitted %d requests from the units it held, then answered 503", admitted)

	for range 20 {
		if r := survivor.call(freePath, free.Key); r.Status != 200 {
			t.Fatalf("key without a quota, no quorum: %d %s", r.Status, r.Body)
		}
	}
	if r := survivor.admin("GET", "/usageplans/"+p.PlanID, nil); r.Status != 200 {
		t.Fatalf("config read without a quorum: %d", r.Status)
	}
	r := survivor.admin("POST", "/usageplans", map[string]any{"name": "no-quorum"})
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("write without a quorum: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}
