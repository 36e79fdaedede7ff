package cluster

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

func demandBatch(node string, demand float64) *pb.LedgerBatch {
	return &pb.LedgerBatch{NodeId: node, Reports: []*pb.UsageReport{{PlanId: "p", KeyId: "k", Demand: demand}}}
}

func shareOf(t *testing.T, st *shareTable, node string, demand float64, live int, now time.Time) float64 {
	t.Helper()
	b := demandBatch(node, demand)
	st.observe(b, now)
	s := st.sharesFor(b, live, now)
	if len(s) != 1 {
		t.Fatalf("shares for one reported key: %v", s)
	}
	return s[0].Share
}

func TestShareTable(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newShareTable()
	// One node reporting among three live: it gets the most, the silent
	// ones keep a floor.
	if got := shareOf(t, st, "a", 480, 3, now); math.Abs(got-(480+8)/(480+24.0)) > 1e-9 {
		t.Fatalf("sole reporter's share = %v", got)
	}
	st.observe(demandBatch("b", 60), now)
	got := shareOf(t, st, "c", 60, 3, now)
	// demand 480/60/60: floor = 0.05*600/3 = 10 → c gets 70/630.
	if math.Abs(got-70.0/630) > 1e-9 {
		t.Fatalf("80/10/10 share of the small node = %v, want %v", got, 70.0/630)
	}
	if a := shareOf(t, st, "a", 480, 3, now); math.Abs(a-490.0/630) > 1e-9 {
		t.Fatalf("80/10/10 share of the large node = %v", a)
	}
	// Whatever the demand, the shares of all nodes sum to 1; even demand
	// gives even shares.
	for _, n := range []string{"a", "b", "c"} {
		st.observe(demandBatch(n, 200), now)
	}
	sum := 0.0
	for _, n := range []string{"a", "b", "c"} {
		sh := st.sharesFor(demandBatch(n, 200), 3, now)[0].Share
		if math.Abs(sh-1.0/3) > 1e-9 {
			t.Fatalf("even demand: share %v", sh)
		}
		sum += sh
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("shares sum to %v", sum)
	}
	// A node that stopped reporting (dead) no longer counts: the other two
	// split the throttle.
	later := now.Add(shareStale + time.Second)
	shareOf(t, st, "b", 200, 2, later)
	if got := shareOf(t, st, "a", 200, 2, later); math.Abs(got-0.5) > 1e-9 {
		t.Fatalf("share with one node gone = %v, want 0.5", got)
	}
}

func TestGroupCommitKeepsEachBatchsRequestID(t *testing.T) {
	h := newTestFSM(t, date(2026, time.May, 1, 12, 0, 0))
	f := h.f
	h.ok(cmdPlan("p1", true, quota(100, "DAY", 0)))
	h.ok(cmdKey("k1", "value-of-key-one-0123456789"))
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

func TestFollowersGetThrottleSharesAndBatchesGroup(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.start("n1", 3)
	tc.start("n2", 3, n1.GossipAddr())
	tc.start("n3", 3, n1.GossipAddr())
	waitFor(t, 15*time.Second, func() bool { return len(tc.voters()) == 3 })
	createPlan(t, n1, "p")
	// Every node reports its demand for one key through the leader and
	// learns its share of the key's throttle.
	demand := map[string]float64{"n1": 80, "n2": 10, "n3": 10}
	got := map[string]float64{}
	for round := 0; round < 2; round++ { // the second round sees every node's demand
		for id, n := range tc.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			b := demandBatch(id, demand[id])
			_, shares, err := n.ApplyLedger(ctx, &pb.Command{Body: &pb.Command_Ledger{Ledger: b}})
			cancel()
			if err != nil || len(shares) != 1 {
				t.Fatalf("%s: %v %v", id, shares, err)
			}
			got[id] = shares[0].Share
		}
	}
	floor := 0.05 * 100 / 3 // shareFloor of the mean demand
	want := map[string]float64{"n1": (80 + floor) / 105, "n2": (10 + floor) / 105, "n3": (10 + floor) / 105}
	for id, w := range want {
		if math.Abs(got[id]-w) > 1e-9 {
			t.Fatalf("shares %v, want %v (demand 80/10/10)", got, want)
		}
	}

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
			_, _, err := n.ApplyLedger(ctx, &pb.Command{Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{NodeId: n.ID()}}})
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

// TestEvenShareFollowsMembership: a node's even share of cluster-wide
// throttles is re-divided when a node dies, and when it comes back.
func TestEvenShareFollowsMembership(t *testing.T) {
	tc := newTestCluster(t)
	n1 := tc.start("n1", 3)
	tc.start("n2", 3, n1.GossipAddr())
	n3 := tc.start("n3", 3, n1.GossipAddr())
	waitFor(t, 10*time.Second, func() bool { return math.Abs(n1.EvenShare()-1.0/3) < 1e-9 })
	n3.Close()
	delete(tc.nodes, "n3")
	waitFor(t, 10*time.Second, func() bool { return n1.EvenShare() == 0.5 })
	tc.start("n3", 3, n1.GossipAddr())
	waitFor(t, 10*time.Second, func() bool { return math.Abs(n1.EvenShare()-1.0/3) < 1e-9 })
}
