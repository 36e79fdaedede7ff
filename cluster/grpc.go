package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/tollgate/tollgate/proto"
)

// rpcServer answers other nodes: Apply and Shares (only on the leader) and
// Status.
type rpcServer struct {
	pb.UnimplementedClusterServer
	n *Node
}

func (s *rpcServer) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ApplyResponse, error) {
	if req.GetCommand() == nil || req.Command.Body == nil {
		return nil, status.Error(codes.InvalidArgument, "command is missing")
	}
	res, err := s.n.propose(ctx, req.Command)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ApplyResponse{Result: res}, nil
}

func (s *rpcServer) Shares(ctx context.Context, req *pb.ShareRequest) (*pb.ShareResponse, error) {
	resp, err := s.n.leadShares(req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *rpcServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	leader, _ := s.n.Leader()
	return &pb.StatusResponse{
		NodeId:       s.n.ID(),
		LeaderId:     leader,
		AppliedIndex: s.n.AppliedIndex(),
		State:        s.n.raft.State().String(),
		TimeUnixNano: s.n.cfg.Now().UnixNano(),
	}, nil
}

// toStatus carries the node's errors over gRPC; fromStatus brings them back.
func toStatus(err error) error {
	switch {
	case errors.Is(err, ErrNotLeader):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrUnknownOutcome):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.FailedPrecondition:
		return ErrNotLeader
	case codes.Aborted:
		return ErrUnknownOutcome
	case codes.DeadlineExceeded:
		return ErrTimeout
	case codes.Canceled:
		return context.Canceled
	case codes.Unavailable:
		// The leader could not be reached: the command may or may not
		// have been sent. Its request id makes a retry safe.
		return fmt.Errorf("%w: %s", ErrUnknownOutcome, st.Message())
	}
	return errors.New(st.Message())
}

func listenGRPC(n *Node, listen string) (*grpc.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc listen on %s: %w", listen, err)
	}
	var opts []grpc.ServerOption
	if n.certs != nil {
		// Mutual TLS: a caller without a node certificate of the
		// cluster CA is refused at the handshake, before any RPC.
		// Its certificate must name a member of the cluster.
		opts = append(opts, grpc.Creds(loggedCreds{TransportCredentials: credentials.NewTLS(n.certs.serverTLS(n.addrs.knows)), refused: n.refused}))
	}
	s := grpc.NewServer(opts...)
	pb.RegisterClusterServer(s, &rpcServer{n: n})
	return s, ln, nil
}

// peers keeps one client connection per peer: node id and address.
type peers struct {
	// certs (nil: plain TCP) makes each connection's TLS: the server's
	// certificate must name the node id it is dialed for; refused logs
	// one that does not.
	certs   *certStore
	refused *refusals
	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
}

// client returns a client of node id at addr.
func (p *peers) client(id, addr string) (pb.ClusterClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	key := id + "#" + addr
	c := p.conns[key]
	if c == nil {
		creds := insecure.NewCredentials()
		if p.certs != nil {
			creds = loggedCreds{TransportCredentials: credentials.NewTLS(p.certs.clientTLS(id)), refused: p.refused}
		}
		var err error
		c, err = grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		p.conns[key] = c
	}
	return pb.NewClusterClient(c), nil
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
