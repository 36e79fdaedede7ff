package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

func TestGroupCommitKeepsEachBatchsRequestID(t *testing.T) {
	h := newTestFSM(t, date(2026, time.May, 1, 12, 0, 0))
	f := h.f
	h.ok(cmdPlan("p1", true, quota(100, "DAY", 0)))
	h.ok(cmdKey("k1", "valueXofXkeyXoneX0123456789"))
	h.ok(cmdAttach("p1", "k1"))
	b1 := &pb.Command{RequestId: "b1", Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{NodeId: "n1", Grants: []*pb.GrantRequest{{PlanId: "p1", KeyId: "k1", Want: 30}}}}}
	b2 := &pb.Command{RequestId: "b2", Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{NodeId: "n2", Grants: []*pb.GrantRequest{{PlanId: "p1", KeyId: "k1", Want: 30}}}}}
	res := h.apply(&pb.Command{Body: &pb.Command_LedgerGroup{LedgerGroup: &pb.LedgerGroup{Commands: []*pb.Command{b1, b2}}}})
	if len(res.Group) != 2 || res.Group[0].Ledger.Grants[0].Granted != 30 || res.Group[1].Ledger.Grants[0].Granted != 30 {
		t.Fatalf("group result: %v", res)
	}
	// b1 resent alone (its group's reply was lost) applies once.
	again := h.apply(b1)
	if again.Ledger.Grants[0].Granted != 30 || again.Index != res.Index {
		t.Fatalf("resent batch: %v", again)
	}
	if l := f.KeyLedgers("p1")[0]; heldBy(l, "n1") != 30 || heldBy(l, "n2") != 30 {
		t.Fatalf("granted after the group and a resend: %v", l.Granted)
	}
	// A group may hold only ledger batches.
	bad := h.apply(&pb.Command{Body: &pb.Command_LedgerGroup{LedgerGroup: &pb.LedgerGroup{Commands: []*pb.Command{{RequestId: "x", Body: &pb.Command_Noop{Noop: &pb.Noop{}}}}}}})
	if len(bad.Group) != 1 || bad.Group[0].Code != pb.ErrorCode_ERROR_CODE_BAD_REQUEST {
		t.Fatalf("non-ledger command in a group: %v", bad)
	}
}

func TestFollowersBatchesGroup(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()

	// Batches sent at once from every node all apply, each once, however
	// the leader groups them.
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		n := tc.nodes[fmt.Sprintf("n%d", i%3+1)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := n.ApplyLedger(ctx, &pb.Command{Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{NodeId: n.ID()}}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("leader group commits of several batches: %d", tc.leader().groups.Load())
}
