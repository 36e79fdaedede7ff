package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// TestFSMRestoresVersion2: a snapshot written as one message of version 2,
// as nodes before the stream wrote them, restores to the same state as the
// stream of the same state, and that state snapshots as a stream.
func TestFSMRestoresVersion2(t *testing.T) {
	h := newTestFSM(t, t0)
	buildState(h)
	h.ok(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k1", KeepUsage: true}}})
	stream := persist(t, h.f)
	s := decodeSnapshot(t, stream)
	s.Version = 2
	old, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(old)}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.Config(), h.f.Config()) || g.AppliedIndex() != h.f.AppliedIndex() {
		t.Fatalf("version 2 restored\n%v\nwant\n%v", g.Config(), h.f.Config())
	}
	if again := persist(t, g); !sameSnapshot(t, again, stream) {
		t.Fatal("a state restored from version 2 snapshots differently")
	}
}

// partSizes returns the number of per-key entries of each part of a stream.
func partSizes(t *testing.T, data []byte) []int {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(data[len(snapshotMagic):]))
	var head pb.Snapshot
	if err := protodelim.UnmarshalFrom(r, &head); err != nil {
		t.Fatal(err)
	}
	var out []int
	for {
		var p pb.Snapshot
		if err := protodelim.UnmarshalFrom(r, &p); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		n := len(p.GetConfig().GetApiKeys()) + len(p.GetConfig().GetDeletedApiKeys()) + len(p.Ledgers)
		for _, pk := range p.GetConfig().GetPlanKeys() {
			n += len(pk.GetKeys())
		}
		out = append(out, n)
	}
}

// TestFSMSnapshotStreamsManyKeys: keys, memberships and ledgers beyond
// one part's worth are written in parts of at most snapshotPart entries
// and restored whole.
func TestFSMSnapshotStreamsManyKeys(t *testing.T) {
	keys := testKeys(t)
	h := newTestFSM(t, t0)
	h.setup(quota(1000, "DAY", 0))
	n := 2*snapshotPart + 17
	imp := &pb.ImportApiKeys{}
	for i := range n {
		id := fmt.Sprintf("key%05d", i)
		imp.Keys = append(imp.Keys, sealedImport(keys, id, fmt.Sprintf("manyValue%014d", i), "p1"))
		if len(imp.Keys) == 5000 || i == n-1 {
			h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: imp}})
			imp = &pb.ImportApiKeys{}
		}
	}
	lb := &pb.LedgerBatch{NodeId: "n1"}
	for i := range snapshotPart + 1 {
		lb.Grants = append(lb.Grants, grantReq("p1", fmt.Sprintf("key%05d", i), 3))
	}
	h.ok(cmdLedger(lb))

	data := persist(t, h.f)
	if got := partSizes(t, data); len(got) < 6 || slices.Max(got) > snapshotPart {
		t.Fatalf("parts of %v entries; want at least six, none over %d", got, snapshotPart)
	}
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.Config(), h.f.Config()) {
		t.Fatal("restored configuration differs")
	}
	if got := len(g.Config().ApiKeys); got != n+3 {
		t.Fatalf("%d keys restored, want %d", got, n+3)
	}
	got, want := g.KeyLedgers("p1"), h.f.KeyLedgers("p1")
	if len(got) != len(want) || len(got) < snapshotPart+1 {
		t.Fatalf("%d ledgers restored, want %d", len(got), len(want))
	}
	for i, l := range got {
		if !proto.Equal(l, want[i]) {
			t.Fatalf("ledger %d differs", i)
		}
	}
	if again := persist(t, g); !sameSnapshot(t, again, data) {
		t.Fatal("the restored state snapshots differently")
	}
}
