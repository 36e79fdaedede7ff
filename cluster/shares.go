package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// ShareExchanger carries a node's share exchange to the leader.
type ShareExchanger interface {
	ExchangeShares(ctx context.Context, req *pb.ShareRequest) (*pb.ShareResponse, error)
}

// shareRetry is how soon a node asks again when the leader left a share it
// asked for cold (it has not heard from every node in its term yet).
const shareRetry = 50 * time.Millisecond

// shareWarmup is how long a new throttle is divided evenly (see exchange).
const shareWarmup = 2 * time.Second

// shareIdle is how long a throttle that no node meets requests for is
// still divided (the leader), and kept (a node).
const shareIdle = 30 * time.Second

// ShareBookConfig configures a ShareBook.
type ShareBookConfig struct {
	// NodeID names this node to the leader. Required.
	NodeID string
	// Exchange reaches the leader. Required.
	Exchange ShareExchanger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Interval is how often the node exchanges with the leader. Default 500ms.
	Interval time.Duration
	// Idle is how long a throttle that meets no request here and that the
	// leader no longer divides is kept before it is dropped. Default 30s.
	Idle time.Duration
	// Timeout bounds one exchange. Default 2s.
	Timeout time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *ShareBookConfig) Validate() error {
	if c.NodeID == "" {
		return errors.New("share book: node id is required")
	}
	if c.Exchange == nil {
		return errors.New("share book: exchange is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Interval <= 0 {
		c.Interval = 500 * time.Millisecond
	}
	if c.Idle <= 0 {
		c.Idle = shareIdle
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// ShareBook is a node's side of the throttle shares: one limiter.Share per
// cluster-wide throttle, read by the request path, and one goroutine that
// exchanges the node's demand and held shares with the leader every
// Interval and stores the shares the leader answers. A share is kept until
// the leader sends another; a throttle never answered is cold (the request
// path waits for its first answer, see Wait).
type ShareBook struct {
	cfg ShareBookConfig
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*shareEntry
	// def is the share used for every throttle the leader never gave
	// this node a share of (its entry is cold): cold itself until the
	// leader sends one.
	def         limiter.Share
	incarnation int64
	seq         uint64        // of the last request built
	tried       uint64        // seq of the last exchange that ended, answered or not
	failed      uint64        // seq of the last exchange no leader answered
	stillCold   bool          // the last answer left a listed share cold: ask again soon (and pokes wait shareRetry)
	ended       chan struct{} // closed and replaced when an exchange ends
	complete    bool          // the last exchange was answered by a leader that knows every node's shares

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
}

type shareEntry struct {
	share    limiter.Share
	meter    limiter.DemandMeter
	seen     int64     // attempts at the last exchange
	lastUse  time.Time // attempts last moved (or the entry was made)
	told     bool      // in the leader's last answer
	listedIn uint64    // seq of the last request that listed it
}

// NewShareBook returns a book; Start runs its exchange loop.
func NewShareBook(cfg ShareBookConfig) (*ShareBook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ShareBook{
		cfg: cfg, log: cfg.Logger.With("component", "shares"),
		entries:     map[string]*shareEntry{},
		incarnation: cfg.Now().UnixNano(),
		ended:       make(chan struct{}),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}, nil
}

// Share returns the share of the throttle id, the same pointer for the
// same id for the book's life.
func (b *ShareBook) Share(id string) *limiter.Share {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &b.entry(id).share
}

func (b *ShareBook) entry(id string) *shareEntry {
	e := b.entries[id]
	if e == nil {
		e = &shareEntry{lastUse: b.cfg.Now()}
		b.entries[id] = e
	}
	return e
}

// Default returns the share in force for every throttle whose own share is
// cold; it is cold while the leader has sent no default.
func (b *ShareBook) Default() *limiter.Share { return &b.def }

// Wait returns once the share of id holds an answer (its own or the
// default), or an exchange begun
// after the call found no leader, or ctx ends. A leader that cannot divide
// yet (it has not heard from every node in its term) leaves the share
// cold, and the book asks again shortly.
func (b *ShareBook) Wait(ctx context.Context, id string) {
	b.mu.Lock()
	e := b.entries[id]
	from := b.seq
	b.mu.Unlock()
	if e == nil {
		return
	}
	b.poke()
	for {
		b.mu.Lock()
		_, cold := limiter.UnpackShare(e.share.Load())
		cold = cold && !limiter.ShareHolds(b.def.Load())
		noLeader := b.failed > from
		ch := b.ended
		b.mu.Unlock()
		if !cold || noLeader {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-b.done:
			return
		}
	}
}

// Start runs the exchange loop.
func (b *ShareBook) Start() {
	b.startOnce.Do(func() { go b.run() })
}

// Close stops the exchange loop and waits for it.
func (b *ShareBook) Close() {
	b.stopOnce.Do(func() { close(b.stop) })
	started := false
	b.startOnce.Do(func() { close(b.done) }) // never started: nothing to wait for
	select {
	case <-b.done:
	default:
		started = true
	}
	if started {
		<-b.done
	}
}

func (b *ShareBook) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *ShareBook) run() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		b.exchange()
		b.mu.Lock()
		retry := b.stillCold
		failed := b.failed == b.tried
		b.mu.Unlock()
		var retryC, gate <-chan time.Time
		if retry || failed {
			gate = time.After(shareRetry)
		}
		if retry {
			retryC = gate
		}
		select {
		case <-b.stop:
			return
		case <-retryC:
		case <-t.C:
		case <-b.wake:
			// A poke asks for an exchange now, but never sooner than
			// shareRetry after one that failed or left a share cold.
			if gate != nil {
				select {
				case <-b.stop:
					return
				case <-gate:
				}
			}
		}
	}
}

// exchange sends one request and stores the answer.
func (b *ShareBook) exchange() {
	req := b.request(b.cfg.Now())
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	resp, err := b.cfg.Exchange.ExchangeShares(ctx, req)
	cancel()
	if err != nil {
		b.log.Debug("share exchange failed; shares held are kept", "err", err)
	}
	b.answer(req.Seq, resp, err == nil)
}

// request builds the next exchange: every throttle held or met here.
// Throttles the leader no longer divides and that met no request for Idle
// are dropped (a share going to 0 never needs the leader's leave).
func (b *ShareBook) request(now time.Time) *pb.ShareRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	def := b.def.Held()
	req := &pb.ShareRequest{NodeId: b.cfg.NodeID, Incarnation: b.incarnation, Seq: b.seq, DefaultHeld: def}
	// In map order: the leader reads the items as a set, and sorting
	// every throttle met here on each exchange cost more than the
	// exchange itself once keys number in the thousands.
	for id, e := range b.entries {
		a := e.share.Attempts()
		e.meter.Observe(a-e.seen, now)
		if a != e.seen {
			e.lastUse = now
		}
		e.seen = a
		held, cold := limiter.UnpackShare(e.share.Load())
		idle := now.Sub(e.lastUse) >= b.cfg.Idle
		if idle && !e.told && b.complete {
			// The leader's last answer did not divide it, and that
			// leader knew every node's shares: it falls back to the
			// default, which the leader counts this node as holding
			// of every throttle it did not divide in its answer
			// (leaderNode.holds).
			if !cold {
				e.share.Chill()
			}
			continue
		}
		if cold && idle {
			continue
		}
		d := e.meter.Rate()
		if d < 0.01 {
			d = 0
		}
		it := &pb.ShareItem{Id: id, Demand: d, Held: held}
		if cold {
			it.Held, it.ByDefault = def, true
		}
		req.Items = append(req.Items, it)
		e.listedIn = b.seq
	}
	return req
}

// answer stores the leader's answer to request seq (ok false: none came).
func (b *ShareBook) answer(seq uint64, resp *pb.ShareResponse, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		for _, e := range b.entries {
			e.told = false
		}
		for _, a := range resp.GetShares() {
			e := b.entry(a.Id)
			e.told = true
			if held, cold := limiter.UnpackShare(e.share.Load()); cold || held != a.Share {
				e.share.Store(a.Share)
			}
		}
		// After the throttles' own shares: a throttle the answer gives a
		// share of never runs on a default meant for the others.
		switch held, cold := limiter.UnpackShare(b.def.Load()); {
		case resp.GetDefaultShare() <= 0:
			if !cold {
				b.def.Chill()
			}
		case cold || held != resp.GetDefaultShare():
			b.def.Store(resp.GetDefaultShare())
		}
	}
	b.tried = seq
	b.complete = ok && resp.GetComplete()
	if !ok {
		b.failed = seq
	}
	b.stillCold = false
	if _, noDefault := limiter.UnpackShare(b.def.Load()); ok && noDefault {
		for _, e := range b.entries {
			if _, cold := limiter.UnpackShare(e.share.Load()); cold && e.listedIn == seq {
				b.stillCold = true
			}
		}
	}
	close(b.ended)
	b.ended = make(chan struct{})
}

// ErrStaleShareRequest: the leader has seen a later exchange from the node.
var ErrStaleShareRequest = errors.New("share request older than one already answered")

// shareLeader is the leader's side of the throttle shares: the latest
// exchange of every node (what it holds and its demand) and the share sent
// to it since. Soft state, never replicated: a new leader (a new term)
// starts empty and grows no share until every live node has told it what
// it holds.
type shareLeader struct {
	idle time.Duration

	mu     sync.Mutex
	term   uint64
	nodes  map[string]*leaderNode
	active map[string]time.Time // throttle → last time a node met requests for it or asked for it
	first  map[string]time.Time // throttle → when this leader began dividing it

	// Buffers reused across exchanges.
	in  []limiter.ShareNode
	out []float64
}

type leaderNode struct {
	incarnation int64
	seq         uint64
	items       map[string]*pb.ShareItem
	sent        map[string]float64 // shares sent in answer to seq
	def         float64            // the default share it said it holds
	defSent     float64            // the default share sent in answer to seq
	complete    bool               // the answer to seq was complete: what it left out, the node may run on its default
}

// defHeld is the largest default share the node may be using.
func (o *leaderNode) defHeld() float64 { return max(o.def, o.defSent) }

// holds is the largest share of th the node may be using: its own (its
// default when it has none), or what was sent to it if larger. A node
// whose last answer was complete and did not divide th may fall back to
// its default for it (ShareBook.request), so then its default counts too.
func (o *leaderNode) holds(th string) float64 {
	def := o.defHeld()
	h := def
	if it := o.items[th]; it != nil && !it.ByDefault {
		h = it.Held
	}
	if sent, ok := o.sent[th]; ok {
		return max(h, sent)
	}
	if o.complete {
		return max(h, def)
	}
	return h
}

func newShareLeader(idle time.Duration) *shareLeader {
	return &shareLeader{idle: idle, nodes: map[string]*leaderNode{}, active: map[string]time.Time{}, first: map[string]time.Time{}}
}

// exchange records node req.NodeId's exchange and answers its new share of
// every throttle divided now. live lists the nodes gossip sees alive
// (suspect included), sorted; term is the leader's Raft term.
func (l *shareLeader) exchange(req *pb.ShareRequest, live []string, term uint64, now time.Time) (*pb.ShareResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if term != l.term {
		l.term = term
		clear(l.nodes)
		clear(l.active)
		clear(l.first)
	}
	n := l.nodes[req.NodeId]
	switch {
	case n == nil || req.Incarnation > n.incarnation:
		n = &leaderNode{incarnation: req.Incarnation}
		l.nodes[req.NodeId] = n
	case req.Incarnation < n.incarnation || req.Seq <= n.seq:
		return nil, fmt.Errorf("%w: node %s seq %d", ErrStaleShareRequest, req.NodeId, req.Seq)
	}
	n.seq = req.Seq
	n.items = make(map[string]*pb.ShareItem, len(req.Items))
	n.sent = make(map[string]float64, len(req.Items))
	n.def, n.defSent, n.complete = req.DefaultHeld, 0, false
	for _, it := range req.Items {
		n.items[it.Id] = it
		if it.Demand > 0 || it.Held == 0 || n.aboveDefault(it.Id) {
			l.active[it.Id] = now
			if _, ok := l.first[it.Id]; !ok {
				l.first[it.Id] = now
			}
		}
	}
	// Nodes gossip no longer sees alive are gone: their shares are free.
	for id := range l.nodes {
		if _, ok := slices.BinarySearch(live, id); !ok && id != req.NodeId {
			delete(l.nodes, id)
		}
	}
	complete := true
	for _, id := range live {
		if l.nodes[id] == nil {
			complete = false
		}
	}
	ids := slices.Sorted(maps.Keys(l.nodes))
	me := slices.Index(ids, req.NodeId)
	resp := &pb.ShareResponse{}
	// defCap bounds a raise of the node's default: it must fit every
	// throttle the node is sent no share of below.
	defCap := 1.0
	// In map order: each throttle is divided on its own, and the node
	// reads the answer as a set.
	for th, last := range l.active {
		if now.Sub(last) >= l.idle && !l.heldAboveDefault(th) {
			// Every node holds at most its default of it: the defaults
			// (which sum to at most 1) cover it from now on.
			delete(l.active, th)
			delete(l.first, th)
			continue
		}
		// While a throttle is new it is divided evenly: traffic behind a
		// load balancer reaches every node at once, demand meters need a
		// few exchanges to read it, and the first node to ask must not
		// take the whole throttle while the others' first requests are
		// on their way. After shareWarmup, demand decides.
		young := now.Sub(l.first[th]) < shareWarmup
		l.in = l.in[:0]
		for _, id := range ids {
			o := l.nodes[id]
			s := limiter.ShareNode{Held: o.holds(th)}
			if it := o.items[th]; it != nil {
				s.Demand = it.Demand
			}
			if young {
				s.Demand = 1
			}
			l.in = append(l.in, s)
		}
		l.out = slices.Grow(l.out[:0], len(ids))[:len(ids)]
		limiter.Shares(l.in, complete, l.out)
		if l.out[me] == 0 && l.in[me].Held == 0 && n.defHeld() == 0 {
			// Nothing free for this node yet (others still hold what
			// they had, or this leader has not heard from every node):
			// leave its share as it is. A cold one stays cold, so its
			// requests wait (within the proxy's bound) instead of being
			// refused, and the node asks again shortly. Its default
			// runs this throttle, so it may grow only into what is
			// free of it.
			free := 1.0
			for i, s := range l.in {
				if i != me {
					free -= s.Held
				}
			}
			defCap = min(defCap, max(free, 0))
			continue
		}
		n.sent[th] = l.out[me]
		resp.Shares = append(resp.Shares, &pb.ShareAssignment{Id: th, Share: l.out[me]})
	}
	// The default share is divided like a throttle that nobody meets
	// (evenly), so the defaults of the nodes sum to at most 1; with the
	// rule above (the leader divides a throttle while some node holds
	// more of it than its default), every throttle's shares in force sum
	// to at most 1 whether a node runs it on its own share or on its
	// default.
	l.in = l.in[:0]
	for _, id := range ids {
		l.in = append(l.in, limiter.ShareNode{Held: l.nodes[id].defHeld()})
	}
	l.out = slices.Grow(l.out[:0], len(ids))[:len(ids)]
	limiter.Shares(l.in, complete, l.out)
	def := l.out[me]
	if held := l.in[me].Held; def > held {
		def = max(held, min(def, defCap))
	}
	n.defSent, n.complete = def, complete
	resp.DefaultShare, resp.Complete = def, complete
	return resp, nil
}

// aboveDefault tells whether the node may hold more of th than its
// default share.
func (o *leaderNode) aboveDefault(th string) bool {
	return o.holds(th) > o.defHeld()
}

// heldAboveDefault tells whether some node may hold more of th than its
// default share: the leader keeps dividing th until none does.
func (l *shareLeader) heldAboveDefault(th string) bool {
	for _, o := range l.nodes {
		if o.aboveDefault(th) {
			return true
		}
	}
	return false
}

// ExchangeShares carries this node's share exchange to the leader (itself,
// or over gRPC).
func (n *Node) ExchangeShares(ctx context.Context, req *pb.ShareRequest) (*pb.ShareResponse, error) {
	if n.raft.State() == raft.Leader {
		return n.leadShares(req)
	}
	c, err := n.leaderClient()
	if err != nil {
		return nil, err
	}
	resp, err := c.Shares(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	return resp, nil
}

// leadShares answers a share exchange on the leader.
func (n *Node) leadShares(req *pb.ShareRequest) (*pb.ShareResponse, error) {
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	var live []string
	for _, m := range n.gossip.Members() { // sorted by id
		if m.State == "alive" || m.State == "suspect" {
			live = append(live, m.ID)
		}
	}
	return n.shares.exchange(req, live, n.raft.CurrentTerm(), n.cfg.Now())
}
