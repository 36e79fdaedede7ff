package cluster

import (
	"bytes"
	"context"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

func setDataKey(d *pb.DataKey) *pb.Command {
	return &pb.Command{Body: &pb.Command_SetDataKey{SetDataKey: &pb.SetDataKey{DataKey: d}}}
}

func TestDataKeyFirstWinsAndOnlyRewrapsReplace(t *testing.T) {
	f := NewFSM()
	plain := sealing.NewKeyring()
	kek, _ := sealing.NewKEK(bytes.Repeat([]byte{3}, sealing.KeySize))
	wrapping := sealing.NewKeyring(kek)
	dk := sealing.NewDataKey()
	if r := f.ApplyCommand(1, setDataKey(plain.Wrap(dk))); r.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("first data key: %v", r)
	}
	if r := f.ApplyCommand(2, setDataKey(plain.Wrap(sealing.NewDataKey()))); r.Code != codeConflict {
		t.Fatalf("a second, different data key: %v", r)
	}
	if got, _ := plain.Unwrap(f.Config().DataKey); !bytes.Equal(got, dk) {
		t.Fatal("the second data key replaced the first")
	}
	if r := f.ApplyCommand(3, setDataKey(wrapping.Wrap(dk))); r.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("the same key wrapped: %v", r)
	}
	stored := f.Config().DataKey
	if stored.KekId != kek.ID() || bytes.Contains(stored.Wrapped, dk) {
		t.Fatalf("stored %+v is not wrapped under %s", stored, kek.ID())
	}
	if _, err := plain.Keys(stored); err == nil {
		t.Fatal("a node without the key-encryption key unwrapped the data key")
	}
	if got, err := wrapping.Unwrap(stored); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	for name, d := range map[string]*pb.DataKey{
		"missing":     nil,
		"short":       {Wrapped: dk[:8], Check: sealing.Check(dk)},
		"no check":    {Wrapped: dk},
		"bad kek id":  {Wrapped: kek.Wrap(dk), KekId: "xyz", Check: sealing.Check(dk)},
		"plain sized": {Wrapped: dk, KekId: kek.ID(), Check: sealing.Check(dk)},
	} {
		if r := f.ApplyCommand(4, setDataKey(d)); r.Code != codeBad {
			t.Errorf("%s: %v, want refused", name, r)
		}
	}
}

func TestNodeKeysAgreeAcrossNodes(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	ctx := context.Background()
	k1, err := tc.nodes["n2"].Keys(ctx) // a follower proposes it
	if err != nil {
		t.Fatal(err)
	}
	want, _ := k1.Lookup("value-value-value-value")
	for _, n := range tc.nodes {
		waitFor(t, 10*time.Second, func() bool { _, err := n.KeysIfSet(); return err == nil })
		k, err := n.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := k.Lookup("value-value-value-value"); got != want {
			t.Fatalf("%s derives other keys", n.ID())
		}
	}
}
