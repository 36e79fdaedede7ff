package tests

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clusterView is GET /cluster.
type clusterView struct {
	NodeID  string `json:"nodeId"`
	Leader  string `json:"leader"`
	Applied uint64 `json:"appliedIndex"`
	Members []struct {
		ID       string `json:"id"`
		Gossip   string `json:"gossip"`
		Suffrage string `json:"suffrage"`
		Role     string `json:"role"`
	} `json:"members"`
}

func (g *gateway) cluster() (clusterView, bool) {
	g.t.Helper()
	r := g.admin("GET", "/cluster", nil)
	var v clusterView
	if r.Status != 200 || json.Unmarshal(r.Body, &v) != nil {
		return v, false
	}
	return v, true
}

func (v clusterView) voters() int {
	n := 0
	for _, m := range v.Members {
		if m.Suffrage == "voter" {
			n++
		}
	}
	return n
}

// startCluster starts n nodes that form one cluster by gossip.
func startCluster(t *testing.T, n int) []*gateway {
	t.Helper()
	root := t.TempDir()
	expect := fmt.Sprint(n)
	nodes := make([]*gateway, n)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(root, id)
		args := append(loopbackArgs(dir), "--node-id", id, "--bootstrap-expect", expect)
		if i > 0 {
			args = append(args, "--join", nodes[0].listening["gossip"])
		}
		nodes[i] = launch(t, args, nil)
		nodes[i].dataDir = dir
		nodes[i].waitListening()
	}
	for _, g := range nodes {
		g.waitReady()
	}
	eventually(t, 30*time.Second, "three voters and a leader", func() bool {
		v, ok := nodes[0].cluster()
		return ok && v.Leader != "" && v.voters() == n
	})
	return nodes
}

// restart starts a node again on its data dir, joining through via.
func restart(t *testing.T, g *gateway, id string, via *gateway) *gateway {
	t.Helper()
	args := append(loopbackArgs(g.dataDir), "--node-id", id, "--bootstrap-expect", "3", "--join", via.listening["gossip"])
	ng := launch(t, args, nil)
	ng.dataDir = g.dataDir
	ng.waitReady()
	return ng
}

// TestThreeNodes forms a cluster of three real processes, writes on one
// node and reads on another, kills the leader with SIGKILL, writes on a
// survivor, and brings the dead node back to catch up.
func TestThreeNodes(t *testing.T) {
	up := newUpstream(t)
	start := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), what) }
	nodes := startCluster(t, 3)
	step("cluster formed")
	n2, n3 := nodes[1], nodes[2]

	// A product set up on node 2 is served by node 3.
	p := setupProduct(t, n2, up.URL, map[string]any{"quota": map[string]any{"limit": 100, "period": "DAY"}})
	eventually(t, 10*time.Second, "node 3 to see the plan", func() bool {
		return n3.admin("GET", "/usageplans/"+p.PlanID, nil).Status == 200
	})
	path := "/" + p.APIID + "/" + p.Stage + "/hello"
	eventually(t, 10*time.Second, "node 3 to admit the new key", func() bool { return n3.call(path, p.Key).Status == 200 })

	step("node 3 serves what node 2 wrote")
	// Kill the leader.
	v, _ := n2.cluster()
	var leader *gateway
	var leaderID string
	for i, g := range nodes {
		if fmt.Sprintf("n%d", i+1) == v.Leader {
			leader, leaderID = g, v.Leader
		}
	}
	if leader == nil {
		t.Fatalf("no leader in %+v", v)
	}
	leader.kill()
	var survivor *gateway
	for _, g := range nodes {
		if g != leader {
			survivor = g
			break
		}
	}
	// A write on a survivor goes through once a new leader is elected.
	var planID string
	eventually(t, 20*time.Second, "a write after the leader died", func() bool {
		r := survivor.admin("POST", "/usageplans", map[string]any{"name": "after-failover"})
		if r.Status == 201 {
			planID = r.JSON(t)["id"].(string)
			return true
		}
		if r.Status != 503 {
			t.Fatalf("write during failover: %d %s", r.Status, r.Body)
		}
		return false
	})
	step("write after failover")
	nv, _ := survivor.cluster()
	if nv.Leader == "" || nv.Leader == leaderID {
		t.Fatalf("leader after failover = %q (old %q)", nv.Leader, leaderID)
	}

	// The dead node restarts on its data dir and catches up.
	back := restart(t, leader, leaderID, survivor)
	step("old leader restarted")
	eventually(t, 20*time.Second, "the restarted node to see the write it missed", func() bool {
		return back.admin("GET", "/usageplans/"+planID, nil).Status == 200
	})
	eventually(t, 20*time.Second, "three voters again", func() bool {
		v, ok := back.cluster()
		return ok && v.voters() == 3 && v.Leader != ""
	})
	step("three voters again")
	if r := back.call(path, p.Key); r.Status != 200 {
		t.Fatalf("restarted node refused a valid key: %d %s", r.Status, r.Body)
	}
	if testing.Verbose() {
		t.Logf("restarted node's log:\n%s", back.logs.String())
	}
}

// TestJoinErrorsAreClear: a wrong --join target gives a clear error and
// the node keeps retrying; a second node claiming a member's id is refused
// with a clear log line.
func TestJoinErrorsAreClear(t *testing.T) {
	root := t.TempDir()
	lone := launch(t, append(loopbackArgs(filepath.Join(root, "lone")), "--node-id", "lone", "--join", "127.0.0.1:1"), nil)
	eventually(t, 20*time.Second, "two join attempts logged", func() bool {
		return strings.Count(lone.logs.String(), "cannot join the cluster: no --join address answered; retrying") >= 2
	})
	lone.kill()

	first := startGateway(t, filepath.Join(root, "a"), "--node-id", "same")
	twin := launch(t, append(loopbackArgs(filepath.Join(root, "b")), "--node-id", "same", "--join", first.listening["gossip"]), nil)
	eventually(t, 20*time.Second, "the id conflict to be logged", func() bool {
		return strings.Contains(first.logs.String()+twin.logs.String(), "two nodes claim one node id")
	})
	// The first node keeps serving as before.
	if v, ok := first.cluster(); !ok || v.Leader != "same" {
		t.Fatalf("the first node after the conflict: %+v", v)
	}
}
