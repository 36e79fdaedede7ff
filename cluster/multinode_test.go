package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

// testCluster runs real nodes in one process on loopback with tight timings.
type testCluster struct {
	t     *testing.T
	dir   string
	nodes map[string]*Node
	// raftPorts keeps each node's addresses, so a restart reuses them.
	listen map[string][3]string
	// secure, when set, adds a node's TLS and gossip key files.
	secure func(id string, c *NodeConfig)
}

func newTestCluster(t *testing.T) *testCluster {
	return &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, listen: map[string][3]string{}}
}

func (tc *testCluster) config(id string, expect int, join []string) NodeConfig {
	l, ok := tc.listen[id]
	if !ok {
		l = [3]string{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}
	}
	c := NodeConfig{
		NodeID:            id,
		DataDir:           filepath.Join(tc.dir, id),
		RaftListen:        l[0],
		GRPCListen:        l[1],
		GossipListen:      l[2],
		Advertise:         "127.0.0.1",
		Join:              join,
		BootstrapExpect:   expect,
		Timings:           FastRaftTimings(),
		Gossip:            FastGossipTimings(),
		ReapAfter:         time.Second,
		ReconcileInterval: 100 * time.Millisecond,
		Logger:            testLogger(),
		RaftLogLevel:      "error",
	}
	if tc.secure != nil {
		tc.secure(id, &c)
	}
	return c
}

func (tc *testCluster) start(id string, expect int, join ...string) *Node {
	tc.t.Helper()
	n, err := Open(tc.config(id, expect, join))
	if err != nil {
		tc.t.Fatalf("open %s: %v", id, err)
	}
	tc.nodes[id] = n
	tc.listen[id] = [3]string{n.RaftAddr(), n.GRPCAddr(), n.GossipAddr()}
	tc.t.Cleanup(func() { n.Close() })
	return n
}

// startThree starts n1, n2 and n3 (expecting three, joining n1) and waits
// until all three are voters; it returns n1.
func (tc *testCluster) startThree() *Node {
	tc.t.Helper()
	n1 := tc.start("n1", 3)
	tc.start("n2", 3, n1.GossipAddr())
	tc.start("n3", 3, n1.GossipAddr())
	waitFor(tc.t, 15*time.Second, func() bool {
		v := tc.voters()
		return v["n1"] == "voter" && v["n2"] == "voter" && v["n3"] == "voter"
	})
	return n1
}

func (tc *testCluster) leader() *Node {
	for _, n := range tc.nodes {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

func (tc *testCluster) voters() map[string]string {
	out := map[string]string{}
	if l := tc.leader(); l != nil {
		for _, m := range l.ClusterStatus().Members {
			out[m.ID] = m.Suffrage
		}
	}
	return out
}

func createPlan(t *testing.T, n *Node, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Apply(ctx, &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{
		Create: true, Plan: &pb.UsagePlan{Id: id, Name: id},
	}}})
	if err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("create plan %s on %s: %v %v", id, n.ID(), err, res)
	}
	// Read-your-writes on the node that took the write.
	if n.Config().UsagePlans[id] == nil {
		t.Fatalf("plan %s not visible on %s right after its write", id, n.ID())
	}
}

func TestClusterFormsReplicatesForwardsAndHeals(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.start("n1", 3)
	n2 := tc.start("n2", 3, n1.GossipAddr())
	tc.start("n3", 3, n1.GossipAddr())

	waitFor(t, 15*time.Second, func() bool {
		v := tc.voters()
		return v["n1"] == "voter" && v["n2"] == "voter" && v["n3"] == "voter"
	})

	// A write on a follower is forwarded and visible everywhere.
	var follower *Node
	for _, n := range tc.nodes {
		if !n.IsLeader() {
			follower = n
			break
		}
	}
	createPlan(t, follower, "p1")
	waitFor(t, 5*time.Second, func() bool {
		for _, n := range tc.nodes {
			if n.Config().UsagePlans["p1"] == nil {
				return false
			}
		}
		return true
	})

	// A retried command (same request id) applies once.
	cmd := &pb.Command{RequestId: "retry-1", Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Create: true, Plan: &pb.UsagePlan{Id: "p2", Name: "p2"}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	r1, err1 := follower.Apply(ctx, cmd)
	r2, err2 := follower.Apply(ctx, cmd)
	cancel()
	if err1 != nil || err2 != nil || r1.Code != 0 || r2.Code != 0 || r1.Index != r2.Index {
		t.Fatalf("retried command: %v %v %v %v", r1, err1, r2, err2)
	}

	// The leader dies: the others elect a new one and take writes.
	old := tc.leader()
	oldID := old.ID()
	old.Close()
	delete(tc.nodes, oldID)
	waitFor(t, 10*time.Second, func() bool { return tc.leader() != nil })
	for _, n := range tc.nodes {
		createPlan(t, n, "after-"+n.ID())
	}

	// The old leader comes back with its data dir and catches up.
	join := n2.GossipAddr()
	if oldID == "n2" {
		join = tc.listen["n1"][2]
	}
	back := tc.start(oldID, 3, join)
	waitFor(t, 10*time.Second, func() bool {
		c := back.Config()
		for id := range tc.nodes {
			if id != oldID && c.UsagePlans["after-"+id] == nil {
				return false
			}
		}
		return true
	})
}

func TestClusterAddsAFourthAndReapsTheDead(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.startThree()

	// A fourth node with --join only becomes a voter by itself.
	n4 := tc.start("n4", 1, n1.GossipAddr())
	waitFor(t, 10*time.Second, func() bool { return tc.voters()["n4"] == "voter" })
	createPlan(t, n4, "from-n4")

	// A dead follower is removed after ReapAfter; its grants are settled.
	var victim *Node
	for _, n := range tc.nodes {
		if !n.IsLeader() && n.ID() != "n4" {
			victim = n
			break
		}
	}
	vid := victim.ID()
	victim.Close()
	delete(tc.nodes, vid)
	waitFor(t, 15*time.Second, func() bool {
		s := tc.voters()[vid]
		return s != "voter" && s != "nonvoter"
	})
	for _, n := range tc.nodes {
		createPlan(t, n, "after-reap-"+n.ID())
	}
}

func TestClusterNeverReapsBelowQuorum(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	leader := tc.leader()
	// Both followers die: removing either would leave one live voter of
	// two, below quorum, so neither is removed.
	for id, n := range tc.nodes {
		if n != leader {
			n.Close()
			delete(tc.nodes, id)
		}
	}
	deadline := time.Now().Add(3 * time.Second) // well past ReapAfter (1s)
	for time.Now().Before(deadline) {
		st := leader.ClusterStatus()
		voters := 0
		for _, m := range st.Members {
			if m.Suffrage == "voter" {
				voters++
			}
		}
		if voters != 3 && voters != 0 {
			t.Fatalf("a dead voter was removed below quorum: %+v", st.Members)
		}
		time.Sleep(50 * time.Millisecond) // observe for a while: nothing must change
	}
}

func TestApplyWithoutLeaderFailsInTime(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.start("n1", 3) // expects 3 nodes that never come
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := n1.Apply(ctx, &pb.Command{Body: &pb.Command_Noop{Noop: &pb.Noop{}}})
	if err == nil {
		t.Fatal("a write without a leader succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a write without a leader took %s to fail", d)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// testLogger discards node logs unless TOLLGATE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("TOLLGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
