package cluster

import (
	"bytes"
	"strings"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// plainKey returns a key of c whose plain value is v, or nil.
func plainKey(c *pb.Config, v string) *pb.ApiKey {
	for _, k := range c.GetApiKeys() {
		if k.GetValue() == v {
			return k
		}
	}
	return nil
}

func testKeys(t testing.TB) *sealing.Keys {
	t.Helper()
	k, err := sealing.Derive(bytes.Repeat([]byte{9}, sealing.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cmdSealedKey creates a key as the admin API does: lookup hash and sealed
// value only.
func cmdSealedKey(keys *sealing.Keys, id, value string) *pb.Command {
	s := keys.SealAPIKey(id, value)
	return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{
		Key: &pb.ApiKey{Id: id, ValueLookup: s.ValueLookup, ValueSealed: s.ValueSealed, Name: "key " + id, Enabled: true}, Create: true,
	}}}
}

func cmdSeal(keys ...*pb.SealedKey) *pb.Command {
	return &pb.Command{Body: &pb.Command_SealApiKeys{SealApiKeys: &pb.SealApiKeys{Keys: keys}}}
}

func sealedImport(keys *sealing.Keys, id, value string, plans ...string) *pb.ImportedKey {
	s := keys.SealAPIKey(id, value)
	return &pb.ImportedKey{Key: &pb.ApiKey{Id: id, ValueLookup: s.ValueLookup, ValueSealed: s.ValueSealed, Name: "imported " + id, Enabled: true}, UsagePlanIds: plans}
}

func TestFSMSealedKeysUniqueByLookup(t *testing.T) {
	keys := testKeys(t)
	h := newTestFSM(t, t0)
	const v1, v2 = "sealedValue0123456789", "otherValue01234567890"
	h.ok(cmdSealedKey(keys, "k1", v1))
	k := h.f.Config().ApiKeys["k1"]
	if k.Value != "" || len(k.ValueLookup) != sealing.LookupSize {
		t.Fatalf("stored key %v", k)
	}
	if got, err := keys.OpenAPIKey(k); err != nil || got != v1 {
		t.Fatalf("open the stored value: %q, %v", got, err)
	}
	if r := h.apply(cmdSealedKey(keys, "k2", v1)); r.Code != codeConflict {
		t.Fatalf("a second key with the same value: %v", r)
	}
	h.ok(cmdSealedKey(keys, "k2", v2))

	// An update keeps the value whatever the command carries.
	h.ok(&pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: &pb.ApiKey{Id: "k1", Value: "changedValue0123456789", Name: "renamed"}}}})
	if k := h.f.Config().ApiKeys["k1"]; k.Value != "" || !bytes.Equal(k.ValueSealed, h.f.Config().ApiKeys["k1"].ValueSealed) || k.Name != "renamed" {
		t.Fatalf("updated key %v", k)
	}
	if got, _ := keys.OpenAPIKey(h.f.Config().ApiKeys["k1"]); got != v1 {
		t.Fatalf("the update changed the value to %q", got)
	}

	// A deleted key's value can be used again.
	h.ok(&pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: "k1"}}})
	h.ok(cmdSealedKey(keys, "k3", v1))

	// A snapshot round trip keeps the index: the value is still taken.
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(persist(t, h.f))}); err != nil {
		t.Fatal(err)
	}
	h.f = g
	if r := h.apply(cmdSealedKey(keys, "k4", v1)); r.Code != codeConflict {
		t.Fatalf("after a restore, a second key with the same value: %v", r)
	}
	if r := h.apply(cmdSealedKey(keys, "k4", v2)); r.Code != codeConflict {
		t.Fatalf("after a restore, a second key with k2's value: %v", r)
	}
}

func TestFSMRefusesMalformedSealedValues(t *testing.T) {
	keys := testKeys(t)
	good := keys.SealAPIKey("k1", "sealedValue0123456789")
	for name, k := range map[string]*pb.ApiKey{
		"both forms":      {Id: "k1", Value: "sealedValue0123456789", ValueLookup: good.ValueLookup, ValueSealed: good.ValueSealed},
		"short lookup":    {Id: "k1", ValueLookup: good.ValueLookup[:16], ValueSealed: good.ValueSealed},
		"no lookup":       {Id: "k1", ValueSealed: good.ValueSealed},
		"no sealed":       {Id: "k1", ValueLookup: good.ValueLookup},
		"sealed short":    {Id: "k1", ValueLookup: good.ValueLookup, ValueSealed: keys.Seal("short", "api-key/k1")},
		"sealed long":     {Id: "k1", ValueLookup: good.ValueLookup, ValueSealed: keys.Seal(strings.Repeat("a", 129), "api-key/k1")},
		"plain too short": {Id: "k1", Value: "abcde"},
	} {
		h := newTestFSM(t, t0)
		if r := h.apply(&pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: k, Create: true}}}); r.Code != codeBad {
			t.Errorf("create, %s: %v, want refused", name, r)
		}
		if r := h.apply(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{{Key: k, Line: 2}}}}}); r.Code != codeBad {
			t.Errorf("import, %s: %v, want refused", name, r)
		}
		if len(h.f.Config().ApiKeys) != 0 {
			t.Errorf("%s: a key was stored", name)
		}
	}
}

func TestFSMImportSealedOverwritesByLookup(t *testing.T) {
	keys := testKeys(t)
	h := newTestFSM(t, t0)
	h.ok(cmdCreateAPI("a1"))
	h.ok(cmdDeploy("a1", "d1", "prod"))
	h.ok(cmdPlan("p1", true, nil, "a1/prod"))
	const v1, v2 = "importedValue0123456789", "importedValue9876543210"
	res := h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
		sealedImport(keys, "k1", v1, "p1"), sealedImport(keys, "k2", v2),
	}}}})
	if strings.Join(res.Ids, ",") != "k1,k2" || len(res.Warnings) != 0 {
		t.Fatalf("import: %v", res)
	}
	// The same value again, under a fresh id: the key k1 is overwritten.
	res = h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
		sealedImport(keys, "k9", v1, "p1"),
	}}}})
	c := h.f.Config()
	if strings.Join(res.Ids, ",") != "k1" || c.ApiKeys["k9"] != nil || c.ApiKeys["k1"].Name != "imported k9" {
		t.Fatalf("import again: %v, keys %v", res, c.ApiKeys)
	}
	if got, err := keys.OpenAPIKey(c.ApiKeys["k1"]); err != nil || got != v1 {
		t.Fatalf("the overwritten key opens to %q, %v", got, err)
	}
	// And within one import, a later row finds an earlier one.
	res = h.ok(&pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: []*pb.ImportedKey{
		sealedImport(keys, "k5", "importedValueABCDEFGHIJ"), sealedImport(keys, "k6", "importedValueABCDEFGHIJ"),
	}}}})
	if strings.Join(res.Ids, ",") != "k5,k5" || h.f.Config().ApiKeys["k6"] != nil {
		t.Fatalf("one value twice in an import: %v", res)
	}
}

// TestFSMSealsPlainValues is an upgraded data dir: keys written with plain
// values (as before values were sealed) are sealed in place, once, and
// nothing else about them changes.
func TestFSMSealsPlainValues(t *testing.T) {
	keys := testKeys(t)
	h := newTestFSM(t, t0)
	h.ok(cmdCreateAPI("a1"))
	h.ok(cmdDeploy("a1", "d1", "prod"))
	h.ok(cmdPlan("p1", true, nil, "a1/prod"))
	const v1, v2 = "plainValue0123456789a", "plainValue0123456789b"
	h.ok(cmdKey("k1", v1))
	h.ok(cmdKey("k2", v2))
	h.ok(cmdAttach("p1", "k1"))
	if r := h.apply(cmdKey("k3", v1)); r.Code != codeConflict {
		t.Fatalf("a plain duplicate: %v", r)
	}
	before := h.f.Config().ApiKeys["k1"]

	// A malformed batch changes nothing.
	bad := keys.SealAPIKey("k1", v1)
	bad.ValueLookup = bad.ValueLookup[:5]
	if r := h.apply(cmdSeal(keys.SealAPIKey("k2", v2), bad)); r.Code != codeBad {
		t.Fatalf("malformed seal: %v", r)
	}
	wrongSize := keys.SealAPIKey("k1", v1+"xyz")
	if r := h.apply(cmdSeal(wrongSize)); r.Code != codeBad {
		t.Fatalf("a sealed value of another size: %v", r)
	}
	if h.f.Config().ApiKeys["k2"].Value != v2 {
		t.Fatal("a refused batch sealed a key")
	}

	res := h.ok(cmdSeal(keys.SealAPIKey("k1", v1), keys.SealAPIKey("gone", v1)))
	if strings.Join(res.Ids, ",") != "k1" {
		t.Fatalf("sealed %v, want k1", res.Ids)
	}
	after := h.f.Config().ApiKeys["k1"]
	if after.Value != "" || after.Revision != before.Revision || after.LastUpdatedDate != before.LastUpdatedDate || after.Name != before.Name {
		t.Fatalf("sealed key %v, was %v", after, before)
	}
	if got, err := keys.OpenAPIKey(after); err != nil || got != v1 {
		t.Fatalf("sealed key opens to %q, %v", got, err)
	}
	if _, in := h.f.Config().PlanKeys["p1"].Keys["k1"]; !in {
		t.Fatal("sealing took the key out of its plan")
	}
	// Again: nothing to do.
	if res := h.ok(cmdSeal(keys.SealAPIKey("k1", v1))); len(res.Ids) != 0 || !bytes.Equal(h.f.Config().ApiKeys["k1"].ValueSealed, after.ValueSealed) {
		t.Fatalf("sealed twice: %v", res)
	}
	// The sealed value is still taken, by a sealed create; the plain one is
	// free to no one: k2 keeps its plain value and its uniqueness.
	if r := h.apply(cmdSealedKey(keys, "k4", v1)); r.Code != codeConflict {
		t.Fatalf("a sealed create of a sealed key's value: %v", r)
	}
	if r := h.apply(cmdKey("k4", v2)); r.Code != codeConflict {
		t.Fatalf("a plain create of a plain key's value: %v", r)
	}
	// A key whose lookup another key holds keeps its plain value.
	h.ok(cmdSealedKey(keys, "k5", "plainValue0123456789c"))
	h.ok(cmdKey("k6", "plainValue0123456789c")) // a plain write cannot see k5's value
	res = h.ok(cmdSeal(keys.SealAPIKey("k6", "plainValue0123456789c"), keys.SealAPIKey("k2", v2)))
	if strings.Join(res.Ids, ",") != "k2" || len(res.Warnings) != 1 || h.f.Config().ApiKeys["k6"].Value == "" {
		t.Fatalf("sealing a value another key holds: %v", res)
	}
	if data := persist(t, h.f); bytes.Contains(data, []byte(v1)) || bytes.Contains(data, []byte(v2)) {
		t.Fatal("the snapshot holds a sealed key's value")
	}
}
