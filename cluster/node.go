package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// Errors a caller of Apply can meet. The outcome of ErrUnknownOutcome is not
// known: the command may still apply. Commands carry a request id, so
// retrying the same command is safe.
var (
	ErrNotLeader      = errors.New("this node is not the Raft leader and no leader is known")
	ErrUnknownOutcome = errors.New("leadership was lost while the command was in flight; its outcome is unknown")
	ErrTimeout        = errors.New("the command did not commit in time")
	ErrClosed         = errors.New("the node is shut down")
	// ErrDataDirInUse: another process holds the data dir's Raft log.
	ErrDataDirInUse = errors.New("data dir in use")
)

// RaftTimings are the Raft timeouts. Zero fields take the defaults, chosen
// for nodes on one LAN.
type RaftTimings struct {
	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	CommitTimeout      time.Duration // default 50ms
	SnapshotInterval   time.Duration // default 120s
	SnapshotThreshold  uint64        // default 8192 entries
	TrailingLogs       uint64        // default 10240 entries
}

// FastRaftTimings are tight timings for tests on loopback.
func FastRaftTimings() RaftTimings {
	return RaftTimings{
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
}

// NodeConfig configures a Node.
type NodeConfig struct {
	// NodeID is this node's Raft server id. Required.
	NodeID string
	// DataDir holds raft.db (log and stable store) and snapshots. Required.
	DataDir string
	// RaftListen is the Raft transport's listen address; port 0 picks one.
	// Default "127.0.0.1:0".
	RaftListen string
	// RaftAdvertise is the address peers dial. Default: RaftListen's
	// address with the bound port (must not be unspecified, e.g. 0.0.0.0).
	RaftAdvertise string
	// GRPCListen is the node-to-node gRPC listen address. Default
	// "127.0.0.1:0".
	GRPCListen string
	// GossipListen is the memberlist listen address (TCP and UDP).
	// Default "127.0.0.1:0".
	GossipListen string
	// Advertise is the IP address peers dial for gossip and gRPC. Default:
	// the host of RaftAdvertise, or of the Raft listener.
	Advertise string
	// Join lists gossip addresses of nodes already running. A node with
	// a Join list never bootstraps a cluster of its own.
	Join []string
	// BootstrapExpect is the number of nodes to wait for, by gossip,
	// before bootstrapping Raft. 1 (the default) without Join bootstraps a
	// cluster of one at once.
	BootstrapExpect int
	// ReapAfter is how long a node may be dead before it is removed from
	// Raft (never below quorum). Default 3 minutes.
	ReapAfter time.Duration
	// ReconcileInterval is the period of the leader's full membership
	// pass, and of every node's tending of the data key (keytend.go).
	// Default 5s.
	ReconcileInterval time.Duration
	// ClockProbe is how often the node measures the voters' clocks (the
	// leader stamps the log with their median, see calendar.go).
	// Default 1s.
	ClockProbe time.Duration
	// Gossip are memberlist's timings.
	Gossip GossipTimings
	// ApplyTimeout bounds a command's wait for commit when the caller's
	// context has no deadline. Default 5s.
	ApplyTimeout time.Duration
	// Timings are the Raft timeouts.
	Timings RaftTimings
	// Now is the clock that stamps commands. Default time.Now.
	Now func() time.Time
	// Logger receives the node's log. Default slog.Default().
	Logger *slog.Logger
	// RaftLogLevel is the least level ("trace", "debug", "info", "warn",
	// "error") of hashicorp/raft's lines sent to Logger, which drops those
	// below its own level too (see logging.go). Default "info".
	RaftLogLevel string
	// TLSCAFile, TLSCertFile and TLSKeyFile, given together, turn on
	// mutual TLS for Raft and gRPC: this node presents the certificate
	// (which must name NodeID, see package pki) and accepts only peers
	// whose certificate is a node certificate signed by the CA. The
	// files are read again at the next handshake after one changes.
	// Default: none (plain TCP; keep the listeners on loopback).
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// GossipKeyFile holds the gossip keys (see pki.ParseGossipKeys): with
	// it memberlist encrypts every message with the first key and drops
	// any it cannot decrypt with one of them. Read again every
	// KeyReloadInterval when it changed. Default: none (no encryption).
	GossipKeyFile string
	// KEKFile holds the key-encryption keys (same format as GossipKeyFile:
	// one base64 32-byte key per line, the first one wraps, the others
	// still unwrap) under which the cluster's data key is stored (see
	// package sealing). Every node needs the key the data key is wrapped
	// under; the leader rewraps it under the first key of its file. Read
	// again every ReconcileInterval when it changed. Default: none (the
	// data key is stored unwrapped).
	KEKFile string
	// KeyReloadInterval is how often GossipKeyFile is checked for a
	// change. Default 5s.
	KeyReloadInterval time.Duration
	// LockTimeout bounds the wait for the data dir's lock (raft.db), held
	// by any other process that opened the same data dir; then Open fails
	// with ErrDataDirInUse. Default 500ms.
	LockTimeout time.Duration
}

// Validate checks the configuration and fills defaults.
func (c *NodeConfig) Validate() error {
	if c.NodeID == "" {
		return errors.New("node id is required")
	}
	if c.DataDir == "" {
		return errors.New("data dir is required")
	}
	if c.RaftListen == "" {
		c.RaftListen = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(c.RaftListen); err != nil {
		return fmt.Errorf("raft listen address %q: %w", c.RaftListen, err)
	}
	if c.GRPCListen == "" {
		c.GRPCListen = "127.0.0.1:0"
	}
	if c.GossipListen == "" {
		c.GossipListen = "127.0.0.1:0"
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = 1
	}
	if c.ReapAfter <= 0 {
		c.ReapAfter = 3 * time.Minute
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 5 * time.Second
	}
	if c.ClockProbe <= 0 {
		c.ClockProbe = time.Second
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("bootstrap-expect must be 1 or more, got %d", c.BootstrapExpect)
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "info"
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = 500 * time.Millisecond
	}
	if c.KeyReloadInterval <= 0 {
		c.KeyReloadInterval = 5 * time.Second
	}
	set := 0
	for _, f := range []string{c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("tls: give the CA, the certificate and the key together")
	}
	return nil
}

// Node is one Tollgate cluster member: a Raft node and its FSM.
type Node struct {
	cfg       NodeConfig
	fsm       *FSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	stable    *stableGuard // Raft's view of store's stable half
	log       *slog.Logger
	cal       calendar
	sealKeys  *sealing.Keyring // KEKFile's keys and the data key's
	tend      keyTending       // tendKeys' state (keytend.go)

	grpc     *grpc.Server
	grpcAddr string
	gossip   *gossip
	peers    peers

	group  *groupCommit
	shares *shareLeader
	groups atomic.Int64 // group commits of more than one batch
	stats  stats

	reconcileCh chan struct{}
	stop        chan struct{}
	wg          sync.WaitGroup
	closeOnce   sync.Once
	// missingSince remembers when a Raft server was first seen without
	// a gossip member (reconcile loop only).
	missingSince map[string]time.Time
	// seats is the data dir identity the leader saw holding each Raft
	// server id's seat (reconcile loop only).
	seats map[string]string
	// dataID is this node's data dir identity.
	dataID string
	// addrs finds Raft servers at the address gossip knows.
	addrs raftAddrs
	// seen is how far each follower acknowledged this node's log, as
	// its leader (progress.go).
	seen *replicationSeen
	// certs is the node's certificate and cluster CA (nil: no TLS);
	// refused logs refused peers; keyring is gossip's (nil: no
	// encryption), keyStamp its file's last seen state.
	certs    *certStore
	refused  *refusals
	keyring  *memberlist.Keyring
	keyStamp fileStamp

	// pidFile is the data dir's pid file, written once this node holds
	// the lock on raft.db ("" until then).
	pidFile string
	catchUp catchUp

	// logs is Raft's log store under its cache (logstore.go).
	logs *logWrites
	// rejoinTurn is the dead member rejoinDead tries next (its goroutine
	// only).
	rejoinTurn int
}

// Open starts a node: it opens the data dir, starts Raft and, on a fresh
// data dir with BootstrapExpect 1, bootstraps a cluster of one.
func Open(cfg NodeConfig) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// n is not the named result: a failing return sets that to nil while
	// the cleanup below and the goroutines started here still use n.
	n := &Node{
		cfg: cfg, fsm: NewFSM(), log: cfg.Logger.With("node", cfg.NodeID),
		reconcileCh: make(chan struct{}, 1), stop: make(chan struct{}),
		missingSince: map[string]time.Time{},
		cal:          calendar{peers: map[string]peerClock{}},
		seats:        map[string]string{},
		shares:       newShareLeader(shareIdle),
		seen:         newReplicationSeen(),
	}
	n.group = newGroupCommit(n)
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, privateDir); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if n.store, n.pidFile, err = openStore(cfg.DataDir, cfg.LockTimeout); err != nil {
		return nil, err
	}
	// Only this node's user may read the data dir: tighten what an older
	// version or an operator left open, and create the snapshots
	// directory private before raft would create it 0755.
	if err := tightenTree(cfg.DataDir, n.log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, snapshotsDir), privateDir); err != nil {
		return nil, fmt.Errorf("create snapshots dir: %w", err)
	}
	if n.dataID, err = loadDataID(cfg.DataDir); err != nil {
		return nil, err
	}
	hl := newHCLog(n.log, "raft", hclog.LevelFromString(cfg.RaftLogLevel))
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	snaps := &privateSnapshots{FileSnapshotStore: fileSnaps, dir: filepath.Join(cfg.DataDir, snapshotsDir), log: n.log}
	n.refused = newRefusals(n.log, cfg.Now)
	if cfg.TLSCAFile != "" {
		if n.certs, err = newCertStore(cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile, cfg.NodeID, n.log); err != nil {
			return nil, err
		}
		n.peers.certs, n.peers.refused = n.certs, n.refused
	}
	var keks []*sealing.KEK
	if cfg.KEKFile != "" {
		n.tend.kekStamp, _ = stampOf(cfg.KEKFile) // before the read: a change after it is read again
		if keks, err = ReadKEKs(cfg.KEKFile); err != nil {
			return nil, err
		}
	}
	n.sealKeys = sealing.NewKeyring(keks...)
	var gossipKeys [][]byte
	if cfg.GossipKeyFile != "" {
		if gossipKeys, n.keyStamp, err = readGossipKeys(cfg.GossipKeyFile); err != nil {
			return nil, err
		}
	}
	n.addrs.self = cfg.NodeID
	stream, err := listenStream(cfg.RaftListen, cfg.RaftAdvertise, n.certs, n.refused, n.addrs.knows)
	if err != nil {
		return nil, err
	}
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:                stream,
		MaxPool:               3,
		Timeout:               10 * time.Second,
		Logger:                hl,
		ServerAddressProvider: &n.addrs,
	})
	n.addrs.local = n.transport.LocalAddr()
	n.logs = &logWrites{LogStore: n.store, log: n.log}
	logs, err := raft.NewLogCache(512, n.logs)
	if err != nil {
		return nil, err
	}
	rc := raftConfig(cfg, hl)
	hasState, err := raft.HasExistingState(logs, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	n.stable = &stableGuard{StableStore: n.store}
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.stable, snaps, &seenTransport{NetworkTransport: n.transport, seen: n.seen})
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.addrs.r.Store(n.raft)
	n.watchReplication()
	// NewRaft restored the latest snapshot; the log after it is applied
	// again once a leader commits it. Until then the state is stale.
	last := n.raft.LastIndex()
	n.catchUp.init(hasState, last, lastCommandIndex(logs, last, n.fsm.AppliedIndex()))
	bootstrapped := false
	if !hasState && cfg.BootstrapExpect == 1 && len(cfg.Join) == 0 {
		f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: raft.ServerID(cfg.NodeID), Address: n.transport.LocalAddr(),
		}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
		n.log.Info("bootstrapped a cluster of one", "raft_addr", n.transport.LocalAddr())
		bootstrapped = true
	}

	var ln net.Listener
	n.grpc, ln, err = listenGRPC(n, cfg.GRPCListen)
	if err != nil {
		return nil, err
	}
	adv := cfg.Advertise
	if adv == "" {
		adv, _, _ = net.SplitHostPort(n.RaftAddr())
	}
	n.grpcAddr = net.JoinHostPort(adv, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = n.grpc.Serve(ln)
	}()

	gc, err := gossipConfig(cfg.NodeID, cfg.GossipListen, adv, cfg.Gossip, gossipKeys,
		gossipLogFilter{out: newHCLog(n.log, "memberlist", hclog.NoLevel).StandardWriter(nil), refused: n.refused})
	if err != nil {
		return nil, err
	}
	n.keyring = gc.Keyring
	meta := nodeMeta{Raft: n.RaftAddr(), GRPC: n.grpcAddr, DataID: n.dataID, Fresh: !hasState && !bootstrapped, Stateful: hasState}
	n.gossip, err = startGossip(gc, meta, cfg.Now, n.log, n.poke)
	if err != nil {
		return nil, err
	}
	n.addrs.g.Store(n.gossip)
	n.wg.Add(5)
	go n.every(n.cfg.ClockProbe, true, n.probeClocks) // the voters' clocks (calendar.go)
	go n.watchCaughtUp()
	go n.joinLoop()
	go n.reconcileLoop()
	go n.group.run()
	if meta.Fresh {
		n.wg.Add(1)
		go n.seatLoop()
	}
	if n.keyring != nil {
		n.wg.Add(1)
		go n.every(n.cfg.KeyReloadInterval, false, n.reloadGossipKeys)
	}
	n.wg.Add(1)
	go n.every(n.cfg.ReconcileInterval, true, n.tendKeys) // the data key and sealed values (keytend.go)
	n.wg.Add(1)
	go n.every(n.cfg.ReconcileInterval, false, n.rejoinDead) // a healed partition (rejoin.go)
	return n, nil
}

// setPositive sets *dst to v when v is set (positive): zero keeps a default.
func setPositive(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}

func raftConfig(cfg NodeConfig, hl hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	t := cfg.Timings
	setPositive(&rc.HeartbeatTimeout, t.HeartbeatTimeout)
	setPositive(&rc.ElectionTimeout, t.ElectionTimeout)
	setPositive(&rc.LeaderLeaseTimeout, t.LeaderLeaseTimeout)
	setPositive(&rc.CommitTimeout, t.CommitTimeout)
	setPositive(&rc.SnapshotInterval, t.SnapshotInterval)
	if t.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = t.SnapshotThreshold
	}
	if t.TrailingLogs > 0 {
		rc.TrailingLogs = t.TrailingLogs
	}
	return rc
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is the address peers dial for Raft.
func (n *Node) RaftAddr() string { return string(n.transport.LocalAddr()) }

// Config returns the current configuration (immutable).
func (n *Node) Config() *pb.Config { return n.fsm.Config() }

// KeyChanges tells which keys changed between two configurations this
// node applied, when nothing else did (FSM.KeyChanges).
func (n *Node) KeyChanges(from, to *pb.Config) ([]string, bool) { return n.fsm.KeyChanges(from, to) }

// OnQuotaChange sets the function called with each QuotaEvent as this
// node applies the log: a QuotaPool's Event.
func (n *Node) OnQuotaChange(fn func(QuotaEvent)) { n.fsm.OnQuotaChange(fn) }

// KeyLedgers returns copies of a plan's key ledgers.
func (n *Node) KeyLedgers(planID string) []*pb.KeyLedger { return n.fsm.KeyLedgers(planID) }

// AppliedIndex is the index of the last command this node applied.
func (n *Node) AppliedIndex() uint64 { return n.fsm.AppliedIndex() }

// IsLeader tells whether this node leads the cluster.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and Raft address ("" when none is known).
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitCaughtUp waits until the node is caught up (see CaughtUp).
func (n *Node) WaitCaughtUp(ctx context.Context) error {
	select {
	case <-n.catchUp.done:
		return nil
	case <-ctx.Done():
		r := n.Readiness()
		return fmt.Errorf("catching up to raft index %d (applied %d): %w", r.TargetIndex, r.AppliedIndex, ctx.Err())
	case <-n.stop:
		return ErrClosed
	}
}

// Apply proposes a command and returns its result once it applied on this
// node, so a read on this node right after sees the write. A follower
// forwards the command to the leader; during an election it waits, within
// the context's deadline (or ApplyTimeout), for a leader. The node gives
// the command a request id when it has none, which makes every retry
// safe; the leader stamps its time.
func (n *Node) Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	return n.apply(ctx, cmd)
}

// ApplyLedger applies a ledger batch like Apply (the quota pool's
// LedgerClient).
func (n *Node) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	return n.apply(ctx, cmd)
}

func (n *Node) apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	if cmd.RequestId == "" {
		cmd.RequestId = newRequestID()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	for {
		res, err := n.applyOnce(ctx, cmd)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnknownOutcome) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-n.stop:
			return nil, ErrClosed
		case <-time.After(25 * time.Millisecond): // wait for an election or a new leader
		}
	}
}

// leaderClient is the gRPC client of the leader this node knows, or
// ErrNotLeader when it knows none (or leads itself).
func (n *Node) leaderClient() (pb.ClusterClient, error) {
	leader, _ := n.Leader()
	if leader == "" || leader == n.ID() {
		return nil, ErrNotLeader
	}
	m, ok := n.gossip.Member(leader)
	if !ok || m.GRPCAddr == "" {
		return nil, ErrNotLeader
	}
	c, err := n.peers.client(m.ID, m.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return c, nil
}

func (n *Node) applyOnce(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	if n.raft.State() == raft.Leader {
		return n.propose(ctx, cmd)
	}
	c, err := n.leaderClient()
	if err != nil {
		return nil, err
	}
	n.stats.forwards.Add(1)
	resp, err := c.Apply(ctx, &pb.ApplyRequest{Command: cmd})
	if err != nil {
		n.stats.forwardErrors.Add(1)
		return nil, fromStatus(err)
	}
	res := resp.GetResult()
	if res == nil {
		return nil, errors.New("the leader answered without a result")
	}
	if _, ledger := cmd.Body.(*pb.Command_Ledger); !ledger {
		n.waitApplied(ctx, res.Index) // read-your-writes for configuration
	}
	return res, nil
}

// propose applies a command on the leader, stamped with the leader's
// time: ledger batches go through the group commit.
func (n *Node) propose(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	stamp(cmd, n.ledgerNow())
	if _, ok := cmd.Body.(*pb.Command_Ledger); !ok {
		return n.applyLocal(ctx, cmd)
	}
	return n.group.commit(ctx, cmd)
}

// waitApplied waits, within ctx, until this node applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	for n.fsm.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// applyLocal proposes a command on this node, which must lead.
func (n *Node) applyLocal(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	if len(data) > raft.SuggestedMaxDataSize {
		n.log.Warn("large raft entry", "bytes", len(data))
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, ErrTimeout
		}
	}
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	start := time.Now()
	f := n.raft.Apply(data, timeout)
	err = f.Error()
	n.stats.applies.Add(1)
	n.stats.applyNanos.Add(int64(time.Since(start)))
	if err != nil {
		n.stats.applyErrors.Add(1)
		return nil, translate(err)
	}
	switch r := f.Response().(type) {
	case *pb.Result:
		return r, nil
	default:
		return nil, fmt.Errorf("unexpected apply response %T", r)
	}
}

func translate(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrUnknownOutcome
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
}

// Snapshot asks Raft for a snapshot now (used by tests and operators, and
// on Close). Raft snapshots the state machine's index and refuses while a
// newer configuration entry is committed, which the state machine never
// sees; on the leader a barrier first moves that index past it.
func (n *Node) Snapshot() error {
	if n.raft.State() == raft.Leader {
		_ = n.raft.Barrier(n.cfg.ApplyTimeout).Error() // on failure the snapshot says why
	}
	return n.raft.Snapshot().Error()
}

// GossipAddr is the address other nodes join through.
func (n *Node) GossipAddr() string { return n.gossip.Addr() }

// GRPCAddr is the address of this node's gRPC service.
func (n *Node) GRPCAddr() string { return n.grpcAddr }

// Close stops the node's loops, gossip, gRPC and Raft, and closes the
// stores. It is safe after a partial Open and when called twice. It does
// not leave the cluster: a node that stops is seen as dead and reaped after
// ReapAfter, unless it comes back first.
func (n *Node) Close() error {
	var errs []error
	n.closeOnce.Do(func() {
		close(n.stop)
		if n.gossip != nil {
			n.gossip.shutdown(0)
		}
		if n.grpc != nil {
			n.grpc.Stop()
		}
		n.wg.Wait()
		n.peers.close()
		if n.raft != nil {
			// A snapshot of what was applied since the last one, so that
			// the next start restores it instead of replaying the log.
			if err := n.Snapshot(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
				n.log.Warn("no snapshot on close", "err", err)
			}
			errs = append(errs, n.raft.Shutdown().Error())
		}
		if n.transport != nil {
			errs = append(errs, n.transport.Close())
		}
		if n.pidFile != "" {
			// Before the lock goes: the next holder writes its own.
			errs = append(errs, removePIDFile(n.pidFile))
		}
		if n.stable != nil {
			n.stable.shut()
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
	})
	return errors.Join(errs...)
}

// stableGuard is Raft's stable store (current term, last vote) until Close.
// Raft handles heartbeats on the transport's goroutines, which its Shutdown
// does not wait for: one still running after Close would write the term to
// a closed store, and Raft panics on a failed write. Close waits for writes
// in flight, then the guard drops later ones: the Raft that makes them is
// shut down, and a reopened node reads the store afresh.
type stableGuard struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
}

func (g *stableGuard) Set(key, val []byte) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil
	}
	return g.StableStore.Set(key, val)
}

func (g *stableGuard) SetUint64(key []byte, val uint64) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil
	}
	return g.StableStore.SetUint64(key, val)
}

// shut waits for writes in flight and drops later ones.
func (g *stableGuard) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
