package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestParseGossipKeys(t *testing.T) {
	k1, _ := NewGossipKey()
	k2, _ := NewGossipKey()
	keys, err := ParseGossipKeys([]byte("# rotation\n" + string(k1) + "\n" + string(k2)))
	if err != nil || len(keys) != 2 || len(keys[0]) != GossipKeySize {
		t.Fatalf("two keys: %d %v", len(keys), err)
	}
	for _, bad := range []string{"", "# only a comment\n", "not base64!\n", "c2hvcnQ=\n"} {
		if _, err := ParseGossipKeys([]byte(bad)); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestNodeID(t *testing.T) {
	ca, err := NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.IssueNode("n1", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := NodeID(c); err != nil || id != "n1" {
		t.Fatalf("node id %q %v", id, err)
	}
	if _, err := NodeID(ca.Cert); err == nil || !strings.Contains(err.Error(), "tollgate://node") {
		t.Fatalf("the CA named a node: %v", err)
	}
}
