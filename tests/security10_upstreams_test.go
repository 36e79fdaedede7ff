package tests

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSecurity10MetadataUpstreamRefused: stages pointing at a link-local
// address (cloud metadata) or at the node's own admin port (by address or
// by a name that resolves to it) answer 500 without reaching it, with a log
// line; a loopback upstream still works.
func TestSecurity10MetadataUpstreamRefused(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	p := setupProduct(t, g, up.URL, map[string]any{})
	_, adminPort, _ := net.SplitHostPort(g.listening["admin"])
	_, gossipPort, _ := net.SplitHostPort(g.listening["gossip"])
	stages := map[string]string{
		"meta":      "http://169.254.169.254/latest/meta-data/",
		"admin":     "http://127.0.0.1:" + adminPort + "/apikeys?includeValues=true",
		"adminname": "http://localhost:" + adminPort + "/apikeys?includeValues=true",
		"gossip":    "http://127.0.0.1:" + gossipPort + "/",
	}
	for s, u := range stages {
		addStage(t, g, p, s, map[string]string{"url": u})
	}
	if r := g.call("/"+p.APIID+"/"+p.Stage+"/ok", p.Key); r.Status != 200 {
		t.Fatalf("loopback upstream: %d %s", r.Status, r.Body)
	}
	for s, u := range stages {
		r := g.call("/"+p.APIID+"/"+s, p.Key)
		if r.Status != 500 || r.Header.Get("x-amzn-ErrorType") != "InternalServerErrorException" {
			t.Errorf("stage %s (%s): %d %s, want 500 InternalServerErrorException", s, u, r.Status, r.Body)
		}
		if bytes.Contains(r.Body, []byte(p.Key)) {
			t.Errorf("stage %s: the answer holds a key value", s)
		}
	}
	eventually(t, 5*time.Second, "a log line naming the refused upstream", func() bool {
		l := g.logs.String()
		return strings.Contains(l, "upstream address refused") && strings.Contains(l, "169.254.169.254")
	})
}
