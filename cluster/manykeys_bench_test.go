package cluster

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

// manyKeys gives an FSM n sealed keys imported into plan p1 in calls of
// 10,000, as `tollgate bench` does, and ledgers for the first active keys.
func manyKeys(b *testing.B, n, active int) *testFSM {
	b.Helper()
	keys := testKeys(b)
	h := newTestFSM(b, t0)
	h.setup(quota(1000000, "DAY", 0))
	const batch = 10000
	for lo := 0; lo < n; lo += batch {
		imp := &pb.ImportApiKeys{}
		for i := lo; i < min(lo+batch, n); i++ {
			id := fmt.Sprintf("key%07d", i)
			imp.Keys = append(imp.Keys, sealedImport(keys, id, fmt.Sprintf("benchValue%014d", i), "p1"))
		}
		h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: imp}})
	}
	for lo := 0; lo < active; lo += 500 {
		lb := &pb.LedgerBatch{NodeId: "n1"}
		for i := lo; i < min(lo+500, active); i++ {
			lb.Grants = append(lb.Grants, grantReq("p1", fmt.Sprintf("key%07d", i), 10))
		}
		h.ok(cmdLedger(lb))
	}
	return h
}

// BenchmarkManyKeysSnapshot prints what a snapshot costs as keys grow:
// Snapshot and Persist into memory, and Restore from it.
func BenchmarkManyKeysSnapshot(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			h := manyKeys(b, n, 10000)
			var persistT, restoreT time.Duration
			var size int
			for b.Loop() {
				start := time.Now()
				data := persist(b, h.f)
				persistT += time.Since(start)
				size = len(data)
				g := NewFSM()
				start = time.Now()
				if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
					b.Fatal(err)
				}
				restoreT += time.Since(start)
			}
			b.ReportMetric(float64(persistT.Milliseconds())/float64(b.N), "persist-ms")
			b.ReportMetric(float64(restoreT.Milliseconds())/float64(b.N), "restore-ms")
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}

// BenchmarkManyKeysOneKeyChange prints what adding one key costs the FSM
// as keys grow.
func BenchmarkManyKeysOneKeyChange(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			h := manyKeys(b, n, 0)
			keys := testKeys(b)
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("new%07d", i)
				i++
				h.ok(cmdSealedKey(keys, id, fmt.Sprintf("newValue%016d", i)))
				h.ok(cmdAttach("p1", id))
			}
		})
	}
}
