package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/raft"
)

// maxPromoteLag is how far (in log entries) a non-voter's log, as the
// leader has seen it acknowledged, may trail the leader's commit index
// and still be promoted to voter.
const maxPromoteLag = 1000

// reconcileInput is what one reconcile pass decides from: the Raft
// configuration, gossip's members, how far the leader has replicated to
// each follower, and what the leader remembers between passes. decide reads it and nothing
// else: no Raft, no gRPC, no clock.
type reconcileInput struct {
	Self      string // the leader's id
	SelfBoot  string // digest of the bootstrap the leader agreed to, if any
	Now       time.Time
	ReapAfter time.Duration
	Servers   []raft.Server
	Members   map[string]Member
	// Progress is, for each follower, the index up to which the leader
	// saw it acknowledge the leader's log in the leader's term (its match
	// index, measured by the leader: replicationSeen), absent for one
	// whose heartbeats fail; LeaderIndex is the leader's commit index.
	// Nothing a follower says about itself is read.
	Progress    map[string]uint64
	LeaderIndex uint64
	// MissingSince is when each server was first seen without a gossip
	// member.
	MissingSince map[string]time.Time
	// Seats is the data dir identity the leader saw holding each server
	// id's seat.
	Seats map[string]string
}

// actionKind is one change of the Raft configuration.
type actionKind int

const (
	actAdd     actionKind = iota + 1 // add a new member as a non-voter
	actPromote                       // a caught-up non-voter becomes a voter
	actMove                          // follow a server's new address
	actReplace                       // remove a stale seat, then add the member back as a non-voter
	actReap                          // remove a gone member, forget it, settle its grants
)

func (k actionKind) String() string {
	switch k {
	case actAdd:
		return "add"
	case actPromote:
		return "promote"
	case actMove:
		return "move"
	case actReplace:
		return "replace"
	case actReap:
		return "reap"
	}
	return "unknown"
}

// action is one change for the executor to make, in order.
type action struct {
	Kind   actionKind
	ID     string
	Addr   raft.ServerAddress // the address to add or move to
	Voter  bool               // actMove: the server stays a voter
	DataID string             // actAdd, actReplace: the identity that takes the seat
	Why    string             // for the log
}

// reconcilePlan is decide's answer: the actions, and the leader's
// memory for the next pass (seats change only as actions succeed, so
// the executor records them).
type reconcilePlan struct {
	Actions      []action
	MissingSince map[string]time.Time
	Seats        map[string]string
}

// decide turns membership into Raft configuration changes:
//   - a member gossip sees alive that is not in Raft is added as a non-voter;
//   - a server whose member runs on another data dir than the one that
//     held its seat (a fresh voter, or a data dir identity that differs
//     from the one recorded) is removed and added back as a non-voter;
//   - a server whose member has a new Raft address is moved there (the
//     leader's own too);
//   - a non-voter the leader has replicated to within maxPromoteLag of
//     its commit index, and that holds its seat, is promoted;
//   - a server whose member left, or stayed dead or unknown to gossip for
//     ReapAfter, is reaped;
//   - no removal takes the voters alive below a quorum of the voters that
//     remain.
func decide(in reconcileInput) reconcilePlan {
	plan := reconcilePlan{MissingSince: map[string]time.Time{}, Seats: maps.Clone(in.Seats)}
	if plan.Seats == nil {
		plan.Seats = map[string]string{}
	}
	inRaft := map[string]raft.Server{}
	for _, s := range in.Servers {
		inRaft[string(s.ID)] = s
	}
	alive := func(m Member) bool { return m.State == "alive" && m.RaftAddr != "" }
	stale := func(s raft.Server, m Member) bool {
		if string(s.ID) == in.Self || !alive(m) {
			return false
		}
		if m.Fresh && s.Suffrage == raft.Voter && (in.SelfBoot == "" || m.Boot != in.SelfBoot) {
			return true // a voter that opened an empty data dir forgot its votes
		}
		rec, ok := in.Seats[string(s.ID)]
		return ok && m.DataID != "" && rec != m.DataID
	}

	// Quorum arithmetic: voters whose member is alive (or suspect) and
	// holds its seat, the leader included.
	voters, aliveVoters := 0, 0
	for _, s := range in.Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		m, ok := in.Members[string(s.ID)]
		if string(s.ID) == in.Self || (ok && (m.State == "alive" || m.State == "suspect") && !stale(s, m)) {
			aliveVoters++
		}
	}
	// mayRemove applies the quorum cap to removing one server.
	mayRemove := func(s raft.Server) bool {
		if s.Suffrage != raft.Voter {
			return true
		}
		if aliveVoters < (voters-1)/2+1 {
			return false
		}
		voters--
		return true
	}

	for _, id := range slices.Sorted(maps.Keys(in.Members)) {
		m := in.Members[id]
		if !alive(m) {
			continue
		}
		s, ok := inRaft[id]
		addr := raft.ServerAddress(m.RaftAddr)
		switch {
		case !ok && id != in.Self:
			plan.Actions = append(plan.Actions, action{Kind: actAdd, ID: id, Addr: addr, DataID: m.DataID, Why: "new member"})
		case !ok:
		case stale(s, m):
			if !mayRemove(s) {
				continue
			}
			why := "a voter on a fresh data dir"
			if !m.Fresh {
				why = "a data dir other than the one that held the seat"
			}
			plan.Actions = append(plan.Actions, action{Kind: actReplace, ID: id, Addr: addr, DataID: m.DataID, Why: why})
		case s.Address != addr:
			plan.Actions = append(plan.Actions, action{Kind: actMove, ID: id, Addr: addr, Voter: s.Suffrage == raft.Voter, Why: "new address, was " + string(s.Address)})
		case s.Suffrage == raft.Nonvoter && !m.Fresh:
			if p, ok := in.Progress[id]; ok && p+maxPromoteLag >= in.LeaderIndex {
				plan.Actions = append(plan.Actions, action{Kind: actPromote, ID: id, Addr: addr, Why: "caught up"})
			}
		}
		// Remember which data dir holds a seat once it holds it.
		if _, rec := plan.Seats[id]; ok && !rec && !m.Fresh && m.DataID != "" {
			plan.Seats[id] = m.DataID
		}
	}

	for _, s := range in.Servers {
		id := string(s.ID)
		if id == in.Self {
			continue
		}
		m, known := in.Members[id]
		if !known {
			since, ok := in.MissingSince[id]
			if !ok {
				since = in.Now
			}
			plan.MissingSince[id] = since
		}
		reap := false
		switch {
		case known && m.State == "left":
			reap = true
		case known && m.State == "dead":
			reap = in.Now.Sub(m.Since) >= in.ReapAfter
		case !known:
			reap = in.Now.Sub(plan.MissingSince[id]) >= in.ReapAfter
		}
		if !reap || !mayRemove(s) {
			continue
		}
		state := m.State
		if !known {
			state = "unknown"
		}
		plan.Actions = append(plan.Actions, action{Kind: actReap, ID: id, Why: "gossip state " + state})
	}
	return plan
}

// bootstrapView is the set of servers this node would bootstrap Raft
// with, and its digest: the expect lowest ids among the members alive
// with a Raft address, when this node is one of them and no member
// alive has Raft state (a cluster exists: its leader adds this node).
// It returns nil when there is nothing to bootstrap.
func bootstrapView(self string, expect int, members []Member) ([]raft.Server, string) {
	var alive []Member
	for _, m := range members {
		if m.State != "alive" || m.RaftAddr == "" {
			continue
		}
		if m.Stateful {
			return nil, ""
		}
		alive = append(alive, m)
	}
	if expect < 1 || len(alive) < expect {
		return nil, ""
	}
	sort.Slice(alive, func(i, j int) bool { return alive[i].ID < alive[j].ID })
	var servers []raft.Server
	in := false
	h := sha256.New()
	for _, m := range alive[:expect] {
		in = in || m.ID == self
		servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr), Suffrage: raft.Voter})
		h.Write([]byte(m.ID + "\x00" + m.RaftAddr + "\n"))
	}
	if !in {
		return nil, ""
	}
	return servers, hex.EncodeToString(h.Sum(nil)[:12])
}

// bootstrapAgreed tells whether every server of a view is alive and
// publishes the same view, with no Raft state: only then do they all
// bootstrap the same configuration.
func bootstrapAgreed(view []raft.Server, digest string, members map[string]Member) bool {
	if len(view) == 0 || digest == "" {
		return false
	}
	for _, s := range view {
		m, ok := members[string(s.ID)]
		if !ok || m.State != "alive" || m.Stateful || m.Boot != digest {
			return false
		}
	}
	return true
}
