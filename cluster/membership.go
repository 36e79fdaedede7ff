package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/tollgate/tollgate/proto"
)

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

// seatLoop runs on a node that opened an empty data dir and did not
// bootstrap a cluster of one, until the node holds a seat in Raft: either
// it bootstraps with the others of an agreed view (BootstrapExpect), or a
// leader added it as a non-voter. Until then it publishes Fresh, so a
// leader that finds it a voter (its id held a seat on a data dir since
// wiped) knows it forgot its votes and gives it a new seat.
//
// Bootstrap happens only on agreement: each node publishes the digest of
// the servers it would bootstrap with (bootstrapView), and bootstraps once
// every one of them publishes the same digest and none has Raft state,
// and no peer outside the view knows a leader.
func (n *Node) seatLoop() {
	defer n.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.seated() {
			n.setMeta(func(m *nodeMeta) { m.Fresh = false })
			n.log.Info("holds a seat in raft", "data_id", n.dataID)
			return
		}
		if n.cfg.BootstrapExpect <= 1 {
			continue // a joining node waits to be added by the leader
		}
		members := n.gossip.Members()
		view, digest := bootstrapView(n.ID(), n.cfg.BootstrapExpect, members)
		n.setMeta(func(m *nodeMeta) { m.Boot = digest })
		byID := map[string]Member{}
		for _, m := range members {
			byID[m.ID] = m
		}
		if !bootstrapAgreed(view, digest, byID) {
			continue
		}
		if id := n.peerLeader(members); id != "" && !slices.ContainsFunc(view, func(s raft.Server) bool { return string(s.ID) == id }) {
			n.log.Info("not bootstrapping: a peer already follows a leader outside the agreed view", "leader", id)
			continue
		}
		n.setMeta(func(m *nodeMeta) { m.Fresh = false })
		err := n.raft.BootstrapCluster(raft.Configuration{Servers: view}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.log.Error("bootstrap raft", "err", err)
			continue
		}
		n.log.Info("bootstrapped raft with the view every server agreed to", "servers", len(view), "expect", n.cfg.BootstrapExpect, "view", digest)
		return
	}
}

// setMeta changes what this node publishes by gossip.
func (n *Node) setMeta(change func(*nodeMeta)) {
	if err := n.gossip.setMeta(change); err != nil {
		n.log.Debug("publish gossip metadata", "err", err)
	}
}

// seated tells whether the leader gave this node a non-voter seat: its
// log reaches what the leader had applied (so its latest configuration
// is not an old one replayed from the log) and that configuration lists
// it as a non-voter.
func (n *Node) seated() bool {
	id, _ := n.Leader()
	if id == "" || id == n.ID() {
		return false
	}
	m, ok := n.gossip.Member(id)
	if !ok || m.GRPCAddr == "" {
		return false
	}
	st, ok := n.peerStatus(m)
	if !ok || n.raft.LastIndex() < st.AppliedIndex {
		return false
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.ID() {
			return s.Suffrage == raft.Nonvoter
		}
	}
	return false
}

// peerLeader returns the leader a live peer follows, if any.
func (n *Node) peerLeader(ms []Member) string {
	for _, m := range ms {
		if m.ID == n.ID() || m.State != "alive" || m.GRPCAddr == "" {
			continue
		}
		if st, ok := n.peerStatus(m); ok && st.LeaderId != "" {
			return st.LeaderId
		}
	}
	return ""
}

// peerStatus asks a peer for its Raft status, within a second.
func (n *Node) peerStatus(m Member) (*pb.StatusResponse, bool) {
	c, err := n.peers.client(m.ID, m.GRPCAddr)
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.Status(ctx, &pb.StatusRequest{})
	return st, err == nil
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
			// A new term starts from what gossip shows then.
			clear(n.missingSince)
			clear(n.seats)
		}
	}
}

// reconcile gathers one pass's input, lets decide choose, and makes the
// changes it chose, in order.
func (n *Node) reconcile() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	members := map[string]Member{}
	for _, m := range n.gossip.Members() {
		members[m.ID] = m
	}
	plan := decide(reconcileInput{
		Self:         n.ID(),
		SelfBoot:     n.gossip.published().Boot,
		Now:          n.cfg.Now(),
		ReapAfter:    n.cfg.ReapAfter,
		Servers:      servers,
		Members:      members,
		Progress:     n.seen.progress(n.raft.CurrentTerm()),
		LeaderIndex:  n.raft.CommitIndex(),
		MissingSince: n.missingSince,
		Seats:        n.seats,
	})
	n.missingSince, n.seats = plan.MissingSince, plan.Seats
	for _, a := range plan.Actions {
		if err := n.execute(a); err != nil {
			n.log.Warn("change raft membership", "action", a.Kind.String(), "id", a.ID, "why", a.Why, "err", err)
			continue
		}
		n.log.Info("changed raft membership", "action", a.Kind.String(), "id", a.ID, "raft_addr", a.Addr, "why", a.Why)
	}
}

// execute makes one change decide chose.
func (n *Node) execute(a action) error {
	const timeout = 5 * time.Second
	id := raft.ServerID(a.ID)
	switch a.Kind {
	case actAdd:
		if err := n.raft.AddNonvoter(id, a.Addr, 0, timeout).Error(); err != nil {
			return err
		}
		n.recordSeat(a)
	case actPromote:
		return n.raft.AddVoter(id, a.Addr, 0, timeout).Error()
	case actMove:
		if a.Voter {
			return n.raft.AddVoter(id, a.Addr, 0, timeout).Error()
		}
		return n.raft.AddNonvoter(id, a.Addr, 0, timeout).Error()
	case actReplace:
		if err := n.raft.RemoveServer(id, 0, timeout).Error(); err != nil {
			return err
		}
		delete(n.seats, a.ID)
		if err := n.raft.AddNonvoter(id, a.Addr, 0, timeout).Error(); err != nil {
			return err
		}
		n.recordSeat(a)
	case actReap:
		if err := n.raft.RemoveServer(id, 0, timeout).Error(); err != nil {
			return err
		}
		n.gossip.forget(a.ID)
		delete(n.missingSince, a.ID)
		delete(n.seats, a.ID)
		n.settle(a.ID)
	}
	return nil
}

func (n *Node) recordSeat(a action) {
	if a.DataID != "" {
		n.seats[a.ID] = a.DataID
	}
}

// dataIDFile holds the data dir's identity.
const dataIDFile = "data-id"

// loadDataID returns the data dir's identity, creating it (random) on
// the first open of the data dir.
func loadDataID(dir string) (string, error) {
	path := filepath.Join(dir, dataIDFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read data dir identity %s: %w", path, err)
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("make a data dir identity: %w", err)
	}
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write data dir identity %s: %w", path, err)
	}
	return id, nil
}

// settle counts a removed node's outstanding grants as used: it can spend
// them no more, and they must never be handed out twice.
func (n *Node) settle(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := n.applyLocal(ctx, &pb.Command{
		RequestId:    newRequestID(),
		TimeUnixNano: n.ledgerNow().UnixNano(),
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
