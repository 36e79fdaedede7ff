package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestItem11WholeClusterRestartsOnNewAddresses stops every node of a
// three-node cluster and starts them again on the same data dirs with new
// ports (a docker-compose down/up on a new subnet): Raft finds each server
// by its id at the address gossip knows now, elects a leader within
// seconds, keeps the data, and the leader's configuration follows every
// new address, its own included.
func TestItem11WholeClusterRestartsOnNewAddresses(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	createPlan(t, tc.leader(), "before-restart")

	old := map[string]string{}
	for id, n := range tc.nodes {
		old[id] = n.RaftAddr()
		n.Close()
		delete(tc.listen, id) // come back on new ports
	}
	tc.nodes = map[string]*Node{}

	start := time.Now()
	n1 := tc.start("n1", 3)
	tc.start("n2", 3, n1.GossipAddr())
	tc.start("n3", 3, n1.GossipAddr())
	for id, n := range tc.nodes {
		if n.RaftAddr() == old[id] {
			t.Fatalf("%s came back on its old Raft address %s", id, old[id])
		}
	}
	waitFor(t, 20*time.Second, func() bool { return tc.leader() != nil })
	t.Logf("a leader %s after the restart on new addresses", time.Since(start).Round(time.Millisecond))

	// The data survived on every node, and the cluster takes writes.
	waitFor(t, 10*time.Second, func() bool {
		for _, n := range tc.nodes {
			if n.Config().UsagePlans["before-restart"] == nil {
				return false
			}
		}
		return true
	})
	for _, n := range tc.nodes {
		createPlan(t, n, "after-restart-"+n.ID())
	}

	// The Raft configuration now holds every node's current address.
	waitFor(t, 10*time.Second, func() bool {
		l := tc.leader()
		if l == nil {
			return false
		}
		f := l.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		servers := f.Configuration().Servers
		if len(servers) != 3 {
			return false
		}
		for _, s := range servers {
			n := tc.nodes[string(s.ID)]
			if n == nil || string(s.Address) != n.RaftAddr() {
				return false
			}
		}
		return true
	})
}

// TestItem14WipedDataDirGetsANewSeat restarts a voter with its node id on
// a wiped data dir: it has no memory of its votes, so the leader removes
// its seat first and adds it back as a non-voter, which is promoted once
// it has caught up.
func TestItem14WipedDataDirGetsANewSeat(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	leader := tc.leader()
	createPlan(t, leader, "before-wipe")
	var victim *Node
	for _, n := range tc.nodes {
		if n != leader {
			victim = n
			break
		}
	}
	id := victim.ID()
	oldDataID := victim.dataID

	// A leader reports every server it stops replicating to; watch the
	// others, as leadership may move meanwhile. The seat goes either way:
	// replaced at once, or reaped when the member stayed dead past
	// ReapAfter before its new data dir showed up in gossip.
	removed := make(chan raft.Observation, 16)
	for _, n := range tc.nodes {
		if n == victim {
			continue
		}
		obs := raft.NewObserver(removed, false, func(o *raft.Observation) bool {
			p, ok := o.Data.(raft.PeerObservation)
			return ok && p.Removed && string(p.Peer.ID) == id
		})
		n.raft.RegisterObserver(obs)
		defer n.raft.DeregisterObserver(obs)
	}

	victim.Close()
	delete(tc.nodes, id)
	delete(tc.listen, id) // a new container: new ports too
	if err := os.RemoveAll(filepath.Join(tc.dir, id)); err != nil {
		t.Fatal(err)
	}
	back := tc.start(id, 3, leader.GossipAddr())
	if back.dataID == oldDataID || back.dataID == "" {
		t.Fatalf("a wiped data dir kept its identity %q", back.dataID)
	}

	select {
	case <-removed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the leader did not remove the seat %s held on its wiped data dir", id)
	}
	waitFor(t, 15*time.Second, func() bool {
		l := tc.leader()
		if l == nil {
			return false
		}
		m, ok := l.gossip.Member(id)
		return tc.voters()[id] == "voter" && ok && !m.Fresh && m.DataID == back.dataID
	})
	waitFor(t, 10*time.Second, func() bool { return back.Config().UsagePlans["before-wipe"] != nil })
	createPlan(t, back, "after-wipe")
}
