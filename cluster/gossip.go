package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// GossipTimings are memberlist's failure-detection timings. Zero fields
// take memberlist's LAN defaults.
type GossipTimings struct {
	ProbeInterval  time.Duration // LAN default 1s
	ProbeTimeout   time.Duration // LAN default 500ms
	GossipInterval time.Duration // LAN default 200ms
	PushPull       time.Duration // LAN default 30s
	SuspicionMult  int           // LAN default 4
}

// FastGossipTimings are tight timings for tests on loopback.
func FastGossipTimings() GossipTimings {
	return GossipTimings{
		ProbeInterval:  100 * time.Millisecond,
		ProbeTimeout:   50 * time.Millisecond,
		GossipInterval: 20 * time.Millisecond,
		PushPull:       2 * time.Second,
		SuspicionMult:  2,
	}
}

// nodeMeta is what a node tells its peers about itself through gossip.
// Fields are only added, never renumbered: a node that does not know a
// field reads its zero value.
type nodeMeta struct {
	Raft string `json:"r"` // Raft address
	GRPC string `json:"g"` // gRPC address
	// DataID identifies the data dir the node runs on: random, created
	// with the data dir. A node id with a new DataID is a wiped node.
	DataID string `json:"d,omitempty"`
	// Fresh: the node opened an empty data dir and has not yet been given
	// a seat (a bootstrap it agreed to, or a non-voter seat from a
	// leader). A voter that is fresh forgot its votes.
	Fresh bool `json:"f,omitempty"`
	// Stateful: the node opened a data dir that held Raft state, so a
	// cluster exists; nobody bootstraps a new one next to it.
	Stateful bool `json:"s,omitempty"`
	// Boot is the digest of the servers the node would bootstrap with;
	// Raft is bootstrapped only when every one of them publishes it.
	Boot string `json:"b,omitempty"`
}

// Member is a node as gossip sees it.
type Member struct {
	ID       string
	Gossip   string // gossip address
	RaftAddr string
	GRPCAddr string
	State    string // alive, suspect, dead, left
	Since    time.Time
	DataID   string // data dir identity (nodeMeta.DataID)
	Fresh    bool   // nodeMeta.Fresh
	Stateful bool   // nodeMeta.Stateful
	Boot     string // nodeMeta.Boot
}

// gossip wraps memberlist: it keeps every member it has heard of, with its
// state and since when, and tells the reconcile loop about changes.
type gossip struct {
	ml     *memberlist.Memberlist
	addr   string // the address peers join through
	notify func()
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	meta    nodeMeta // what this node publishes
	members map[string]*Member
	alive   atomic.Int64 // members alive (self included), for the request path
}

// gossipLabel marks every encrypted gossip packet and stream as
// Tollgate's: memberlist drops those of another label.
const gossipLabel = "tollgate"

// gossipConfig configures memberlist. With keys, every message is
// encrypted (AES-256-GCM) with keys[0] and a message in any of keys is
// accepted; one in no key, or without the label, is dropped.
func gossipConfig(nodeID, listen, advertise string, t GossipTimings, keys [][]byte, logOut io.Writer) (*memberlist.Config, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("gossip listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip listen port %q: %w", portStr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	c := memberlist.DefaultLANConfig()
	c.Name = nodeID
	c.Logger = log.New(logOut, "", log.LstdFlags)
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
		c.Keyring = kr
		c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
		c.Label = gossipLabel
	}
	tr, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{host}, BindPort: port, Logger: c.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gossip listen on %s: %w", listen, err)
	}
	c.Transport = tr
	c.BindAddr = host
	c.BindPort = tr.GetAutoBindPort()
	c.AdvertiseAddr = advertise
	c.AdvertisePort = tr.GetAutoBindPort()
	// A node id is persisted in its data dir, so a dead member that comes
	// back under its id from a new address is the same node restarted
	// (a container with a new IP, a new port): let it reclaim its name.
	c.DeadNodeReclaimTime = time.Second
	setPositive(&c.ProbeInterval, t.ProbeInterval)
	setPositive(&c.ProbeTimeout, t.ProbeTimeout)
	setPositive(&c.GossipInterval, t.GossipInterval)
	setPositive(&c.PushPullInterval, t.PushPull)
	if t.SuspicionMult > 0 {
		c.SuspicionMult = t.SuspicionMult
	}
	return c, nil
}

func startGossip(c *memberlist.Config, meta nodeMeta, now func() time.Time, logger *slog.Logger, notify func()) (*gossip, error) {
	if b, err := json.Marshal(meta); err != nil || len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip metadata of %d bytes does not fit in %d: %v", len(b), memberlist.MetaMaxSize, err)
	}
	g := &gossip{meta: meta, notify: notify, now: now, log: logger, members: map[string]*Member{}}
	c.Delegate = g
	c.Events = g
	c.Conflict = g
	var err error
	g.ml, err = memberlist.Create(c)
	if err != nil {
		c.Transport.Shutdown()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	// Read once: memberlist rewrites its local node on UpdateNode.
	ln := g.ml.LocalNode()
	g.addr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	return g, nil
}

// Addr is the address peers join through.
func (g *gossip) Addr() string { return g.addr }

// setMeta changes what this node publishes and tells the cluster.
func (g *gossip) setMeta(change func(*nodeMeta)) error {
	g.mu.Lock()
	before := g.meta
	change(&g.meta)
	same := g.meta == before
	g.mu.Unlock()
	if same {
		return nil
	}
	return g.ml.UpdateNode(time.Second)
}

// published returns what this node publishes.
func (g *gossip) published() nodeMeta {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.meta
}

// Members returns every member known, by id.
func (g *gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns one member.
func (g *gossip) Member(id string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// forget drops a member that was removed from the cluster.
func (g *gossip) forget(id string) {
	g.mu.Lock()
	delete(g.members, id)
	g.countAlive()
	g.mu.Unlock()
}

// countAlive refreshes the alive count; mu is held.
func (g *gossip) countAlive() {
	var n int64
	for _, m := range g.members {
		if m.State == "alive" || m.State == "suspect" {
			n++
		}
	}
	g.alive.Store(n)
}

// update records a member's new state. memberlist's events say what
// happened (joined, updated, failed or left); the state field of the node
// they carry is not kept current, so it is not read.
func (g *gossip) update(n *memberlist.Node, state string) {
	var meta nodeMeta
	metaErr := json.Unmarshal(n.Meta, &meta) // a node without meta cannot join Raft; its addresses stay empty
	g.mu.Lock()
	m := g.members[n.Name]
	if m == nil {
		m = &Member{ID: n.Name}
		g.members[n.Name] = m
	}
	if m.State != state {
		m.Since = g.now()
	}
	m.State = state
	m.Gossip = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if meta.Raft != "" {
		m.RaftAddr, m.GRPCAddr = meta.Raft, meta.GRPC
	}
	if metaErr == nil {
		m.DataID, m.Fresh, m.Stateful, m.Boot = meta.DataID, meta.Fresh, meta.Stateful, meta.Boot
	}
	g.countAlive()
	g.mu.Unlock()
	g.notify()
}

// memberlist.EventDelegate
func (g *gossip) NotifyJoin(n *memberlist.Node)   { g.update(n, "alive") }
func (g *gossip) NotifyLeave(n *memberlist.Node)  { g.update(n, "dead") }
func (g *gossip) NotifyUpdate(n *memberlist.Node) { g.update(n, "alive") }

// memberlist.Delegate
func (g *gossip) NodeMeta(limit int) []byte {
	b, err := json.Marshal(g.published())
	if err != nil || len(b) > limit {
		return nil
	}
	return b
}
func (g *gossip) NotifyMsg([]byte)                           {}
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (g *gossip) LocalState(join bool) []byte                { return nil }
func (g *gossip) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.ConflictDelegate: two nodes claim one id.
func (g *gossip) NotifyConflict(existing, other *memberlist.Node) {
	g.log.Error("two nodes claim one node id; the second is refused: give every node its own --node-id and data dir",
		"id", existing.Name, "existing", existing.Address(), "other", other.Address())
}

func (g *gossip) shutdown(leaveTimeout time.Duration) {
	if leaveTimeout > 0 {
		_ = g.ml.Leave(leaveTimeout)
	}
	_ = g.ml.Shutdown()
}

// raftAddrs finds a Raft server at the address gossip knows for its id
// now, so a node that came back on a new address (a new container, a new
// subnet) is reached there even while the Raft configuration still holds
// the old one; at the configured address when gossip does not know the
// id. The address it gives carries the id (dialAddress), so the TLS
// handshake checks the server is the node it was dialed for.
type raftAddrs struct {
	self  string                    // this node's id
	local raft.ServerAddress        // and Raft address
	g     atomic.Pointer[gossip]    // nil until gossip starts
	r     atomic.Pointer[raft.Raft] // nil until Raft starts
}

// ServerAddr implements raft.ServerAddressProvider.
func (p *raftAddrs) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if string(id) == p.self {
		return p.local, nil // raft encodes its own address with it
	}
	addr := ""
	if g := p.g.Load(); g != nil {
		if m, ok := g.Member(string(id)); ok {
			addr = m.RaftAddr
		}
	}
	if addr == "" {
		if s, ok := p.server(string(id)); ok {
			addr = string(s.Address)
		}
	}
	if addr == "" {
		return "", fmt.Errorf("neither gossip nor the Raft configuration knows a Raft address for %q", id)
	}
	return dialAddress(addr, string(id)), nil
}

// server returns id's entry in the latest Raft configuration.
func (p *raftAddrs) server(id string) (raft.Server, bool) {
	r := p.r.Load()
	if r == nil {
		return raft.Server{}, false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

// knows tells whether id is a member of the cluster: this node, a member
// gossip knows of, or a server of the Raft configuration. A peer whose
// certificate names another node is refused at the handshake.
func (p *raftAddrs) knows(id string) bool {
	if id == p.self {
		return true
	}
	if g := p.g.Load(); g != nil {
		if _, ok := g.Member(id); ok {
			return true
		}
	}
	_, ok := p.server(id)
	return ok
}
