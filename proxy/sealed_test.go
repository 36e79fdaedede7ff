package proxy

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// sealKey replaces a key's plain value with its lookup hash and sealed
// form, as the cluster stores it.
func sealKey(k *tollgatepb.ApiKey, keys *sealing.Keys) {
	s := keys.SealAPIKey(k.Id, k.Value)
	k.Value, k.ValueLookup, k.ValueSealed = "", s.ValueLookup, s.ValueSealed
}

// TestSealedKeysFoundByLookup: a key stored sealed is found by the lookup
// hash of the caller's value under the cluster's keys, next to a key still
// stored plain; a node that cannot unwrap the data key answers 503 (not
// 403) for a key it cannot find, and finds it once the keys come, with no
// configuration change.
func TestSealedKeysFoundByLookup(t *testing.T) {
	keys, err := sealing.Derive(sealing.NewDataKey())
	if err != nil {
		t.Fatal(err)
	}
	var problem atomic.Pointer[error]
	keysFn := func() (*sealing.Keys, error) {
		if e := problem.Load(); e != nil {
			return nil, *e
		}
		return keys, nil
	}
	h := newHarness(t, func(c *tollgatepb.Config) { sealKey(c.ApiKeys["k1"], keys) }, func(c *Config) { c.Keys = keysFn })
	if s := seenBy(t, h.do("GET", "/api1/prod/pets", valOne)); s.Path != "/base/pets" {
		t.Fatalf("sealed key forwarded to %q", s.Path)
	}
	if s := seenBy(t, h.do("GET", "/api1/prod/pets", valFour)); s.Path != "/base/pets" {
		t.Fatalf("plain key forwarded to %q", s.Path)
	}
	expectAnswer(t, h.do("GET", "/api1/prod/pets", "no-such-key-0123456789"), 403, "ForbiddenException", "Forbidden")
	if strings.Contains(h.logs.String(), valOne) {
		t.Fatal("the log holds a key value")
	}

	// A configuration this node cannot unwrap the data key of.
	cannot := errors.New("the cluster's data key is wrapped under key-encryption key 0123456789abcdef, which this node's key-encryption key file does not hold")
	problem.Store(&cannot)
	h.update(func(c *tollgatepb.Config) { c.ApiKeys["k1"].Name = "renamed" })
	w := h.do("GET", "/api1/prod/pets", valOne)
	expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if !strings.Contains(h.logs.String(), "cannot unwrap the cluster's data key") {
		t.Fatal("the refusal's reason is not logged")
	}
	if s := seenBy(t, h.do("GET", "/api1/prod/pets", valFour)); s.Path != "/base/pets" {
		t.Fatalf("a plain key is still served: forwarded to %q", s.Path)
	}
	problem.Store(nil)
	if s := seenBy(t, h.do("GET", "/api1/prod/pets", valOne)); s.Path != "/base/pets" {
		t.Fatalf("once the keys come, the sealed key is forwarded to %q", s.Path)
	}

	// No data key yet: plain values only, and an unknown key is 403.
	noKey := error(sealing.ErrNoDataKey)
	problem.Store(&noKey)
	h.update(func(c *tollgatepb.Config) { c.ApiKeys["k1"].Name = "again" })
	expectAnswer(t, h.do("GET", "/api1/prod/pets", valOne), 403, "ForbiddenException", "Forbidden")
	if s := seenBy(t, h.do("GET", "/api1/prod/pets", valFour)); s.Path != "/base/pets" {
		t.Fatalf("plain key without a data key forwarded to %q", s.Path)
	}
}
