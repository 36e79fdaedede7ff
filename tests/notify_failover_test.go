package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestQuotaNoticesSurviveALeaderFailover: three nodes, a plan of 10 a day
// with notices at 50% and 100%. 5 requests fire 50% once; the leader is
// killed; 5 more on a survivor fire 100% once from the new leader, which
// does not fire 50% again: the webhook gets each threshold exactly once.
func TestQuotaNoticesSurviveALeaderFailover(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // notice id -> deliveries
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			ID        string `json:"id"`
			Threshold int    `json:"threshold"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.ID == "" {
			http.Error(w, "bad notice", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[p.ID]++
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	deliveries := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}

	up := newUpstream(t)
	nodes := startCluster(t, 3)
	v, _ := nodes[0].cluster()
	var leader *gateway
	var others []*gateway
	leaderID := v.Leader
	for i, g := range nodes {
		if fmt.Sprintf("n%d", i+1) == v.Leader {
			leader = g
		} else {
			others = append(others, g)
		}
	}
	if leader == nil {
		t.Fatalf("no leader in %+v", v)
	}
	p := setupProduct(t, others[0], up.URL, map[string]any{"quota": map[string]any{"limit": 10, "period": "DAY"},
		"quotaNotifications": map[string]any{"webhookUrl": hook.URL + "/quota", "thresholds": []int{50, 100}}})
	path := "/" + p.APIID + "/" + p.Stage + "/x"

	notice := func(g *gateway, threshold float64) (map[string]any, bool) {
		r := g.admin("GET", "/usageplans/"+p.PlanID+"/notifications", nil)
		if r.Status != 200 {
			return nil, false
		}
		for _, it := range r.JSON(t)["item"].([]any) {
			if n := it.(map[string]any); n["threshold"] == threshold {
				return n, true
			}
		}
		return nil, false
	}
	admit := func(g *gateway, n int) {
		t.Helper()
		admitted := 0
		eventually(t, 30*time.Second, fmt.Sprintf("%d requests admitted", n), func() bool {
			switch r := g.call(path, p.Key); r.Status {
			case 200:
				admitted++
			case 503, 403, 429: // a leader change, the key not seen yet, no grant yet
			default:
				t.Fatalf("request: %d %s", r.Status, r.Body)
			}
			return admitted == n
		})
	}

	admit(others[0], 5)
	eventually(t, 20*time.Second, "the 50% notice delivered", func() bool {
		n, ok := notice(others[1], 50)
		return ok && n["state"] == "delivered"
	})
	if _, ok := notice(others[1], 100); ok {
		t.Fatal("5 of 10 fired 100%")
	}

	leader.kill()
	eventually(t, 20*time.Second, "a new leader", func() bool {
		v, ok := others[0].cluster()
		return ok && v.Leader != "" && v.Leader != leaderID && others[0].admin("POST", "/usageplans", map[string]any{"name": "probe"}).Status == 201
	})
	admit(others[1], 5)
	var n100 map[string]any
	eventually(t, 30*time.Second, "the 100% notice delivered by the new leader", func() bool {
		n, ok := notice(others[0], 100)
		n100 = n
		return ok && n["state"] == "delivered"
	})
	nv, _ := others[0].cluster()
	if n100["sender"] != nv.Leader {
		t.Fatalf("100%% sent by %v, leader %s", n100["sender"], nv.Leader)
	}
	d := deliveries()
	if len(d) != 2 {
		t.Fatalf("the webhook got %v, want one 50%% and one 100%% notice", d)
	}
	for id, count := range d {
		if count != 1 {
			t.Fatalf("notice %s delivered %d times", id, count)
		}
	}
}
