package cluster

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// maxGroup caps the ledger batches of one group commit, and maxGroupBytes
// their size: a Raft entry stays well under a megabyte.
const (
	maxGroup      = 256
	maxGroupBytes = 512 << 10
)

// groupCommit is the leader's group commit of ledger batches: while one
// Raft entry is in flight, the batches that arrive (from this node's quota
// pool and forwarded by the others) wait, and go together in the next
// entry. Under load the ledger needs a few entries a second whatever the
// number of nodes; idle, a batch goes alone at once.
type groupCommit struct {
	n    *Node
	reqs chan *groupReq
}

type groupReq struct {
	ctx  context.Context
	cmd  *pb.Command
	done chan groupResp
}

type groupResp struct {
	res *pb.Result
	err error
}

func newGroupCommit(n *Node) *groupCommit {
	return &groupCommit{n: n, reqs: make(chan *groupReq, maxGroup)}
}

// commit queues a ledger batch and waits for its result.
func (g *groupCommit) commit(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	r := &groupReq{ctx: ctx, cmd: cmd, done: make(chan groupResp, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return nil, ErrTimeout
	case <-g.n.stop:
		return nil, ErrClosed
	}
	select {
	case resp := <-r.done:
		return resp.res, resp.err
	case <-ctx.Done():
		// The batch may still commit: its request id makes a resend safe.
		return nil, ErrUnknownOutcome
	case <-g.n.stop:
		return nil, ErrClosed
	}
}

func (g *groupCommit) run() {
	defer g.n.wg.Done()
	var carry *groupReq // taken from the queue, but it did not fit
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case <-g.n.stop:
				return
			case first = <-g.reqs:
			}
		}
		batch := []*groupReq{first}
		size := proto.Size(first.cmd)
	drain:
		for len(batch) < maxGroup {
			select {
			case r := <-g.reqs:
				if size += proto.Size(r.cmd); size > maxGroupBytes {
					carry = r
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		g.apply(batch)
	}
}

func (g *groupCommit) apply(batch []*groupReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		res, err := g.n.applyLocal(live[0].ctx, live[0].cmd)
		live[0].done <- groupResp{res, err}
		return
	}
	group := &pb.LedgerGroup{Commands: make([]*pb.Command, len(live))}
	deadline := time.Time{}
	for i, r := range live {
		group.Commands[i] = r.cmd
		if dl, ok := r.ctx.Deadline(); ok && dl.After(deadline) {
			deadline = dl
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	cmd := &pb.Command{Body: &pb.Command_LedgerGroup{LedgerGroup: group}}
	stamp(cmd, g.n.ledgerNow())
	res, err := g.n.applyLocal(ctx, cmd)
	g.n.groups.Add(1)
	for i, r := range live {
		switch {
		case err != nil:
			r.done <- groupResp{nil, err}
		case i < len(res.Group):
			r.done <- groupResp{res.Group[i], nil}
		default:
			r.done <- groupResp{nil, ErrUnknownOutcome}
		}
	}
}

// LiveNodes is the number of cluster members gossip sees alive (at least 1).
func (n *Node) LiveNodes() int { return int(max(n.gossip.alive.Load(), 1)) }
