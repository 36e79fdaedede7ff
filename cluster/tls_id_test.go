package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/tollgate/tollgate/proto"
)

// answerRaft answers every RPC a Raft transport receives with success,
// until the test ends.
func answerRaft(t *testing.T, tr *raft.NetworkTransport) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case rpc := <-tr.Consumer():
				rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
			case <-stop:
				return
			}
		}
	}()
}

// TestSecurityWrongNodeIDRefused: a certificate of the cluster CA is not
// enough, it must name the node. A node that dials member "n2" over Raft
// or gRPC and meets a server whose certificate names "n9" refuses it at
// the TLS handshake, and logs that once for the address however often it
// retries; the same server dialed as "n9" is answered, so the refusal is
// the id's. A running node refuses a client whose certificate names a node
// that is no member ("n9"), on gRPC Status and on Raft, and takes one
// naming a member.
func TestSecurityWrongNodeIDRefused(t *testing.T) {
	p := newTestPKI(t, "cluster")
	impostor := p.storeAs("n9", "impostor")
	logs := &syncBuffer{}
	dialer := p.storeAs("n1", "dialer")
	refused := newRefusals(slog.New(slog.NewTextHandler(logs, nil)), time.Now)
	anyone := func(string) bool { return true }

	// Outgoing Raft: the impostor's transport answers whoever gets through.
	srvStream, err := listenStream("127.0.0.1:0", "", impostor, newRefusals(discardLogger(), time.Now), anyone)
	if err != nil {
		t.Fatal(err)
	}
	srv := raft.NewNetworkTransport(srvStream, 1, 2*time.Second, nil)
	defer srv.Close()
	answerRaft(t, srv)
	cliStream, err := listenStream("127.0.0.1:0", "", dialer, refused, anyone)
	if err != nil {
		t.Fatal(err)
	}
	cli := raft.NewNetworkTransport(cliStream, 1, 2*time.Second, nil)
	defer cli.Close()
	addr := srvStream.Addr().String()
	heartbeat := func(id string) error {
		var resp raft.AppendEntriesResponse
		return cli.AppendEntries(raft.ServerID(id), dialAddress(addr, id), &raft.AppendEntriesRequest{Term: 1}, &resp)
	}
	for range 2 {
		err := heartbeat("n2")
		if !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), `names node "n9", dialed as node "n2"`) {
			t.Fatalf("Raft to n2 answered by n9's certificate: %v, want a refusal", err)
		}
	}
	if err := heartbeat("n9"); err != nil {
		t.Fatalf("Raft to n9 answered by n9's certificate: %v", err)
	}
	// An address without a node id is not dialed at all.
	var resp raft.AppendEntriesResponse
	if err := cli.AppendEntries("n2", raft.ServerAddress(addr), &raft.AppendEntriesRequest{Term: 1}, &resp); !errors.Is(err, ErrPeerRefused) {
		t.Fatalf("Raft to an address without a node id: %v", err)
	}

	// Outgoing gRPC, to a server with the impostor's certificate.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(impostor.serverTLS(anyone))))
	pb.RegisterClusterServer(gs, liarServer{})
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	defer gs.Stop()
	ps := &peers{certs: dialer, refused: refused}
	defer ps.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		c, err := ps.client("n2", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Status(ctx, &pb.StatusRequest{}); err == nil || !strings.Contains(err.Error(), `dialed as node \"n2\"`) {
			t.Fatalf("gRPC to n2 answered by n9's certificate: %v, want a refusal", err)
		}
	}
	c, err := ps.client("n9", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, &pb.StatusRequest{}); err != nil {
		t.Fatalf("gRPC to n9 answered by n9's certificate: %v", err)
	}
	// Each refusal logged once for the address, with it.
	for _, line := range []string{"plane=raft peer=" + addr + " dialed=true", "plane=grpc peer=" + ln.Addr().String() + " dialed=true"} {
		if n := logs.count(line); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", line, n, logs.String())
		}
	}

	// Incoming: a running node takes only certificates naming a member.
	tc := newTestCluster(t)
	tc.secure = p.secure
	n1 := tc.start("n1", 1)
	nodeLogs := &syncBuffer{}
	n1.refused.log = slog.New(slog.NewTextHandler(nodeLogs, nil))
	waitFor(t, 10*time.Second, func() bool { return n1.IsLeader() })
	member := p.storeAs("n1", "member") // another holder of n1's certificate
	status := func(s *certStore) error {
		conn, err := grpc.NewClient(n1.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(s.clientTLS("n1"))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = pb.NewClusterClient(conn).Status(ctx, &pb.StatusRequest{})
		return err
	}
	raftTo := func(s *certStore) error {
		st, err := listenStream("127.0.0.1:0", "", s, newRefusals(discardLogger(), time.Now), anyone)
		if err != nil {
			t.Fatal(err)
		}
		tr := raft.NewNetworkTransport(st, 1, 2*time.Second, nil)
		defer tr.Close()
		var resp raft.AppendEntriesResponse
		// Term 0: a stale request the node answers without following it.
		return tr.AppendEntries("n1", dialAddress(n1.RaftAddr(), "n1"), &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("x"), Addr: []byte(st.Addr().String())}}, &resp)
	}
	for range 2 {
		if err := status(impostor); err == nil {
			t.Fatal("n1 answered Status to a certificate naming n9, no member")
		}
		if err := raftTo(impostor); err == nil {
			t.Fatal("n1 answered Raft to a certificate naming n9, no member")
		}
	}
	if err := status(member); err != nil {
		t.Fatalf("n1 refused Status to a certificate naming a member: %v", err)
	}
	if err := raftTo(member); err != nil {
		t.Fatalf("n1 refused Raft to a certificate naming a member: %v", err)
	}
	for _, plane := range []string{"grpc", "raft"} {
		line := "plane=" + plane + " peer=127.0.0.1"
		waitFor(t, 5*time.Second, func() bool { return nodeLogs.count(line) > 0 })
		if n := nodeLogs.count(line); n != 1 || !strings.Contains(nodeLogs.String(), `names node \"n9\", which is no member of this cluster`) {
			t.Errorf("%s refusals logged %d times, want once naming n9:\n%s", plane, n, nodeLogs.String())
		}
	}
	if _, ok := n1.gossip.Member("n9"); ok {
		t.Fatal("n9 became a member")
	}
}
