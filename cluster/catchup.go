package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/tollgate/tollgate/proto"
)

// Catching up after a start.
//
// A node serves its state only once it is caught up, so that a restarted
// node never answers from a state older than what it had applied before it
// stopped (a valid key refused, an empty list of plans). It is caught up
// once a leader is known and:
//   - a node that opened a data dir with state: Raft applied every entry
//     its log held at open (raft.LastIndex), and the FSM applied the last
//     command among them. Should the leader have cut the log back below
//     that index (its tail was never committed), it is caught up once it
//     applied the whole log it holds and that log is all committed;
//   - a fresh node (no state at open): it applied what the leader had
//     applied when it first asked (the leader's Status over gRPC), or, when
//     it leads, everything committed.
//
// Caught up is a one-way latch, checked by one goroutine every 10ms until it
// holds: requests read an atomic.

// catchUp is a node's progress towards being caught up.
type catchUp struct {
	fresh     bool   // no Raft state at open
	target    uint64 // raft.LastIndex() at open
	targetCmd uint64 // the last command index at or below target (0: none after the snapshot)

	leaderTarget atomic.Uint64 // fresh node: the leader's applied index, once asked
	asked        atomic.Bool   // fresh node: leaderTarget is set
	ready        atomic.Bool
	done         chan struct{} // closed when ready
}

func (c *catchUp) init(hasState bool, target, targetCmd uint64) {
	c.fresh, c.target, c.targetCmd = !hasState, target, targetCmd
	c.done = make(chan struct{})
}

// lastCommandIndex returns the index of the last command entry of the log
// at or below from and above floor, or 0 when there is none (entries at or
// below floor are in the FSM already).
func lastCommandIndex(logs raft.LogStore, from, floor uint64) uint64 {
	var l raft.Log
	for i := from; i > floor; i-- {
		if err := logs.GetLog(i, &l); err != nil {
			return 0 // compacted: a snapshot holds it
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

// CaughtUp tells whether this node has caught up since it opened, and may
// serve its state. It costs one atomic load.
func (n *Node) CaughtUp() bool { return n.catchUp.ready.Load() }

// Readiness is whether a node serves its state, and how far it is.
type Readiness struct {
	// CaughtUp: the node serves its state (see Node.CaughtUp).
	CaughtUp bool `json:"caughtUp"`
	// AppliedIndex is the last Raft index this node applied.
	AppliedIndex uint64 `json:"appliedIndex"`
	// TargetIndex is the index to reach: the last index of the log at
	// open, or for a fresh node the leader's applied index (0 until known).
	TargetIndex uint64 `json:"targetIndex"`
	// Leader is the leader's id, "" when none is known.
	Leader string `json:"leader"`
}

// Readiness reports whether this node is caught up and how far it is.
func (n *Node) Readiness() Readiness {
	c := &n.catchUp
	leader, _ := n.Leader()
	r := Readiness{CaughtUp: c.ready.Load(), AppliedIndex: n.raft.AppliedIndex(), TargetIndex: c.target, Leader: leader}
	if c.fresh {
		r.TargetIndex = c.leaderTarget.Load()
	}
	return r
}

// watchCaughtUp sets the caught-up latch once it holds.
func (n *Node) watchCaughtUp() {
	defer n.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !n.isCaughtUp() {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
	n.catchUp.ready.Store(true)
	close(n.catchUp.done)
	r := n.Readiness()
	n.log.Info("caught up", "applied_index", r.AppliedIndex, "target_index", r.TargetIndex, "leader", r.Leader)
}

func (n *Node) isCaughtUp() bool {
	c := &n.catchUp
	leader, _ := n.Leader()
	if leader == "" {
		return false
	}
	applied := n.raft.AppliedIndex()
	if c.fresh {
		if leader == n.ID() {
			commit := n.raft.CommitIndex()
			return commit > 0 && applied >= commit
		}
		if !c.asked.Load() {
			idx, err := n.leaderApplied(leader)
			if err != nil {
				return false
			}
			c.leaderTarget.Store(idx)
			c.asked.Store(true)
		}
		return n.fsm.AppliedIndex() >= c.leaderTarget.Load()
	}
	if applied >= c.target && n.fsm.AppliedIndex() >= c.targetCmd {
		return true
	}
	last := n.raft.LastIndex()
	return last < c.target && n.raft.CommitIndex() >= last && applied >= last
}

// leaderApplied asks the leader for its applied index.
func (n *Node) leaderApplied(leader string) (uint64, error) {
	m, ok := n.gossip.Member(leader)
	if !ok || m.GRPCAddr == "" {
		return 0, ErrNotLeader
	}
	c, err := n.peers.client(m.ID, m.GRPCAddr)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return 0, err
	}
	return resp.GetAppliedIndex(), nil
}
