package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hasPlans tells whether n's configuration holds every plan in ids.
func hasPlans(n *Node, ids ...string) bool {
	for _, id := range ids {
		if n.Config().GetUsagePlans()[id] == nil {
			return false
		}
	}
	return true
}

// waitCaughtUpWith polls n until it is caught up and checks that, from the
// moment it says so, its state holds the plans.
func waitCaughtUpWith(t *testing.T, n *Node, plans ...string) {
	t.Helper()
	eventually(t, 15*time.Second, n.CaughtUp, n.ID()+" catches up")
	if !hasPlans(n, plans...) {
		t.Fatalf("%s says it caught up without the plans %v: %v", n.ID(), plans, n.Config().GetUsagePlans())
	}
	if r := n.Readiness(); !r.CaughtUp || r.Leader == "" || r.AppliedIndex < r.TargetIndex {
		t.Fatalf("%s readiness %+v", n.ID(), r)
	}
}

// TestScenario12RestartedNodeIsNotCaughtUpWithoutLeader restarts the three
// nodes of a cluster, the first alone: its log has entries but no leader can
// be elected, so it is not caught up (and has not applied its log); once the
// others return, it is caught up with its state back. A fresh node joining
// afterwards is caught up only with the leader's state.
func TestScenario12RestartedNodeIsNotCaughtUpWithoutLeader(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	plans := []string{"p1", "p2", "p3"}
	for _, id := range plans {
		createPlan(t, tc.leader(), id)
	}
	for _, n := range tc.nodes {
		eventually(t, 10*time.Second, func() bool { return n.CaughtUp() && hasPlans(n, plans...) }, n.ID()+" applies the plans")
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if err := tc.nodes[id].Close(); err != nil {
			t.Fatalf("close %s: %v", id, err)
		}
	}

	n1 := tc.start("n1", 3)
	target := n1.Readiness().TargetIndex
	if target == 0 {
		t.Fatal("a restarted node with a log reports no target index")
	}
	// Alone, n1 cannot win an election (two votes of three are needed):
	// it must stay not caught up, whatever its state shows.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if r := n1.Readiness(); r.CaughtUp || n1.CaughtUp() || r.TargetIndex != target {
			t.Fatalf("n1 alone: %+v (target at open %d)", r, target)
		}
		time.Sleep(10 * time.Millisecond) // observation interval
	}
	t.Logf("n1 alone: %+v, %d plans in its state", n1.Readiness(), len(n1.Config().GetUsagePlans()))

	tc.start("n2", 3, n1.GossipAddr())
	tc.start("n3", 3, n1.GossipAddr())
	waitCaughtUpWith(t, n1, plans...)

	n4 := tc.start("n4", 1, n1.GossipAddr())
	waitCaughtUpWith(t, n4, plans...)
	if r := n4.Readiness(); r.TargetIndex == 0 {
		t.Fatalf("fresh node caught up without learning the leader's index: %+v", r)
	}
}

// TestScenario12SingleNodeCatchesUpAfterRestart: a cluster of one is caught
// up after a restart once it applied its whole log again.
func TestScenario12SingleNodeCatchesUpAfterRestart(t *testing.T) {
	dir := t.TempDir()
	n := openSingle(t, singleNodeConfig(dir))
	waitCaughtUpWith(t, n)
	createPlan(t, n, "p1")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := openSingle(t, singleNodeConfig(dir))
	waitCaughtUpWith(t, n2, "p1")
}

// TestScenario13SecondOpenOfADataDirFailsFast: a second node on a data dir
// in use fails within the lock timeout, naming the data dir and the pid of
// the holder; once the holder closes, the data dir opens again.
func TestScenario13SecondOpenOfADataDirFailsFast(t *testing.T) {
	dir := t.TempDir()
	n := openSingle(t, singleNodeConfig(dir))
	pidFile := filepath.Join(dir, pidFileName)
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file: %q, %v", b, err)
	}

	cfg := singleNodeConfig(dir)
	cfg.NodeID = "n1"
	start := time.Now()
	second, err := Open(cfg)
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("a second node opened a data dir in use")
	}
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("error %v, want ErrDataDirInUse", err)
	}
	if took > 2*time.Second {
		t.Fatalf("the second open took %s to fail", took)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("the error names neither the data dir nor the holder: %v", err)
	}
	// The failed open must leave the holder's pid file alone.
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("pid file after the failed open: %v", err)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file after a clean close: %v", err)
	}
	openSingle(t, singleNodeConfig(dir))
}
