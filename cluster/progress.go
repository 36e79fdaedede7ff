package cluster

import (
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// replicationSeen is the leader's own view of how far each follower's log
// matches its own: the last index a follower acknowledged to this node's
// AppendEntries or InstallSnapshot, in the term this node sent it, as
// hashicorp/raft computes a follower's match index. Raft does not publish
// that index, so the node reads it off its own transport (seenTransport).
// A follower raft reports failing heartbeats for (its observations) counts
// as not caught up until it acknowledges again. What a node says about
// itself (its Status, its gossip) plays no part.
type replicationSeen struct {
	mu      sync.Mutex
	term    uint64
	match   map[raft.ServerID]uint64
	failing map[raft.ServerID]bool
}

func newReplicationSeen() *replicationSeen {
	return &replicationSeen{match: map[raft.ServerID]uint64{}, failing: map[raft.ServerID]bool{}}
}

// acked records that follower id's log matches this node's up to index,
// acknowledged to a request sent in term. A newer term starts afresh: a
// match seen under an older term says nothing about this one's log.
func (s *replicationSeen) acked(id raft.ServerID, term, index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if term < s.term {
		return
	}
	if term > s.term {
		s.term = term
		clear(s.match)
		clear(s.failing)
	}
	delete(s.failing, id)
	if index > s.match[id] {
		s.match[id] = index
	}
}

// appended records a finished AppendEntries: a success means the
// follower's log matches up to the request's last entry (a heartbeat,
// with no previous entry, says only that it answers).
func (s *replicationSeen) appended(id raft.ServerID, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if req == nil || resp == nil || !resp.Success || resp.Term > req.Term {
		return
	}
	last := req.PrevLogEntry
	if k := len(req.Entries); k > 0 {
		last = req.Entries[k-1].Index
	}
	s.acked(id, req.Term, last)
}

// observe takes raft's observations: a follower whose heartbeats fail is
// not caught up until it answers again; a removed server is forgotten.
func (s *replicationSeen) observe(o raft.Observation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch d := o.Data.(type) {
	case raft.FailedHeartbeatObservation:
		s.failing[d.PeerID] = true
	case raft.ResumedHeartbeatObservation:
		delete(s.failing, d.PeerID)
	case raft.PeerObservation:
		if d.Removed {
			delete(s.match, d.Peer.ID)
			delete(s.failing, d.Peer.ID)
		}
	}
}

// progress returns, for term, the match index of every follower that
// acknowledged something in that term and whose heartbeats do not fail.
func (s *replicationSeen) progress(term uint64) map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]uint64{}
	if term != s.term {
		return out
	}
	for id, i := range s.match {
		if !s.failing[id] {
			out[string(id)] = i
		}
	}
	return out
}

// watchReplication feeds raft's heartbeat and peer observations to
// n.seen until the node stops. The observer does not block raft: an
// observation dropped on a full channel is made up for by the next
// acknowledgement (which clears a failure) or the next failure.
func (n *Node) watchReplication() {
	ch := make(chan raft.Observation, 256)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.PeerObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.raft.DeregisterObserver(obs)
		for {
			select {
			case <-n.stop:
				return
			case o := <-ch:
				n.seen.observe(o)
			}
		}
	}()
}

// seenTransport is Raft's network transport, noting in seen what each
// follower acknowledges to this node's AppendEntries (sent one by one or
// pipelined) and InstallSnapshot. Every other method is the network
// transport's own (pre-vote and Close included).
type seenTransport struct {
	*raft.NetworkTransport
	seen *replicationSeen
}

func (t *seenTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.seen.appended(id, args, resp)
	}
	return err
}

func (t *seenTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	err := t.NetworkTransport.InstallSnapshot(id, target, args, resp, data)
	if err == nil && resp.Success && resp.Term <= args.Term {
		t.seen.acked(id, args.Term, args.LastLogIndex)
	}
	return err
}

func (t *seenTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	sp := &seenPipeline{AppendPipeline: p, id: id, seen: t.seen, out: make(chan raft.AppendFuture), stop: make(chan struct{}), done: make(chan struct{})}
	go sp.relay()
	return sp, nil
}

// seenPipeline passes a pipeline's finished requests on to raft, noting
// each acknowledgement on the way.
type seenPipeline struct {
	raft.AppendPipeline
	id   raft.ServerID
	seen *replicationSeen
	out  chan raft.AppendFuture
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func (p *seenPipeline) relay() {
	defer close(p.done)
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			if f.Error() == nil {
				p.seen.appended(p.id, f.Request(), f.Response())
			}
			select {
			case p.out <- f:
			case <-p.stop:
				return
			}
		case <-p.stop:
			return
		}
	}
}

func (p *seenPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *seenPipeline) Close() error {
	err := p.AppendPipeline.Close()
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return err
}
