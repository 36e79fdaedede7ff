package proxy

import (
	"testing"
)

// TestIdentityHeaders: a forwarded request carries the id of the key that
// let it in and this node's id, in place of any copy the client sent; a
// keyless stage forwards no key id, and a node without an id no node
// header.
func TestIdentityHeaders(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.NodeID = "tg2" })
	forged := []string{HeaderKeyID, "k4", HeaderNode, "tg9"}

	s := seenBy(t, h.do("GET", "/api1/prod/x", valOne, forged...))
	if got := s.Header[HeaderKeyID]; len(got) != 1 || got[0] != "k1" {
		t.Errorf("%s = %q, want [k1] (the key sent, not the client's copy)", HeaderKeyID, got)
	}
	if got := s.Header[HeaderNode]; len(got) != 1 || got[0] != "tg2" {
		t.Errorf("%s = %q, want [tg2] (the node, not the client's copy)", HeaderNode, got)
	}
	for k, v := range s.Header {
		for _, x := range v {
			if x == valOne {
				t.Errorf("upstream header %s carries the key value", k)
			}
		}
	}

	s = seenBy(t, h.do("GET", "/api1/open/x", "", forged...))
	if got, ok := s.Header[HeaderKeyID]; ok {
		t.Errorf("keyless stage: %s = %q, want none", HeaderKeyID, got)
	}
	if got := s.Header[HeaderNode]; len(got) != 1 || got[0] != "tg2" {
		t.Errorf("keyless stage: %s = %q, want [tg2]", HeaderNode, got)
	}

	h = newHarness(t, nil)
	s = seenBy(t, h.do("GET", "/api1/prod/x", valOne, forged...))
	if got, ok := s.Header[HeaderNode]; ok {
		t.Errorf("no NodeID: %s = %q, want none", HeaderNode, got)
	}
}
