package cluster

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tollgate/tollgate/pki"
	pb "github.com/tollgate/tollgate/proto"
)

// testPKI is a cluster CA and gossip key made in the test, with node
// certificates written to files on demand.
type testPKI struct {
	t      *testing.T
	dir    string
	ca     *pki.CA
	caFile string
	gossip string // gossip key file
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{t: t, dir: dir, ca: ca, caFile: filepath.Join(dir, "ca.crt"), gossip: filepath.Join(dir, "gossip.key")}
	writeFile(t, p.caFile, ca.CertPEM())
	key, err := pki.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.gossip, key)
	return p
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// node writes id's certificate and key and returns their files.
func (p *testPKI) node(id string) (certFile, keyFile string) {
	p.t.Helper()
	return p.nodeAs(id, id)
}

// nodeAs writes a certificate and key naming id to the files base.crt
// and base.key.
func (p *testPKI) nodeAs(id, base string) (certFile, keyFile string) {
	p.t.Helper()
	certPEM, keyPEM, err := p.ca.IssueNode(id, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, base+".crt"), filepath.Join(p.dir, base+".key")
	writeFile(p.t, certFile, certPEM)
	writeFile(p.t, keyFile, keyPEM)
	return certFile, keyFile
}

// secure gives every node of tc a certificate of p and p's gossip key.
func (p *testPKI) secure(id string, c *NodeConfig) {
	c.TLSCertFile, c.TLSKeyFile = p.node(id)
	c.TLSCAFile, c.GossipKeyFile = p.caFile, p.gossip
}

// store is the certificate store of a peer with id's certificate.
func (p *testPKI) store(id string) *certStore {
	p.t.Helper()
	return p.storeAs(id, id)
}

// storeAs is store with the files named base (another holder of a
// certificate for id than the node that runs as id).
func (p *testPKI) storeAs(id, base string) *certStore {
	p.t.Helper()
	cert, key := p.nodeAs(id, base)
	s, err := newCertStore(p.caFile, cert, key, id, discardLogger())
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func secureCluster(t *testing.T, p *testPKI) (*testCluster, *syncBuffer) {
	tc := newTestCluster(t)
	tc.secure = p.secure
	logs := &syncBuffer{}
	n1 := tc.start("n1", 3)
	tc.nodes["n1"].log = slog.New(slog.NewTextHandler(logs, nil))
	tc.nodes["n1"].refused.log = tc.nodes["n1"].log
	tc.start("n2", 3, n1.GossipAddr())
	tc.start("n3", 3, n1.GossipAddr())
	waitFor(t, 15*time.Second, func() bool {
		v := tc.voters()
		return v["n1"] == "voter" && v["n2"] == "voter" && v["n3"] == "voter"
	})
	return tc, logs
}

// TestSecurityOutsiderRefused runs three nodes with mutual TLS and an
// encrypted gossip from a test CA. An outsider with a CA of its own (and
// its own gossip key) is refused at the TLS handshake by gRPC Apply and
// Status and by Raft (a term+1 heartbeat does not reach Raft: no node
// follows the outsider), cannot join gossip, and each refusal is logged once per
// address. A fourth node with a certificate of the cluster CA joins as a
// voter.
func TestSecurityOutsiderRefused(t *testing.T) {
	p := newTestPKI(t, "cluster")
	tc, logs := secureCluster(t, p)
	n1 := tc.nodes["n1"]
	outsider := newTestPKI(t, "outsider")
	bad := outsider.store("n9")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// gRPC: Apply and Status, from one address, by an outsider that
	// checks the node's certificate against its own CA and by one that
	// trusts any server: the node refuses both.
	badCert, _ := bad.current()
	for _, cfg := range []*tls.Config{bad.clientTLS("n1"), {InsecureSkipVerify: true, Certificates: []tls.Certificate{*badCert}}} {
		conn, err := grpc.NewClient(n1.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := pb.NewClusterClient(conn)
		_, err = client.Apply(ctx, &pb.ApplyRequest{Command: &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{
			Create: true, Plan: &pb.UsagePlan{Id: "evil", Name: "evil"},
		}}}})
		if err == nil {
			t.Fatal("outsider's Apply was accepted")
		}
		t.Logf("outsider gRPC Apply: %v", err)
		if _, err := client.Status(ctx, &pb.StatusRequest{}); err == nil {
			t.Fatal("outsider's Status was answered")
		}
	}
	for _, n := range tc.nodes {
		if n.Config().UsagePlans["evil"] != nil {
			t.Fatalf("%s holds the outsider's plan", n.ID())
		}
	}
	// Without any certificate, too.
	plain, err := tls.Dial("tcp", n1.GRPCAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err == nil {
		// TLS 1.3: the server's refusal arrives with the first read.
		_, err = plain.Read(make([]byte, 1))
		plain.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate finished the handshake")
	}

	// Raft: a term+1 heartbeat, through a Raft transport with the
	// outsider's certificate, checking the node's against its CA and then
	// trusting any.
	var leader *Node
	waitFor(t, 10*time.Second, func() bool { leader = tc.leader(); return leader != nil })
	term, _ := strconv.ParseUint(leader.raft.Stats()["term"], 10, 64)
	stream, err := listenStream("127.0.0.1:0", "", bad, newRefusals(discardLogger(), time.Now), func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransport(stream, 1, 2*time.Second, nil)
	defer tr.Close()
	for i := 0; i < 2; i++ {
		if i == 1 { // an outsider that trusts any server
			stream.client = func(string) *tls.Config {
				return &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{*badCert}}
			}
		}
		var out raft.AppendEntriesResponse
		err = tr.AppendEntries(raft.ServerID(leader.ID()), dialAddress(leader.RaftAddr(), leader.ID()), &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("n9"), Addr: []byte(stream.Addr().String())},
			Term:      term + 1,
		}, &out)
		if err == nil {
			t.Fatal("outsider's heartbeat was answered")
		}
		t.Logf("outsider term+1 heartbeat: %v", err)
	}
	// No node follows the outsider. (The term is not compared: with
	// test timings under -race, nodes hold elections of their own.)
	for _, n := range tc.nodes {
		if addr, id := n.raft.LeaderWithID(); id == "n9" || addr == raft.ServerAddress(stream.Addr().String()) {
			t.Fatalf("%s follows the outsider", n.ID())
		}
	}

	// Gossip: a memberlist with the outsider's key cannot join.
	keys, _, err := readGossipKeys(outsider.gossip)
	if err != nil {
		t.Fatal(err)
	}
	if joined, err := gossipJoin(t, "n9", keys, n1.GossipAddr()); err == nil || joined != 0 {
		t.Fatalf("outsider joined gossip: %d, %v", joined, err)
	} else {
		t.Logf("outsider gossip join: %v", err)
	}
	// A memberlist without a key at all cannot join either.
	if joined, err := gossipJoin(t, "n8", nil, n1.GossipAddr()); err == nil || joined != 0 {
		t.Fatalf("keyless outsider joined gossip: %d, %v", joined, err)
	}

	// A valid node joins as a voter; the outsiders are no members.
	tc.start("n4", 3, n1.GossipAddr())
	waitFor(t, 15*time.Second, func() bool { return tc.voters()["n4"] == "voter" })
	for _, id := range []string{"n8", "n9"} {
		if _, ok := n1.gossip.Member(id); ok {
			t.Fatalf("gossip knows outsider %s", id)
		}
		if _, ok := tc.voters()[id]; ok {
			t.Fatalf("raft has outsider %s", id)
		}
	}
	// Each refusal on n1 logged once for the address (two tries each).
	if n := logs.count("plane=grpc peer=127.0.0.1"); n != 1 {
		t.Fatalf("gRPC refusals logged %d times, want once", n)
	}
	if leader == n1 {
		if n := logs.count("plane=raft peer=127.0.0.1"); n != 1 {
			t.Fatalf("Raft refusals logged %d times, want once", n)
		}
	}
}

// TestSecurityCertificateReload rewrites a node's certificate file and
// sees the next handshake present the new one, without a restart; a file
// that is not a valid node certificate keeps the last good one.
func TestSecurityCertificateReload(t *testing.T) {
	p := newTestPKI(t, "cluster")
	tc := newTestCluster(t)
	tc.secure = p.secure
	n1 := tc.start("n1", 1)
	peer := p.storeAs("n1", "peer") // a client presenting a member's certificate
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", n1.GRPCAddr(), peer.clientTLS("n1", "h2"))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := served()
	certFile, keyFile := filepath.Join(p.dir, "n1.crt"), filepath.Join(p.dir, "n1.key")
	certPEM, keyPEM, err := p.ca.IssueNode("n1", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, keyPEM)
	writeFile(t, certFile, certPEM)
	second := served()
	if second == first {
		t.Fatalf("still serving serial %s after the rotation", first)
	}
	// A certificate for another node id is refused; the last one stays.
	other, otherKey, err := p.ca.IssueNode("n2", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, otherKey)
	writeFile(t, certFile, other)
	if got := served(); got != second {
		t.Fatalf("serving %s, want the last good certificate %s", got, second)
	}
	writeFile(t, keyFile, keyPEM)
	writeFile(t, certFile, certPEM)
	if got := served(); got != second {
		t.Fatalf("serving %s after the good pair came back, want %s", got, second)
	}
	// The CA file is read again too: with the outsider's CA added to it
	// (a bundle, as when the CA itself is rotated), a certificate of that
	// CA is accepted.
	outsider := newTestPKI(t, "outsider")
	stranger := outsider.store("n1") // names a member: only its CA is foreign
	if c, err := tls.Dial("tcp", n1.GRPCAddr(), stranger.clientTLS("n1", "h2")); err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil {
			t.Fatal("a certificate of another CA was accepted")
		}
	}
	writeFile(t, p.caFile, append(p.ca.CertPEM(), outsider.ca.CertPEM()...))
	// The stranger trusts the cluster's CA as well, to see the node's
	// verdict on its certificate.
	writeFile(t, outsider.caFile, append(outsider.ca.CertPEM(), p.ca.CertPEM()...))
	conn, err := grpc.NewClient(n1.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(stranger.clientTLS("n1"))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pb.NewClusterClient(conn).Status(ctx, &pb.StatusRequest{}); err != nil {
		t.Fatalf("a certificate of a CA in the bundle was refused: %v", err)
	}
	// The node still commits with the rotated certificate.
	createPlan(t, n1, "after-rotation")
}
