package cluster

import (
	"bytes"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
	"github.com/tollgate/tollgate/sealing"
)

// API key values at rest.
//
// The admin API writes a key's value as its lookup hash and sealed form
// (package sealing); the state machine never sees the value, cannot
// compute either and checks only their shapes. Keys written before values
// were sealed carry the plain value until the leader seals them with
// SealApiKeys; their commands replay through the same code as then. A key
// carries one form, never both.
//
// Values are unique: a create or an import finds the key already holding
// a value through keyIndex, by lookup hash (sealed) or by value (plain),
// without a scan. The state machine cannot compare a sealed value with a
// plain one; the admin API does, before it writes.

// keyIndex finds the key that holds a value. Its entries are hints: each
// is checked against the configuration, so one left by a command that
// failed (its configuration thrown away) or by a deleted key finds
// nothing. Every key of the current configuration has its entry: an entry
// is only replaced when no key holds its value, and only removed by a
// command that cannot fail after it.
type keyIndex struct {
	of       *pb.Config // the configuration the index is up to date with
	byLookup map[[sealing.LookupSize]byte]string
	byValue  map[string]string // plain values
}

// sync rebuilds the index from c, a copy of cur, unless it is up to date
// with cur (it is not after a Restore, and at first).
func (x *keyIndex) sync(cur, c *pb.Config) {
	if x.of == cur && x.byLookup != nil {
		return
	}
	x.of = cur
	x.byLookup = make(map[[sealing.LookupSize]byte]string, len(c.ApiKeys))
	x.byValue = map[string]string{}
	// In id order: should two keys hold one value, the smaller id is found.
	for _, id := range slices.Sorted(maps.Keys(c.ApiKeys)) {
		if x.holder(c, c.ApiKeys[id]) == nil {
			x.add(c.ApiKeys[id])
		}
	}
}

// holder returns the key of c that holds k's value, or nil.
func (x *keyIndex) holder(c *pb.Config, k *pb.ApiKey) *pb.ApiKey {
	if k.Value != "" {
		if h := c.ApiKeys[x.byValue[k.Value]]; h != nil && h.Value == k.Value {
			return h
		}
		return nil
	}
	if len(k.ValueLookup) != sealing.LookupSize {
		return nil
	}
	if h := c.ApiKeys[x.byLookup[[sealing.LookupSize]byte(k.ValueLookup)]]; h != nil && bytes.Equal(h.ValueLookup, k.ValueLookup) {
		return h
	}
	return nil
}

// add indexes k, which holds its value alone.
func (x *keyIndex) add(k *pb.ApiKey) {
	switch {
	case k.Value != "":
		x.byValue[k.Value] = k.Id
	case len(k.ValueLookup) == sealing.LookupSize:
		x.byLookup[[sealing.LookupSize]byte(k.ValueLookup)] = k.Id
	}
}

// remove drops k's entry (k is deleted, or its plain value sealed).
func (x *keyIndex) remove(k *pb.ApiKey) {
	switch {
	case k.Value != "":
		if x.byValue[k.Value] == k.Id {
			delete(x.byValue, k.Value)
		}
	case len(k.ValueLookup) == sealing.LookupSize:
		if l := [sealing.LookupSize]byte(k.ValueLookup); x.byLookup[l] == k.Id {
			delete(x.byLookup, l)
		}
	}
}

// hasValue tells whether a key carries a value, plain or sealed.
func hasValue(k *pb.ApiKey) bool {
	return k.Value != "" || len(k.ValueLookup) > 0 || len(k.ValueSealed) > 0
}

// checkKeyValue checks the value a key is created with: plain as the admin
// API checks it, or sealed, of the shape a value of allowed length seals to.
func checkKeyValue(k *pb.ApiKey) *pb.Result {
	sealed := len(k.ValueLookup) > 0 || len(k.ValueSealed) > 0
	switch {
	case sealed && k.Value != "":
		return fail(codeBad, "An API Key carries its value or its sealed form, not both")
	case sealed:
		return checkSealedValue(k.ValueLookup, k.ValueSealed)
	default:
		return refused(rules.KeyValue(k.Value))
	}
}

// checkSealedValue checks a value's lookup hash and sealed form: a hash of
// LookupSize bytes, and a sealed value of rules.MinKeyValueLen to
// rules.MaxKeyValueLen characters.
func checkSealedValue(lookup, sealed []byte) *pb.Result {
	if len(lookup) != sealing.LookupSize {
		return fail(codeBad, "An API Key value's lookup hash must have %d bytes, got %d", sealing.LookupSize, len(lookup))
	}
	if n := len(sealed) - sealing.Overhead; n < rules.MinKeyValueLen || n > rules.MaxKeyValueLen {
		return fail(codeBad, "A sealed API Key value must hold %d to %d characters (%d to %d bytes sealed), got %d bytes",
			rules.MinKeyValueLen, rules.MaxKeyValueLen, rules.MinKeyValueLen+sealing.Overhead, rules.MaxKeyValueLen+sealing.Overhead, len(sealed))
	}
	return nil
}

// applySealApiKeys replaces the plain values of keys with their sealed
// forms. A key deleted or sealed already is passed over, so a batch
// applied twice changes nothing more; a key whose lookup hash another key
// holds keeps its plain value, with a warning. The key's revision and
// dates stay: its value did not change.
func (f *FSM) applySealApiKeys(c *pb.Config, m *pb.SealApiKeys) *pb.Result {
	if len(m.Keys) > rules.MaxImportKeys {
		return fail(codeBad, "Too many API keys to seal in one command: %d, at most %d are allowed", len(m.Keys), rules.MaxImportKeys)
	}
	// Every entry is checked before any is applied: the index is changed
	// in place, and a refused command must leave it as it was.
	for _, s := range m.Keys {
		if r := checkSealedValue(s.ValueLookup, s.ValueSealed); r != nil {
			return fail(codeBad, "API Key %s: %s", rules.Truncate(s.Id), r.Message)
		}
		if k := c.ApiKeys[s.Id]; k != nil && k.Value != "" && len(s.ValueSealed) != len(k.Value)+sealing.Overhead {
			return fail(codeBad, "API Key %s: the sealed value is not the size of the key's value", s.Id)
		}
	}
	res := &pb.Result{}
	for _, s := range m.Keys {
		k := c.ApiKeys[s.Id]
		if k == nil || k.Value == "" {
			continue
		}
		upd := proto.Clone(k).(*pb.ApiKey)
		upd.Value, upd.ValueLookup, upd.ValueSealed = "", s.ValueLookup, s.ValueSealed
		if h := f.keys.holder(c, upd); h != nil {
			res.Warnings = append(res.Warnings, "API Key "+s.Id+": API Key "+h.Id+" holds the same value; left unsealed")
			continue
		}
		f.keys.remove(k)
		c.ApiKeys[k.Id] = upd
		f.keys.add(upd)
		res.Ids = append(res.Ids, k.Id)
	}
	return res
}
