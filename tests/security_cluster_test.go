package tests

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/tollgate/tollgate/proto"
)

// certs runs `tollgate certs` with args.
func certs(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"certs"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tollgate certs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// secureArgs are the TLS and gossip key flags of node id with the files
// of dir.
func secureArgs(dir, id string) []string {
	return []string{
		"--tls-ca", filepath.Join(dir, "ca.crt"),
		"--tls-cert", filepath.Join(dir, id+".crt"),
		"--tls-key", filepath.Join(dir, id+".key"),
		"--gossip-key", filepath.Join(dir, "gossip.key"),
	}
}

// TestSecurityOutsiderRefused runs two nodes with mutual TLS and encrypted
// gossip from `tollgate certs`; each claim is a subtest named for it. An
// outsider with a CA and gossip key of its own (also from `tollgate
// certs`) cannot call gRPC Apply or Status, cannot send Raft RPCs (refused
// at the TLS handshake) and cannot join by gossip; a node with a
// certificate of the cluster CA joins as a voter; n1 logs each refusal
// once for the address.
func TestSecurityOutsiderRefused(t *testing.T) {
	root := t.TempDir()
	pkiDir, outDir := filepath.Join(root, "pki"), filepath.Join(root, "outsider")
	certs(t, "init", "--dir", pkiDir)
	certs(t, "node", "--dir", pkiDir, "--id", "n1", "--ip", "127.0.0.1")
	certs(t, "node", "--dir", pkiDir, "--id", "n2")
	certs(t, "init", "--dir", outDir)
	certs(t, "node", "--dir", outDir, "--id", "n9")

	n1 := startGateway(t, filepath.Join(root, "n1"), append(secureArgs(pkiDir, "n1"), "--node-id", "n1")...)
	if !strings.Contains(n1.logs.String(), "mutual TLS on Raft and gRPC") {
		t.Fatalf("n1 does not say its transport is secure:\n%s", n1.logs.String())
	}

	pair, err := tls.LoadX509KeyPair(filepath.Join(outDir, "n9.crt"), filepath.Join(outDir, "n9.key"))
	if err != nil {
		t.Fatal(err)
	}
	naive := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// gRPC Apply and Status with the outsider's certificate, by a client
	// that trusts any server, twice each.
	t.Run("OutsiderCannotCallApplyOrStatus", func(t *testing.T) {
		for range 2 {
			conn, err := grpc.NewClient(n1.listening["grpc"], grpc.WithTransportCredentials(credentials.NewTLS(naive)))
			if err != nil {
				t.Fatal(err)
			}
			c := pb.NewClusterClient(conn)
			_, aerr := c.Apply(ctx, &pb.ApplyRequest{Command: &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{
				Create: true, Plan: &pb.UsagePlan{Id: "evil", Name: "evil"},
			}}}})
			_, serr := c.Status(ctx, &pb.StatusRequest{})
			conn.Close()
			if aerr == nil || serr == nil {
				t.Fatalf("outsider's gRPC calls answered: Apply %v, Status %v", aerr, serr)
			}
			t.Logf("outsider gRPC Apply: %v", aerr)
		}
		if r := n1.admin("GET", "/usageplans/evil", nil); r.Status != 404 {
			t.Fatalf("the outsider's plan exists: %d %s", r.Status, r.Body)
		}
	})

	// Raft: the handshake with the outsider's certificate is refused.
	t.Run("OutsiderCannotSendRaftRPCs", func(t *testing.T) {
		for range 2 {
			conn, err := tls.Dial("tcp", n1.listening["raft"], naive)
			if err == nil {
				// TLS 1.3: the server's verdict on our certificate
				// arrives with the first read.
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "bad certificate") {
				t.Fatalf("outsider's Raft connection: %v, want a bad certificate alert", err)
			}
			t.Logf("outsider Raft connection: %v", err)
		}
	})

	// Gossip: the outsider's node, the public binary with its own files,
	// cannot join.
	t.Run("OutsiderCannotJoinGossip", func(t *testing.T) {
		n9 := launch(t, append(loopbackArgs(filepath.Join(root, "n9")), append(secureArgs(outDir, "n9"), "--node-id", "n9", "--join", n1.listening["gossip"])...), nil)
		eventually(t, 30*time.Second, "the outsider to fail its join", func() bool {
			return strings.Contains(n9.logs.String(), "cannot join the cluster")
		})
	})

	// A node with the cluster's files joins as a voter; without
	// --node-id, its fresh data dir takes the id its certificate names.
	t.Run("ValidNodeJoinsWithItsCertificate", func(t *testing.T) {
		n2 := startGateway(t, filepath.Join(root, "n2"), append(secureArgs(pkiDir, "n2"), "--join", n1.listening["gossip"])...)
		eventually(t, 30*time.Second, "n2 to be a voter", func() bool {
			v, ok := n1.cluster()
			return ok && v.voters() == 2
		})
		v, _ := n1.cluster()
		for _, m := range v.Members {
			if m.ID == "n9" {
				t.Fatalf("the outsider is a member: %+v", v)
			}
		}
		if v2, ok := n2.cluster(); !ok || v2.Leader == "" || v2.NodeID != "n2" {
			t.Fatalf("n2 knows no leader or is not n2: %+v", v2)
		}
	})

	// Each refusal logged once for the address, though tried twice.
	t.Run("EachRefusalLoggedOnce", func(t *testing.T) {
		count := func(sub string) int { return strings.Count(n1.logs.String(), sub) }
		for _, line := range []string{"plane=grpc peer=127.0.0.1", "plane=raft peer=127.0.0.1", `msg="failed to receive: no installed keys could decrypt`} {
			eventually(t, 5*time.Second, "n1 to log "+line, func() bool { return count(line) > 0 })
			if n := count(line); n != 1 {
				t.Errorf("%q logged %d times, want once", line, n)
			}
		}
	})
}

// TestSecurityClusterListenLoopbackOnly: without TLS, a non-loopback Raft
// listener is refused at start with a message that names the way out;
// with --cluster-insecure the same node starts.
func TestSecurityClusterListenLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	args := append(loopbackArgs(filepath.Join(dir, "a")), "--raft-listen", "0.0.0.0:0")
	start := time.Now()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err == nil {
		t.Fatalf("serve --raft-listen 0.0.0.0:0 without TLS started:\n%s", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s to fail", d)
	}
	for _, want := range []string{`--raft-listen "0.0.0.0:0" is reachable from other hosts`, "--tls-ca", "--cluster-insecure"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the error does not say %q:\n%s", want, out)
		}
	}
	g := startGateway(t, filepath.Join(dir, "b"), "--raft-listen", "0.0.0.0:0", "--cluster-insecure")
	if !strings.Contains(g.logs.String(), "cluster transport without TLS (--cluster-insecure)") {
		t.Fatalf("no warning about the insecure cluster transport:\n%s", g.logs.String())
	}
}

// TestSecurityCertificateRotatedWithoutRestart: `tollgate certs node`
// run again for a running node replaces its certificate files, and the
// node's next handshake presents the new certificate.
func TestSecurityCertificateRotatedWithoutRestart(t *testing.T) {
	root := t.TempDir()
	pkiDir := filepath.Join(root, "pki")
	certs(t, "init", "--dir", pkiDir)
	certs(t, "node", "--dir", pkiDir, "--id", "n1")
	certs(t, "node", "--dir", pkiDir, "--id", "peer")
	n1 := startGateway(t, filepath.Join(root, "n1"), secureArgs(pkiDir, "n1")...)

	pair, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "peer.crt"), filepath.Join(pkiDir, "peer.key"))
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", n1.listening["grpc"], &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("handshake with n1: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := served()
	certs(t, "node", "--dir", pkiDir, "--id", "n1")
	if after := served(); after == before {
		t.Fatalf("n1 still presents serial %s after its files were replaced", before)
	}
	eventually(t, 5*time.Second, "n1 to log the new certificate", func() bool {
		return strings.Contains(n1.logs.String(), "read the node certificate again")
	})
}

// TestSecurityWrongNodeIDRefused: a certificate signed by the cluster CA
// for a node id that is no member ("n9") is refused by a running node at
// the TLS handshake, on gRPC (Apply and Status) and on Raft, and each
// refusal is logged once for the address, naming the id; a certificate of
// the same CA naming a member is answered, and a command forged with it
// that breaks the admin API's rules is refused by the state machine. A
// node started as n2 with n9's certificate does not start.
func TestSecurityWrongNodeIDRefused(t *testing.T) {
	root := t.TempDir()
	pkiDir, otherDir := filepath.Join(root, "pki"), filepath.Join(root, "other-holder")
	certs(t, "init", "--dir", pkiDir)
	certs(t, "node", "--dir", pkiDir, "--id", "n1", "--ip", "127.0.0.1")
	certs(t, "node", "--dir", pkiDir, "--id", "n9")
	// The same CA issues a second certificate naming n1, kept elsewhere.
	if err := os.MkdirAll(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key", "gossip.key"} {
		b, err := os.ReadFile(filepath.Join(pkiDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFile(filepath.Join(otherDir, f), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	certs(t, "node", "--dir", otherDir, "--id", "n1")

	n1 := startGateway(t, filepath.Join(root, "n1"), append(secureArgs(pkiDir, "n1"), "--node-id", "n1")...)
	pair := func(dir, id string) *tls.Config {
		p, err := tls.LoadX509KeyPair(filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{p}}
	}
	wrong, member := pair(pkiDir, "n9"), pair(otherDir, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status := func(cfg *tls.Config) (applyErr, statusErr error) {
		conn, err := grpc.NewClient(n1.listening["grpc"], grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := pb.NewClusterClient(conn)
		_, applyErr = c.Apply(ctx, &pb.ApplyRequest{Command: &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{
			Create: true, Plan: &pb.UsagePlan{Id: "by-n9", Name: "by-n9"},
		}}}})
		_, statusErr = c.Status(ctx, &pb.StatusRequest{})
		return applyErr, statusErr
	}
	for range 2 {
		if aerr, serr := status(wrong); aerr == nil || serr == nil {
			t.Fatalf("n9's certificate was answered: Apply %v, Status %v", aerr, serr)
		}
		conn, err := tls.Dial("tcp", n1.listening["raft"], wrong)
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the verdict comes with the first read
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "bad certificate") {
			t.Fatalf("Raft connection with n9's certificate: %v, want a bad certificate alert", err)
		}
	}
	if r := n1.admin("GET", "/usageplans/by-n9", nil); r.Status != 404 {
		t.Fatalf("n9's plan exists: %d %s", r.Status, r.Body)
	}
	if _, serr := status(member); serr != nil {
		t.Fatalf("a certificate of the CA naming member n1 was refused: %v", serr)
	}
	// Past the transport, the state machine still checks every command:
	// a holder of a member's certificate cannot store what the admin API
	// would refuse.
	t.Run("ForgedCommandRefusedByFSM", func(t *testing.T) {
		conn, err := grpc.NewClient(n1.listening["grpc"], grpc.WithTransportCredentials(credentials.NewTLS(member)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := pb.NewClusterClient(conn)
		for name, k := range map[string]*pb.ApiKey{
			"a 5-character value":      {Id: "forged1", Value: "abcde", Name: "forged", Enabled: true},
			"a lookup hash of 3 bytes": {Id: "forged2", ValueLookup: []byte("abc"), ValueSealed: make([]byte, 60), Name: "forged", Enabled: true},
			"a value in both forms":    {Id: "forged3", Value: "wellFormedValue0123456789", ValueLookup: make([]byte, 32), ValueSealed: make([]byte, 60), Name: "forged", Enabled: true},
		} {
			resp, err := c.Apply(ctx, &pb.ApplyRequest{Command: &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Create: true, Key: k}}}})
			if err != nil {
				t.Fatalf("%s: Apply: %v", name, err)
			}
			if resp.GetResult().GetCode() != pb.ErrorCode_ERROR_CODE_BAD_REQUEST {
				t.Fatalf("%s: %v %q, want a bad-request refusal", name, resp.GetResult().GetCode(), resp.GetResult().GetMessage())
			}
			if r := n1.admin("GET", "/apikeys/"+k.Id, nil); r.Status != 404 {
				t.Fatalf("%s: the forged key exists: %d %s", name, r.Status, r.Body)
			}
		}
	})
	for _, plane := range []string{"grpc", "raft"} {
		line := "plane=" + plane + " peer=127.0.0.1"
		eventually(t, 5*time.Second, "n1 to log the "+plane+" refusal", func() bool { return strings.Count(n1.logs.String(), line) > 0 })
		if n := strings.Count(n1.logs.String(), line); n != 1 {
			t.Errorf("%q logged %d times, want once", line, n)
		}
	}
	if !strings.Contains(n1.logs.String(), `names node \"n9\", which is no member of this cluster`) {
		t.Errorf("the refusal does not name n9:\n%s", n1.logs.String())
	}

	// A node cannot run as n2 with n9's certificate.
	n2 := launch(t, append(loopbackArgs(filepath.Join(root, "n2")), "--node-id", "n2",
		"--tls-ca", filepath.Join(pkiDir, "ca.crt"), "--tls-cert", filepath.Join(pkiDir, "n9.crt"), "--tls-key", filepath.Join(pkiDir, "n9.key"),
		"--gossip-key", filepath.Join(pkiDir, "gossip.key")), nil)
	log, err := n2.waitExit(30 * time.Second)
	if err == nil || !strings.Contains(log, `"n9"`) {
		t.Fatalf("n2 with n9's certificate: exit %v, want a failure naming n9:\n%s", err, log)
	}
}
