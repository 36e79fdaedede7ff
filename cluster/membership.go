package cluster

import (
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/tollgate/tollgate/proto"
)

// maxPromoteLag is how far (in log entries) a non-voter may trail the
// leader and still be promoted to voter.
const maxPromoteLag = 1000

// poke asks the reconcile loop for a pass; gossip events only enqueue.
func (n *Node) poke() {
	select {
	case n.reconcileCh <- struct{}{}:
	default:
	}
}

// joinLoop joins the gossip addresses of Join, retrying until one answers.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	if len(n.cfg.Join) == 0 {
		return
	}
	wait := 200 * time.Millisecond
	for {
		k, err := n.gossip.ml.Join(n.cfg.Join)
		if k > 0 {
			n.log.Info("joined the cluster by gossip", "contacted", k, "join", n.cfg.Join)
			return
		}
		n.log.Error("cannot join the cluster: no --join address answered; retrying", "join", n.cfg.Join, "err", err, "retry_in", wait)
		select {
		case <-n.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// bootstrapLoop waits until gossip shows BootstrapExpect nodes with Raft
// addresses, then bootstraps Raft once with the BootstrapExpect lowest ids,
// unless one of them already belongs to a cluster (then its leader adds
// this node). Every node computes the same set from the same members, so
// the configurations they bootstrap agree.
func (n *Node) bootstrapLoop() {
	defer n.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if id, _ := n.Leader(); id != "" {
			return // a cluster exists and this node is in it
		}
		if n.cfg.BootstrapExpect <= 1 {
			continue // a joining node waits to be added by the leader
		}
		var alive []Member
		for _, m := range n.gossip.Members() {
			if m.State == "alive" && m.RaftAddr != "" {
				alive = append(alive, m)
			}
		}
		if len(alive) < n.cfg.BootstrapExpect {
			continue
		}
		if n.anyPeerHasLeader(alive) {
			return
		}
		sort.Slice(alive, func(i, j int) bool { return alive[i].ID < alive[j].ID })
		var servers []raft.Server
		for _, m := range alive[:n.cfg.BootstrapExpect] {
			servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr), Suffrage: raft.Voter})
		}
		err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
		if err != nil && err != raft.ErrCantBootstrap {
			n.log.Error("bootstrap raft", "err", err)
			continue
		}
		n.log.Info("bootstrapped raft", "servers", len(servers), "expect", n.cfg.BootstrapExpect)
		return
	}
}

func (n *Node) anyPeerHasLeader(ms []Member) bool {
	for _, m := range ms {
		if m.ID == n.ID() || m.GRPCAddr == "" {
			continue
		}
		c, err := n.peers.client(m.GRPCAddr)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.Status(ctx, &pb.StatusRequest{})
		cancel()
		if err == nil && st.LeaderId != "" {
			return true
		}
	}
	return false
}

// reconcileLoop turns gossip membership into Raft configuration, on the
// leader only: on every gossip event and in a periodic full pass that
// catches events it missed.
func (n *Node) reconcileLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.reconcileCh:
		case <-t.C:
		}
		if n.raft.State() == raft.Leader {
			n.reconcile()
		} else {
			clear(n.missingSince)
		}
	}
}

func (n *Node) reconcile() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	inRaft := map[string]raft.Server{}
	for _, s := range servers {
		inRaft[string(s.ID)] = s
	}
	members := map[string]Member{}
	for _, m := range n.gossip.Members() {
		members[m.ID] = m
	}
	now := n.cfg.Now()

	// Add new nodes as non-voters, follow address changes, promote
	// non-voters that have caught up.
	for _, id := range slices.Sorted(maps.Keys(members)) {
		m := members[id]
		if m.State != "alive" || m.RaftAddr == "" || id == n.ID() {
			continue
		}
		s, ok := inRaft[id]
		addr := raft.ServerAddress(m.RaftAddr)
		switch {
		case !ok:
			if err := n.raft.AddNonvoter(raft.ServerID(id), addr, 0, 5*time.Second).Error(); err != nil {
				n.log.Warn("add node to raft", "id", id, "err", err)
				continue
			}
			n.log.Info("added node to raft as non-voter", "id", id, "raft_addr", addr)
		case s.Address != addr:
			var err error
			if s.Suffrage == raft.Voter {
				err = n.raft.AddVoter(raft.ServerID(id), addr, 0, 5*time.Second).Error()
			} else {
				err = n.raft.AddNonvoter(raft.ServerID(id), addr, 0, 5*time.Second).Error()
			}
			if err != nil {
				n.log.Warn("update node address in raft", "id", id, "err", err)
				continue
			}
			n.log.Info("node came back with a new raft address", "id", id, "old", s.Address, "new", addr)
		case s.Suffrage == raft.Nonvoter && n.caughtUp(m):
			if err := n.raft.AddVoter(raft.ServerID(id), addr, 0, 5*time.Second).Error(); err != nil {
				n.log.Warn("promote node to voter", "id", id, "err", err)
				continue
			}
			n.log.Info("promoted node to voter", "id", id)
		}
	}

	// Remove nodes that left, or stayed dead (or unknown to gossip) past
	// ReapAfter; never take the voters that are alive below a quorum of
	// the configuration that remains.
	voters, aliveVoters := 0, 0
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if m, ok := members[string(s.ID)]; string(s.ID) == n.ID() || (ok && (m.State == "alive" || m.State == "suspect")) {
			aliveVoters++
		}
	}
	for _, s := range servers {
		id := string(s.ID)
		if id == n.ID() {
			continue
		}
		m, known := members[id]
		if known {
			delete(n.missingSince, id)
		} else if _, ok := n.missingSince[id]; !ok {
			n.missingSince[id] = now
		}
		reap := false
		switch {
		case known && m.State == "left":
			reap = true
		case known && m.State == "dead":
			reap = now.Sub(m.Since) >= n.cfg.ReapAfter
		case !known:
			reap = now.Sub(n.missingSince[id]) >= n.cfg.ReapAfter
		}
		if !reap {
			continue
		}
		if s.Suffrage == raft.Voter {
			remaining := voters - 1
			if aliveVoters < remaining/2+1 {
				n.log.Warn("not removing a dead voter: the voters left alive would be below quorum", "id", id, "voters", voters, "alive", aliveVoters)
				continue
			}
		}
		if err := n.raft.RemoveServer(s.ID, 0, 5*time.Second).Error(); err != nil {
			n.log.Warn("remove dead node from raft", "id", id, "err", err)
			continue
		}
		if s.Suffrage == raft.Voter {
			voters--
		}
		n.gossip.forget(id)
		delete(n.missingSince, id)
		n.log.Info("removed dead node from raft", "id", id, "gossip_state", m.State)
		n.settle(id)
	}
}

// caughtUp tells whether a node is reachable and close to the leader's log.
func (n *Node) caughtUp(m Member) bool {
	if m.GRPCAddr == "" {
		return false
	}
	c, err := n.peers.client(m.GRPCAddr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return false
	}
	return st.AppliedIndex+maxPromoteLag >= n.raft.AppliedIndex()
}

// settle counts a removed node's outstanding grants as used: it can spend
// them no more, and they must never be handed out twice.
func (n *Node) settle(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := n.applyLocal(ctx, &pb.Command{
		RequestId:    newRequestID(),
		TimeUnixNano: n.cfg.Now().UnixNano(),
		Body:         &pb.Command_Ledger{Ledger: &pb.LedgerBatch{NodeId: id, Settle: true}},
	})
	if err != nil {
		n.log.Warn("settle a removed node's quota grants", "id", id, "err", err)
	}
}

// MemberStatus is one member as GET /cluster shows it.
type MemberStatus struct {
	ID         string `json:"id"`
	Gossip     string `json:"gossip"`   // alive, suspect, dead, left, unknown
	Suffrage   string `json:"suffrage"` // voter, nonvoter, none
	Role       string `json:"role"`     // leader, follower, none
	RaftAddr   string `json:"raftAddr,omitempty"`
	GRPCAddr   string `json:"grpcAddr,omitempty"`
	GossipAddr string `json:"gossipAddr,omitempty"`
}

// Status is the cluster as this node sees it.
type Status struct {
	NodeID       string         `json:"nodeId"`
	Leader       string         `json:"leader"`
	State        string         `json:"state"`
	AppliedIndex uint64         `json:"appliedIndex"`
	Members      []MemberStatus `json:"members"`
}

// ClusterStatus reports the leader, every member with its gossip state,
// Raft suffrage and role, and this node's applied index.
func (n *Node) ClusterStatus() Status {
	leader, _ := n.Leader()
	st := Status{NodeID: n.ID(), Leader: leader, State: n.raft.State().String(), AppliedIndex: n.AppliedIndex()}
	byID := map[string]*MemberStatus{}
	for _, m := range n.gossip.Members() {
		byID[m.ID] = &MemberStatus{ID: m.ID, Gossip: m.State, Suffrage: "none", Role: "none", RaftAddr: m.RaftAddr, GRPCAddr: m.GRPCAddr, GossipAddr: m.Gossip}
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			ms := byID[string(s.ID)]
			if ms == nil {
				ms = &MemberStatus{ID: string(s.ID), Gossip: "unknown", RaftAddr: string(s.Address)}
				byID[ms.ID] = ms
			}
			ms.Suffrage = "nonvoter"
			if s.Suffrage == raft.Voter {
				ms.Suffrage = "voter"
			}
			ms.Role = "follower"
			if ms.ID == leader {
				ms.Role = "leader"
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		st.Members = append(st.Members, *byID[id])
	}
	return st
}
