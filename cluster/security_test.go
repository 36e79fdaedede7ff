package cluster

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tollgate/tollgate/proto"
)

// TestSecurityForgedCommandRefused sends, as an outsider on the gRPC port
// would with the project's own proto package, a CreateApiKey command with
// a 5-character value (the admin API requires 20 to 128 alphanumerics) to
// the leader of a real three-node cluster (the node that proposes what
// gRPC Apply takes). The state machine refuses it with a typed result and
// no node holds the key; a well-formed command through the same door
// applies, so the refusal is the FSM's.
func TestSecurityForgedCommandRefused(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()

	forged := func(id, value string) *pb.ApplyRequest {
		return &pb.ApplyRequest{Command: &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{
			Create: true, Key: &pb.ApiKey{Id: id, Value: value, Name: "forged", Enabled: true},
		}}}}
	}
	// call sends req to the leader's gRPC port, asking the new leader
	// again after a leader change.
	call := func(req *pb.ApplyRequest) *pb.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			var err error
			if n := tc.leader(); n != nil {
				conn, derr := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
				if derr != nil {
					t.Fatal(derr)
				}
				var resp *pb.ApplyResponse
				resp, err = pb.NewClusterClient(conn).Apply(ctx, req)
				conn.Close()
				if err == nil {
					return resp.GetResult()
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("gRPC Apply: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	res := call(forged("evil", "abcde"))
	if res.GetCode() != pb.ErrorCode_ERROR_CODE_BAD_REQUEST || res.GetMessage() != "API Key value should be at least 20 characters" {
		t.Fatalf("forged key: got %v %q, want a bad-request refusal", res.GetCode(), res.GetMessage())
	}
	t.Logf("forged CreateApiKey with value %q: %v %q", "abcde", res.GetCode(), res.GetMessage())
	// The same door takes a well-formed command (transport security is
	// not this test's subject), so every node has applied past the refusals.
	ok := call(forged("k2", "wellFormedValue0123456789"))
	if ok.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("well-formed key: %v %q", ok.GetCode(), ok.GetMessage())
	}
	waitFor(t, 5*time.Second, func() bool {
		for _, n := range tc.nodes {
			if n.AppliedIndex() < ok.GetIndex() {
				return false
			}
		}
		return true
	})
	for _, n := range tc.nodes {
		keys := n.Config().GetApiKeys()
		if keys["evil"] != nil || plainKey(n.Config(), "abcde") != nil {
			t.Fatalf("%s holds the forged key", n.ID())
		}
		if keys["k2"] == nil {
			t.Fatalf("%s lacks the well-formed key", n.ID())
		}
	}
}
