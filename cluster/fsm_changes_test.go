package cluster

import (
	"bytes"
	"slices"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
)

// TestFSMKeyChanges: each command that changes keys only names the keys
// it changed, and changes over several configurations add up; a command
// that changes anything else, or a configuration the FSM no longer
// remembers (older than its ring, or than a Restore), answers not ok (the
// reader rebuilds). The log holds no configuration: only indexes.
func TestFSMKeyChanges(t *testing.T) {
	keys := testKeys(t)
	h := newTestFSM(t, t0)
	h.setup(nil)
	step := func(cmd *pb.Command, want ...string) {
		t.Helper()
		before := h.f.Config()
		h.ok(cmd)
		got, ok := h.f.KeyChanges(before, h.f.Config())
		if !ok || !slices.Equal(got, want) {
			t.Fatalf("%T: changes %v, %v; want %v", cmd.Body, got, ok, want)
		}
	}
	start := h.f.Config()
	step(cmdKey("k4", "valueXofXkeyXfourX000000"), "k4")
	step(cmdAttach("p1", "k4"), "k4")
	step(cmdDetach("p1", "k1"), "k1")
	step(&pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: &pb.ApiKey{Id: "k2", Name: "renamed", Enabled: false}}}}, "k2")
	step(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
		sealedImport(keys, "k5", "sealedValueOfKeyFive0123", "p1"), sealedImport(keys, "k6", "sealedValueOfKeySix01234"),
	}}}}, "k5", "k6")
	step(cmdSeal(keys.SealAPIKey("k3", "valueXofXkeyXthreeX00000")), "k3")
	step(cmdNotices(notice(80))) // a record of quota notices changes no key
	step(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k4"}}}, "k4")

	all, ok := h.f.KeyChanges(start, h.f.Config())
	if !ok || len(all) != 8 {
		t.Fatalf("changes since the start: %v, %v; want the 8 above", all, ok)
	}
	if got, ok := h.f.KeyChanges(h.f.Config(), h.f.Config()); !ok || len(got) != 0 {
		t.Fatalf("no change: %v, %v", got, ok)
	}
	before := h.f.Config()
	h.ok(cmdPlan("p1", false, quota(5, "DAY", 0), "a1/prod"))
	if _, ok := h.f.KeyChanges(before, h.f.Config()); ok {
		t.Fatal("a plan change was told as keys only")
	}
	if _, ok := h.f.KeyChanges(start, h.f.Config()); ok {
		t.Fatal("changes across a plan change were told as keys only")
	}
	if _, ok := h.f.KeyChanges(h.f.Config(), before); ok {
		t.Fatal("changes told backwards")
	}

	before = h.f.Config()
	for i := range changeLogSize {
		h.ok(cmdAttach("p1", "k6"))
		h.ok(cmdDetach("p1", "k6"))
		if i == 0 {
			if got, ok := h.f.KeyChanges(before, h.f.Config()); !ok || len(got) != 2 {
				t.Fatalf("two changes: %v, %v", got, ok)
			}
		}
	}
	if _, ok := h.f.KeyChanges(before, h.f.Config()); ok {
		t.Fatal("changes older than the log remembers were told")
	}

	// Configurations are named by index: the one a Restore brings back is
	// the one of the same index; any other is no longer known.
	before = h.f.Config()
	data := persist(t, h.f)
	h.ok(cmdAttach("p1", "k6"))
	later := h.f.Config()
	if err := h.f.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.f.KeyChanges(before, h.f.Config()); !ok || len(got) != 0 {
		t.Fatalf("the configuration restored, of the same index: %v, %v", got, ok)
	}
	if _, ok := h.f.KeyChanges(later, h.f.Config()); ok {
		t.Fatal("changes across a Restore were told")
	}
	h.ok(cmdAttach("p1", "k6"))
	if got, ok := h.f.KeyChanges(before, h.f.Config()); !ok || !slices.Equal(got, []string{"k6"}) {
		t.Fatalf("changes since the configuration restored: %v, %v", got, ok)
	}
}
