package tests

import (
	"testing"
)

// TestSecurity7DotTricksRefused: a segment that is, or decodes once or
// twice to, "." or ".." (with or without ";params"), and a double-encoded
// slash, are refused with 400 and never reach the upstream; look-alikes
// pass.
func TestSecurity7DotTricksRefused(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	p := setupProduct(t, g, up.URL, map[string]any{})
	addr := g.listening["data"]
	base := "/" + p.APIID + "/" + p.Stage

	refused := []string{
		"/a/..;/secret",
		"/..;/secret",
		"/a/..;jsessionid=1/secret",
		"/a/.;/secret",
		"/a/%2e%2e;x/secret",
		"/a/..%3b/secret",
		"/a/..%3Bx/secret",
		"/a/%252e%252e/secret",
		"/a/%252E%252E;x/secret",
		"/a/.%252e/secret",
		"/a/%252e/secret",
		"/a/%25%32%65%25%32%65/secret",
		"/a/%252e%252e%253b/secret",
		"/a/..%252f../secret",
		"/a/..%255c../secret",
		"/a/..%25%32%66../secret",
	}
	for _, path := range refused {
		before := up.count.Load()
		r := rawRequest(t, addr, "GET "+base+path+" HTTP/1.1\r\nHost: gw\r\nx-api-key: "+p.Key+"\r\n")
		if !isAnswer(r, 400, "BadRequestException") {
			t.Errorf("%s: %d %s, want 400 BadRequestException", path, r.Status, r.Body)
		}
		if up.count.Load() != before {
			t.Errorf("%s reached the upstream", path)
		}
	}
	allowed := map[string]string{ // sent → what the upstream sees (decoded once)
		"/a/..b/c":     "/a/..b/c",
		"/a/x;y/c":     "/a/x;y/c",
		"/a/%252ex/c":  "/a/%2ex/c",
		"/a/...;/c":    "/a/...;/c",
		"/a/100%25/c":  "/a/100%/c",
		"/a/;..;/c":    "/a/;..;/c",
		"/a/%2e%2ex/c": "/a/..x/c",
	}
	for path, want := range allowed {
		r := rawRequest(t, addr, "GET "+base+path+" HTTP/1.1\r\nHost: gw\r\nx-api-key: "+p.Key+"\r\n")
		if r.Status != 200 {
			t.Errorf("%s: %d %s, want 200", path, r.Status, r.Body)
			continue
		}
		if got := up.lastRequest().URL.Path; got != want {
			t.Errorf("%s: the upstream saw %q, want %q", path, got, want)
		}
	}
}
