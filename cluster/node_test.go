package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

func singleNodeConfig(dir string) NodeConfig {
	return NodeConfig{
		NodeID:       "n1",
		DataDir:      dir,
		Timings:      FastRaftTimings(),
		Gossip:       FastGossipTimings(),
		Logger:       discardLogger(),
		RaftLogLevel: "error",
	}
}

// openSingle opens a node and waits until it leads.
func openSingle(t *testing.T, cfg NodeConfig) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	eventually(t, 10*time.Second, n.IsLeader, "a cluster of one elects itself")
	return n
}

func nodeApply(t *testing.T, n *Node, cmd *pb.Command) *pb.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("apply %T: %v", cmd.Body, err)
	}
	if res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("apply %T: %v %s", cmd.Body, res.Code, res.Message)
	}
	return res
}

// nodeState is what a restart must keep.
type nodeState struct {
	config  *pb.Config
	ledgers []*pb.KeyLedger
}

func stateOf(n *Node) nodeState {
	return nodeState{config: n.Config(), ledgers: n.KeyLedgers("p1")}
}

func (s nodeState) equal(o nodeState) bool {
	if !proto.Equal(s.config, o.config) || len(s.ledgers) != len(o.ledgers) {
		return false
	}
	for i := range s.ledgers {
		if !proto.Equal(s.ledgers[i], o.ledgers[i]) {
			return false
		}
	}
	return true
}

// fillNode writes configuration and ledger entries through a node, checking
// that each write is visible on it as soon as Apply returns.
func fillNode(t *testing.T, n *Node) {
	t.Helper()
	nodeApply(t, n, cmdCreateAPI("a1"))
	if n.Config().RestApis["a1"] == nil {
		t.Fatal("api not visible right after its write")
	}
	nodeApply(t, n, cmdDeploy("a1", "d1", "prod"))
	nodeApply(t, n, cmdKey("k1", "valueXofXkeyXoneX0000000"))
	nodeApply(t, n, cmdPlan("p1", true, quota(100, "DAY", 0), "a1/prod"))
	res := nodeApply(t, n, cmdAttach("p1", "k1"))
	if got := n.Config().PlanKeys["p1"].GetKeys()["k1"]; got != res.Index || n.AppliedIndex() < res.Index {
		t.Fatalf("attach at %d: plan keys say %d, applied index %d", res.Index, got, n.AppliedIndex())
	}
	day := DayOf(time.Now().Unix())
	batch := cmdLedger(&pb.LedgerBatch{NodeId: "n1",
		Grants:  []*pb.GrantRequest{grantReq("p1", "k1", 10)},
		Reports: []*pb.UsageReport{{PlanId: "p1", KeyId: "k1", Day: day, Count: 3}},
	})
	batch.RequestId = "batch-1"
	res = nodeApply(t, n, batch)
	if g := res.GetLedger().GetGrants(); len(g) != 1 || g[0].Granted != 10 {
		t.Fatalf("grant: %v", res)
	}
	l := ledgerIn(n.KeyLedgers("p1"), "k1")
	if heldBy(l, "n1") != 10 || usedNow(l) != 3 || l.GetDaily()[day] != 3 {
		t.Fatalf("ledger right after its write: %v", l)
	}
	nodeApply(t, n, cmdSetRemaining("p1", "k1", 500))
}

func TestNodeSingleLeaderAppliesAndRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(dir)
	n := openSingle(t, cfg)
	if id, addr := n.Leader(); id != "n1" || addr != n.RaftAddr() {
		t.Fatalf("leader %q at %q, want n1 at %s", id, addr, n.RaftAddr())
	}
	fillNode(t, n)
	before := stateOf(n)
	lastIndex := n.AppliedIndex()
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	n2 := openSingle(t, singleNodeConfig(dir))
	eventually(t, 10*time.Second, func() bool { return stateOf(n2).equal(before) }, "the restarted node has its configuration and ledgers back")
	res := nodeApply(t, n2, cmdKey("k2", "valueXofXkeyXtwoX0000000"))
	if res.Index <= lastIndex || n2.AppliedIndex() != res.Index {
		t.Fatalf("index after restart %d (applied %d), before %d", res.Index, n2.AppliedIndex(), lastIndex)
	}
}

func TestNodeRestartFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	n := openSingle(t, singleNodeConfig(dir))
	fillNode(t, n)
	before := stateOf(n)
	takeSnapshot(t, n)
	snaps, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no snapshot on disk: %v %v", snaps, err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	n2, err := Open(singleNodeConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	// The snapshot is restored while the node opens, before any election.
	if !stateOf(n2).equal(before) {
		t.Fatalf("state right after open:\n%v\nwant\n%v", n2.Config(), before.config)
	}
	eventually(t, 10*time.Second, n2.IsLeader, "the restarted node leads")

	// The snapshot kept the request ids: a resent batch applies once.
	day := DayOf(time.Now().Unix())
	again := cmdLedger(&pb.LedgerBatch{NodeId: "n1",
		Grants:  []*pb.GrantRequest{grantReq("p1", "k1", 10)},
		Reports: []*pb.UsageReport{{PlanId: "p1", KeyId: "k1", Day: day, Count: 3}},
	})
	again.RequestId = "batch-1"
	nodeApply(t, n2, again)
	if !stateOf(n2).equal(before) {
		t.Fatalf("a resent batch applied again after the restart: %v", n2.KeyLedgers("p1"))
	}
	nodeApply(t, n2, cmdKey("k2", "valueXofXkeyXtwoX0000000"))
	if n2.Config().ApiKeys["k2"] == nil {
		t.Fatal("write after the restart not visible")
	}
}

func TestNodeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*NodeConfig)
		want string
	}{
		{"no node id", func(c *NodeConfig) { c.NodeID = "" }, "node id is required"},
		{"no data dir", func(c *NodeConfig) { c.DataDir = "" }, "data dir is required"},
		{"raft listen without port", func(c *NodeConfig) { c.RaftListen = "127.0.0.1" }, `raft listen address "127.0.0.1"`},
		{"negative bootstrap-expect", func(c *NodeConfig) { c.BootstrapExpect = -1 }, "bootstrap-expect must be 1 or more, got -1"},
		{"data dir is a file", func(c *NodeConfig) { c.DataDir = file }, "create data dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := singleNodeConfig(filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")))
			tc.edit(&cfg)
			n, err := Open(cfg)
			if err == nil {
				n.Close()
				t.Fatal("accepted")
			}
			if n != nil {
				t.Fatal("a failed Open returned a node")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestNodeFailedOpenReleasesEverything fails Open at several points after
// it opened the data dir: each must clean up (no panic), so the same data
// dir and ports open at once afterwards.
func TestNodeFailedOpenReleasesEverything(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		edit func(*NodeConfig)
		want string
	}{
		{"raft port taken", func(c *NodeConfig) { c.RaftListen = busy.Addr().String() }, "raft listen on"},
		{"raft advertise unusable", func(c *NodeConfig) { c.RaftAdvertise = "0.0.0.0" }, "not an address peers can dial"},
		{"grpc port taken", func(c *NodeConfig) { c.GRPCListen = busy.Addr().String() }, ""},
		{"gossip address unusable", func(c *NodeConfig) { c.GossipListen = "127.0.0.1:notaport" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := singleNodeConfig(dir)
			tc.edit(&cfg)
			n, err := Open(cfg)
			if err == nil {
				n.Close()
				t.Fatal("accepted")
			}
			if n != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("node %v, error %q, want it to say %q", n, err, tc.want)
			}
			// Everything the failed Open took is free again: the data dir's
			// lock above all (a second open would wait for it forever).
			opened := make(chan error, 1)
			var n2 *Node
			go func() {
				var err error
				n2, err = Open(singleNodeConfig(dir))
				opened <- err
			}()
			select {
			case err := <-opened:
				if err != nil {
					t.Fatalf("open after the failed open: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("open after the failed open is stuck: the failed one kept the data dir")
			}
			eventually(t, 10*time.Second, n2.IsLeader, "the node leads")
			if err := n2.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// failingStable fails every write: the store behind a guard that was shut.
type failingStable struct{ raft.StableStore }

func (failingStable) Set([]byte, []byte) error       { return errors.New("database not open") }
func (failingStable) SetUint64([]byte, uint64) error { return errors.New("database not open") }

// TestStableGuardDropsWritesAfterClose: a heartbeat Raft handles after
// Close must not reach the closed store (Raft panics on a failed write).
func TestStableGuardDropsWritesAfterClose(t *testing.T) {
	g := &stableGuard{StableStore: failingStable{}}
	if err := g.SetUint64([]byte("CurrentTerm"), 3); err == nil {
		t.Fatal("a write before shut did not reach the store")
	}
	g.shut()
	if err := g.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("a write after shut reached the store: %v", err)
	}
	if err := g.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatalf("a write after shut reached the store: %v", err)
	}
}
