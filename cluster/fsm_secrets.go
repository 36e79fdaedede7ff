package cluster

import (
	"encoding/hex"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// checkDataKey refuses a data key of the wrong shape: a plain key is
// KeySize bytes, a wrapped one KeySize + sealing.Overhead under a named
// key-encryption key.
func checkDataKey(d *pb.DataKey) *pb.Result {
	if d == nil {
		return fail(codeBad, "data key is missing")
	}
	if len(d.Check) != sealing.LookupSize {
		return fail(codeBad, "data key check value must have %d bytes", sealing.LookupSize)
	}
	want := sealing.KeySize
	if d.KekId != "" {
		if b, err := hex.DecodeString(d.KekId); err != nil || len(b) != 8 {
			return fail(codeBad, "key-encryption key id must be 16 hex digits")
		}
		want += sealing.Overhead
	}
	if len(d.Wrapped) != want {
		return fail(codeBad, "data key must have %d bytes as stored, got %d", want, len(d.Wrapped))
	}
	return nil
}

// applySetDataKey stores the cluster's data key. The first one wins; a
// later one replaces it only when it is the same key wrapped differently
// (same check value), so concurrent first writers agree and a rewrap can
// never change the key values are sealed under.
func applySetDataKey(c *pb.Config, m *pb.SetDataKey) *pb.Result {
	d := m.GetDataKey()
	if r := checkDataKey(d); r != nil {
		return r
	}
	if old := c.DataKey; old != nil && !sealing.Equal(old.Check, d.Check) {
		return fail(codeConflict, "the cluster already has a data key")
	}
	c.DataKey = d
	return &pb.Result{}
}
