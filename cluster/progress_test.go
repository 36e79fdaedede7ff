package cluster

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	pb "github.com/tollgate/tollgate/proto"
)

func appendReq(term, prev uint64, entries ...uint64) *raft.AppendEntriesRequest {
	r := &raft.AppendEntriesRequest{Term: term, PrevLogEntry: prev}
	for _, i := range entries {
		r.Entries = append(r.Entries, &raft.Log{Index: i, Term: term})
	}
	return r
}

// TestReplicationSeen: the leader's view of a follower's log is what the
// follower acknowledged to the leader's own requests in the leader's
// term; refusals, heartbeats and answers of a newer term move nothing;
// a follower whose heartbeats fail drops out until it answers again.
func TestReplicationSeen(t *testing.T) {
	s := newReplicationSeen()
	ok := &raft.AppendEntriesResponse{Term: 3, Success: true}
	s.appended("b", appendReq(3, 10, 11, 12), ok)
	s.appended("c", appendReq(3, 7), ok) // no entries: matches up to 7
	s.appended("d", appendReq(3, 0), ok) // a heartbeat: no match
	s.appended("e", appendReq(3, 20, 21), &raft.AppendEntriesResponse{Term: 3, Success: false})
	s.appended("f", appendReq(3, 20, 21), &raft.AppendEntriesResponse{Term: 4, Success: true})
	got := s.progress(3)
	if got["b"] != 12 || got["c"] != 7 || len(got) != 2 {
		t.Fatalf("progress %v, want b=12 c=7 only", got)
	}
	// A match never goes back within a term.
	s.appended("b", appendReq(3, 5, 6), ok)
	if got := s.progress(3)["b"]; got != 12 {
		t.Fatalf("b went back to %d", got)
	}
	// Failing heartbeats take a follower out until it acknowledges again.
	s.observe(raft.Observation{Data: raft.FailedHeartbeatObservation{PeerID: "b"}})
	if _, in := s.progress(3)["b"]; in {
		t.Fatal("a follower whose heartbeats fail still counts")
	}
	s.observe(raft.Observation{Data: raft.ResumedHeartbeatObservation{PeerID: "b"}})
	if s.progress(3)["b"] != 12 {
		t.Fatal("a follower whose heartbeats resumed does not count")
	}
	s.observe(raft.Observation{Data: raft.FailedHeartbeatObservation{PeerID: "b"}})
	s.appended("b", appendReq(3, 0), ok)
	if s.progress(3)["b"] != 12 {
		t.Fatal("a follower that answered a heartbeat after failures does not count")
	}
	// A removed server is forgotten.
	s.observe(raft.Observation{Data: raft.PeerObservation{Removed: true, Peer: raft.Server{ID: "c"}}})
	if _, in := s.progress(3)["c"]; in {
		t.Fatal("a removed server still counts")
	}
	// Snapshots count as the index they carry.
	s.acked("g", 3, 40)
	if s.progress(3)["g"] != 40 {
		t.Fatal("an installed snapshot does not count")
	}
	// Another term: nothing of the old one counts, and an answer of an
	// older term is ignored.
	if got := s.progress(4); len(got) != 0 {
		t.Fatalf("term 4 before any answer in it: %v", got)
	}
	s.appended("b", appendReq(5, 0, 1), &raft.AppendEntriesResponse{Term: 5, Success: true})
	s.appended("c", appendReq(3, 90, 91), ok)
	if got := s.progress(5); got["b"] != 1 || len(got) != 1 {
		t.Fatalf("term 5: %v, want b=1 only", got)
	}
	if got := s.progress(3); len(got) != 0 {
		t.Fatalf("term 3 after term 5 began: %v", got)
	}
}

// fakePipeline is an AppendPipeline whose requests finish at once.
type fakePipeline struct {
	done   chan raft.AppendFuture
	closed bool
}

type doneFuture struct {
	req  *raft.AppendEntriesRequest
	resp *raft.AppendEntriesResponse
}

func (f doneFuture) Error() error                          { return nil }
func (f doneFuture) Start() time.Time                      { return time.Time{} }
func (f doneFuture) Request() *raft.AppendEntriesRequest   { return f.req }
func (f doneFuture) Response() *raft.AppendEntriesResponse { return f.resp }
func (p *fakePipeline) Consumer() <-chan raft.AppendFuture { return p.done }
func (p *fakePipeline) Close() error                       { p.closed = true; return nil }
func (p *fakePipeline) AppendEntries(req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	*resp = raft.AppendEntriesResponse{Term: req.Term, Success: true}
	f := doneFuture{req, resp}
	p.done <- f
	return f, nil
}

// TestSeenPipelineRelaysAndNotes: pipelined answers reach raft in order
// through the wrapper, each noted on the way.
func TestSeenPipelineRelaysAndNotes(t *testing.T) {
	seen := newReplicationSeen()
	inner := &fakePipeline{done: make(chan raft.AppendFuture, 4)}
	p := &seenPipeline{AppendPipeline: inner, id: "b", seen: seen, out: make(chan raft.AppendFuture), stop: make(chan struct{}), done: make(chan struct{})}
	go p.relay()
	for i := uint64(1); i <= 3; i++ {
		if _, err := p.AppendEntries(appendReq(2, i-1, i), &raft.AppendEntriesResponse{}); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-p.Consumer():
			if got := f.Request().Entries[0].Index; got != i {
				t.Fatalf("relayed entry %d, want %d", got, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the pipeline's answer was not relayed")
		}
		if got := seen.progress(2)["b"]; got != i {
			t.Fatalf("after answer %d the leader saw %d", i, got)
		}
	}
	if err := p.Close(); err != nil || !inner.closed {
		t.Fatalf("close: %v, inner closed %v", err, inner.closed)
	}
}

// liarServer answers Status claiming to have applied far more than any
// leader has.
type liarServer struct {
	pb.UnimplementedClusterServer
}

func (liarServer) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{NodeId: "liar", AppliedIndex: 1 << 40, State: "Follower"}, nil
}

// TestPromotionFollowsTheLeadersReplication: a member that joins gossip
// as a node with a seat of its own (not fresh) and claims, through its
// Status, an applied index far past the leader's, but never acknowledges
// the leader's AppendEntries (its Raft port takes connections and answers
// nothing), is added as a non-voter and never promoted; a real node that
// joins after it is promoted once the leader has replicated to it, in a
// later reconcile pass, which would have promoted the liar too if its
// claim counted.
func TestPromotionFollowsTheLeadersReplication(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.startThree()
	createPlan(t, tc.leader(), "before-liar")

	// The liar's Raft port: connections accepted, read and never answered.
	raftLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := raftLn.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default: // more than the test keeps: refuse it
				c.Close()
				continue
			}
			go io.Copy(io.Discard, c) //nolint:errcheck // ends when the test closes c
		}
	}()
	t.Cleanup(func() { // before the nodes close: raft does not wait on it then
		raftLn.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterClusterServer(srv, liarServer{})
	go srv.Serve(grpcLn) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)

	gc, err := gossipConfig("liar", "127.0.0.1:0", "127.0.0.1", FastGossipTimings(), nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	liar, err := startGossip(gc, nodeMeta{Raft: raftLn.Addr().String(), GRPC: grpcLn.Addr().String(), DataID: "liar-dir"}, time.Now, discardLogger(), func() {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { liar.shutdown(0) })
	if _, err := liar.ml.Join([]string{n1.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, func() bool { return tc.voters()["liar"] == "nonvoter" })

	n4 := tc.start("n4", 3, n1.GossipAddr())
	waitFor(t, 15*time.Second, func() bool { return tc.voters()["n4"] == "voter" })
	if got := tc.voters()["liar"]; got != "nonvoter" {
		t.Fatalf("the liar is %q, want a non-voter: promoted on its own claim", got)
	}
	// The leader saw n4 acknowledge its log, and nothing from the liar.
	l := tc.leader()
	if l == nil {
		t.Fatal("no leader")
	}
	got := l.seen.progress(l.raft.CurrentTerm())
	if _, in := got["liar"]; in || got["n4"] == 0 {
		t.Fatalf("leader's view %v: want n4 and not the liar", got)
	}
	waitFor(t, 10*time.Second, func() bool { return n4.Config().UsagePlans["before-liar"] != nil })
}
