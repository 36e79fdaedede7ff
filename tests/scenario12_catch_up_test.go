package tests

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// healthView is GET /healthz.
type healthView struct {
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	CaughtUp bool   `json:"caughtUp"`
	Applied  uint64 `json:"appliedIndex"`
	Target   uint64 `json:"targetIndex"`
}

func (g *gateway) health() (int, healthView) {
	g.t.Helper()
	r := g.admin("GET", "/healthz", nil)
	var h healthView
	if err := json.Unmarshal(r.Body, &h); err != nil {
		g.t.Fatalf("healthz: %v: %s", err, r.Body)
	}
	return r.Status, h
}

// relaunch starts a stopped node again on its data dir and on the Raft,
// gRPC and gossip addresses it had (Raft knows its peers by address),
// joining through join. It waits until the node listens, not until it is
// ready.
func relaunch(t *testing.T, g *gateway, id string, join string) *gateway {
	t.Helper()
	args := []string{"serve",
		"--data-dir", g.dataDir,
		"--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0",
		"--raft-listen", g.listening["raft"],
		"--grpc-listen", g.listening["grpc"],
		"--gossip-listen", g.listening["gossip"],
		"--advertise-addr", "127.0.0.1",
		"--raft-fast",
		"--node-id", id, "--bootstrap-expect", "3", "--join", join,
	}
	ng := launch(t, args, nil)
	ng.dataDir = g.dataDir
	ng.waitListening()
	return ng
}

// TestScenario12RestartedNodeAnswers503UntilCaughtUp stops a three-node
// cluster and starts one node alone: it has a log but no leader. It used to
// answer a valid key with 403 and list no usage plans; it must answer 503
// with Retry-After on the data plane (the original's error shape) and on
// the admin API (ServiceUnavailableException), and /healthz must say it has
// not caught up. Once the others are back, it serves the key and the plan.
func TestScenario12RestartedNodeAnswers503UntilCaughtUp(t *testing.T) {
	up := newUpstream(t)
	nodes := startCluster(t, 3)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{})
	path := "/" + p.APIID + "/" + p.Stage + "/x"
	eventually(t, 10*time.Second, "every node to serve the key", func() bool {
		for _, g := range nodes {
			if g.call(path, p.Key).Status != 200 {
				return false
			}
		}
		return true
	})
	for _, g := range nodes {
		g.stop()
	}

	n1 := relaunch(t, nodes[0], "n1", nodes[1].listening["gossip"])
	for range 5 {
		r := n1.call(path, p.Key)
		if r.Status != 503 || strings.TrimSpace(string(r.Body)) != `{"message":"Service Unavailable"}` ||
			r.Header.Get("x-amzn-ErrorType") != "ServiceUnavailableException" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("valid key on a node that has not caught up: %d %s %v", r.Status, r.Body, r.Header)
		}
		a := n1.admin("GET", "/usageplans", nil)
		if a.Status != 503 || a.Header.Get("x-amzn-ErrorType") != "ServiceUnavailableException" || a.Header.Get("Retry-After") == "" {
			t.Fatalf("GET /usageplans on a node that has not caught up: %d %s %v", a.Status, a.Body, a.Header)
		}
		status, h := n1.health()
		if status != 503 || h.CaughtUp || h.Status != "catching up" || h.Target == 0 {
			t.Fatalf("healthz on a node that has not caught up: %d %+v", status, h)
		}
		time.Sleep(50 * time.Millisecond) // spacing: the state must hold, not just start so
	}
	_, h := n1.health()
	t.Logf("n1 alone: healthz %+v", h)
	if up.count.Load() == 0 {
		t.Fatal("the upstream saw nothing before the restart")
	}
	before := up.count.Load()

	relaunch(t, nodes[1], "n2", n1.listening["gossip"])
	relaunch(t, nodes[2], "n3", n1.listening["gossip"])
	eventually(t, 30*time.Second, "n1 to catch up", func() bool {
		status, h := n1.health()
		return status == 200 && h.CaughtUp && h.Applied >= h.Target
	})
	if r := n1.call(path, p.Key); r.Status != 200 {
		t.Fatalf("valid key once caught up: %d %s", r.Status, r.Body)
	}
	if up.count.Load() != before+1 {
		t.Fatalf("upstream count %d, want %d: a 503 reached the upstream", up.count.Load(), before+1)
	}
	items, _ := n1.mustAdmin("GET", "/usageplans", nil, 200)["item"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != p.PlanID {
		t.Fatalf("usage plans once caught up: %v", items)
	}
	if !strings.Contains(n1.logs.String(), "tollgate is ready") {
		t.Fatal("n1 caught up without logging that it is ready")
	}
}
