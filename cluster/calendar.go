package cluster

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	pb "github.com/tollgate/tollgate/proto"
)

// The ledger's calendar.
//
// Only the leader stamps time into the log, and the quota ledger decides
// periods on that time. So that one node whose clock is off cannot move the
// calendar when it wins an election, every node measures its offset to
// each voter's clock (the Status call answers the peer's own clock) and the
// leader stamps its clock plus the median of those offsets (its own, 0,
// included): the calendar is the clock most voters agree on. With two
// voters, or an even count, of the two middle offsets the one nearer this
// node's own clock is taken.

// clockProbeTimeout bounds one peer's Status call.
const clockProbeTimeout = time.Second

// calendar holds a node's offsets to the voters' clocks.
type calendar struct {
	offset atomic.Int64 // nanoseconds to add to this node's clock: the voters' median

	mu    sync.Mutex
	peers map[string]peerClock
}

type peerClock struct {
	offset int64     // the peer's clock minus this node's, nanoseconds
	at     time.Time // when measured (this node's clock)
}

// median is the median of offsets (which it sorts), taking of the two
// middle ones of an even count the one nearer 0.
func median(offsets []int64) int64 {
	if len(offsets) == 0 {
		return 0
	}
	slices.Sort(offsets)
	m := offsets[(len(offsets)-1)/2]
	if len(offsets)%2 == 0 {
		if o := offsets[len(offsets)/2]; abs64(o) < abs64(m) {
			m = o
		}
	}
	return m
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// CalendarOffset is what the leader adds to its clock when it stamps the
// log: the median of the voters' clocks minus this node's.
func (n *Node) CalendarOffset() time.Duration { return time.Duration(n.cal.offset.Load()) }

// ledgerNow is the time this node stamps into the log when it leads.
func (n *Node) ledgerNow() time.Time { return n.cfg.Now().Add(n.CalendarOffset()) }

// every runs f every d until the node stops (at once too when now is
// set). The caller has added it to n.wg.
func (n *Node) every(d time.Duration, now bool, f func()) {
	defer n.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if now {
			f()
		}
		now = true
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// probeClocks asks every other voter gossip sees alive for its clock and
// updates the calendar offset from the voters measured lately.
func (n *Node) probeClocks() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	var voters []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.ID() {
			voters = append(voters, string(s.ID))
		}
	}
	for _, id := range voters {
		m, ok := n.gossip.Member(id)
		if !ok || m.State != "alive" || m.GRPCAddr == "" {
			continue
		}
		c, err := n.peers.client(m.ID, m.GRPCAddr)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), clockProbeTimeout)
		sent := n.cfg.Now()
		st, err := c.Status(ctx, &pb.StatusRequest{})
		got := n.cfg.Now()
		cancel()
		if err != nil || st.GetTimeUnixNano() == 0 {
			continue
		}
		mid := sent.UnixNano() + got.Sub(sent).Nanoseconds()/2
		n.cal.mu.Lock()
		n.cal.peers[id] = peerClock{offset: st.GetTimeUnixNano() - mid, at: got}
		n.cal.mu.Unlock()
	}
	now := n.cfg.Now()
	offsets := []int64{0}
	n.cal.mu.Lock()
	for id, p := range n.cal.peers {
		fresh := now.Sub(p.at) < 3*n.cfg.ClockProbe && now.Sub(p.at) >= 0
		if !fresh || !slices.Contains(voters, id) {
			delete(n.cal.peers, id)
			continue
		}
		offsets = append(offsets, p.offset)
	}
	n.cal.mu.Unlock()
	off := median(offsets)
	if prev := n.cal.offset.Swap(off); abs64(off-prev) > int64(time.Second) {
		n.log.Warn("the voters' clocks disagree with this node's; the log's time follows their median",
			"offset", time.Duration(off), "voters_measured", len(offsets))
	}
}
