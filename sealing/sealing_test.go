package sealing

import (
	"bytes"
	"errors"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
)

func TestLookupIsKeyedAndStable(t *testing.T) {
	a, err := Derive(bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Derive(bytes.Repeat([]byte{2}, KeySize))
	x, ok := a.Lookup("k1k1k1k1k1k1k1k1k1k1")
	y, _ := a.Lookup("k1k1k1k1k1k1k1k1k1k1")
	z, _ := b.Lookup("k1k1k1k1k1k1k1k1k1k1")
	if !ok || x != y {
		t.Fatalf("same key, same value: %x vs %x", x, y)
	}
	if x == z {
		t.Fatal("two data keys give the same lookup hash")
	}
	if _, ok := a.Lookup(string(make([]byte, maxLookupInput+1))); ok {
		t.Fatal("an input longer than any value was hashed")
	}
	if n := testing.AllocsPerRun(100, func() { a.Lookup("k1k1k1k1k1k1k1k1k1k1") }); n != 0 && !raceEnabled {
		t.Fatalf("Lookup allocates %v times", n)
	}
}

func TestSealOpensOnlyForItsPurposeAndKey(t *testing.T) {
	a, _ := Derive(bytes.Repeat([]byte{1}, KeySize))
	b, _ := Derive(bytes.Repeat([]byte{2}, KeySize))
	s := a.Seal("secret-value", "api-key/k1")
	if bytes.Contains(s, []byte("secret-value")) {
		t.Fatal("sealed bytes hold the value")
	}
	if v, err := a.Open(s, "api-key/k1"); err != nil || v != "secret-value" {
		t.Fatalf("Open = %q, %v", v, err)
	}
	if _, err := a.Open(s, "api-key/k2"); err != ErrOpen {
		t.Fatalf("other purpose: %v", err)
	}
	if _, err := b.Open(s, "api-key/k1"); err != ErrOpen {
		t.Fatalf("other key: %v", err)
	}
	if _, err := a.Open(s[:5], "api-key/k1"); err != ErrOpen {
		t.Fatalf("short: %v", err)
	}
	if len(s) != len("secret-value")+Overhead {
		t.Fatalf("sealed size %d, want value + %d", len(s), Overhead)
	}
}

func TestWrapUnwrap(t *testing.T) {
	kek, err := NewKEK(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKEK(bytes.Repeat([]byte{8}, KeySize))
	if kek.ID() == other.ID() || len(kek.ID()) != 16 {
		t.Fatalf("ids %q %q", kek.ID(), other.ID())
	}
	dk := NewDataKey()
	w := kek.Wrap(dk)
	if bytes.Contains(w, dk) {
		t.Fatal("wrapped bytes hold the key")
	}
	got, err := kek.Unwrap(w)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Unwrap: %v", err)
	}
	if _, err := other.Unwrap(w); err != ErrOpen {
		t.Fatalf("other kek: %v", err)
	}
	if !Equal(Check(dk), Check(got)) || Equal(Check(dk), Check(NewDataKey())) {
		t.Fatal("check values do not tell keys apart")
	}
	if _, err := NewKEK([]byte("short")); err == nil {
		t.Fatal("short kek accepted")
	}
	if _, err := Derive([]byte("short")); err == nil {
		t.Fatal("short data key accepted")
	}
}

func BenchmarkLookup(b *testing.B) {
	k, _ := Derive(NewDataKey())
	b.ReportAllocs()
	for b.Loop() {
		k.Lookup("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd")
	}
}

func TestAPIKeySealedForItsID(t *testing.T) {
	k, _ := Derive(NewDataKey())
	s := k.SealAPIKey("k1", "AbCdEfGhIjKlMnOpQrSt")
	if want, _ := k.Lookup("AbCdEfGhIjKlMnOpQrSt"); !bytes.Equal(s.ValueLookup, want[:]) || s.Id != "k1" {
		t.Fatalf("sealed key %+v", s)
	}
	v, err := k.OpenAPIKey(&pb.ApiKey{Id: "k1", ValueSealed: s.ValueSealed})
	if err != nil || v != "AbCdEfGhIjKlMnOpQrSt" {
		t.Fatalf("OpenAPIKey = %q, %v", v, err)
	}
	if _, err := k.OpenAPIKey(&pb.ApiKey{Id: "k2", ValueSealed: s.ValueSealed}); !errors.Is(err, ErrOpen) {
		t.Fatalf("another key's sealed value: %v", err)
	}
	if v, err := k.OpenAPIKey(&pb.ApiKey{Id: "k3", Value: "plain-plain-plain-plain"}); err != nil || v != "plain-plain-plain-plain" {
		t.Fatalf("plain value: %q, %v", v, err)
	}
	if _, err := k.OpenAPIKey(&pb.ApiKey{Id: "k4"}); !errors.Is(err, ErrNoValue) {
		t.Fatalf("no value: %v", err)
	}
}

func TestRewrapUnderTheFirstKEK(t *testing.T) {
	old, _ := NewKEK(bytes.Repeat([]byte{1}, KeySize))
	cur, _ := NewKEK(bytes.Repeat([]byte{2}, KeySize))
	dk := NewDataKey()
	plain := NewKeyring().Wrap(dk)
	underOld := NewKeyring(old).Wrap(dk)

	r := NewKeyring()
	if d, err := r.Rewrap(plain); d != nil || err != nil {
		t.Fatalf("no key-encryption key: %v, %v", d, err)
	}
	r.SetKEKs([]*KEK{cur, old})
	for name, stored := range map[string]*pb.DataKey{"unwrapped": plain, "under the old key": underOld} {
		d, err := r.Rewrap(stored)
		if err != nil || d.GetKekId() != cur.ID() {
			t.Fatalf("%s: %v, %v", name, d, err)
		}
		if got, err := NewKeyring(cur).Unwrap(d); err != nil || !bytes.Equal(got, dk) {
			t.Fatalf("%s: the rewrapped key does not unwrap: %v", name, err)
		}
		if again, err := r.Rewrap(d); again != nil || err != nil {
			t.Fatalf("%s: rewrapped twice: %v, %v", name, again, err)
		}
	}
	if _, err := NewKeyring(cur).Rewrap(underOld); err == nil {
		t.Fatal("rewrapped a data key under a key-encryption key the keyring lacks")
	}
}
