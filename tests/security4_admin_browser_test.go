package tests

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawAdmin sends one admin request with exactly the Host and headers given
// (hdr is pairs), as a browser page would.
func (g *gateway) rawAdmin(method, path, host, body string, hdr ...string) apiResp {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.AdminURL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return g.send(req)
}

// wantRefused checks an answer is the original's error shape with the
// given status and type.
func wantRefused(t *testing.T, what string, r apiResp, status int, errType string) {
	t.Helper()
	if r.Status != status || r.Header.Get("x-amzn-ErrorType") != errType || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %s %q, want %d %s: %s", what, r.Status, r.Header.Get("x-amzn-ErrorType"), r.Header.Get("Content-Type"), status, errType, r.Body)
	}
	if m := r.JSON(t); m["message"] == nil || len(m) != 1 {
		t.Fatalf("%s: body %s, want {\"message\":...}", what, r.Body)
	}
}

// TestSecurity4DNSRebindingHostRefused: a page whose name was rebound to
// the operator's loopback reaches the admin API, but with its own name in
// Host. It is refused in the original's error shape before anything runs;
// the real addresses, and names given with --admin-host, still work.
func TestSecurity4DNSRebindingHostRefused(t *testing.T) {
	g := startGateway(t, t.TempDir(), "--admin-host", "tollgate-admin.internal")
	value := strings.Repeat("s", 30)
	g.mustAdmin("POST", "/apikeys", map[string]any{"name": "secret", "value": value, "enabled": true}, 201)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(g.AdminURL, "http://"))

	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example", "127.0.0.1.nip.io:" + port, "localhost:1"} {
		r := g.rawAdmin("GET", "/apikeys?includeValues=true", host, "")
		wantRefused(t, "Host "+host, r, 403, "ForbiddenException")
		if strings.Contains(string(r.Body), value) {
			t.Fatalf("Host %s: the answer holds the key value: %s", host, r.Body)
		}
		// Writes do not run either, even well-formed ones.
		r = g.rawAdmin("POST", "/apikeys", host, `{"name":"evil","value":"attackerchosenvalue0001","enabled":true}`, "Content-Type", "application/json")
		wantRefused(t, "POST with Host "+host, r, 403, "ForbiddenException")
	}
	for _, host := range []string{"", "localhost:" + port, "[::1]:" + port, "tollgate-admin.internal", "tollgate-admin.internal:8443"} {
		r := g.rawAdmin("GET", "/apikeys?includeValues=true", host, "")
		if r.Status != 200 || !strings.Contains(string(r.Body), value) {
			t.Fatalf("Host %q: %d %s, want 200 with the key", host, r.Status, r.Body)
		}
	}
	keys := g.mustAdmin("GET", "/apikeys", nil, 200)["item"].([]any)
	if len(keys) != 1 {
		t.Fatalf("%d keys after refused requests, want 1: %v", len(keys), keys)
	}
}

// TestSecurity4CrossSitePostRefused: the requests a page on another site
// can make a browser send without a preflight (POST with text/plain,
// form-encoded or multipart bodies, or none) change nothing; the clients'
// own requests (application/json, text/csv import) work.
func TestSecurity4CrossSitePostRefused(t *testing.T) {
	g := startGateway(t, t.TempDir())
	chosen := "attackerchosenvalue0001"
	jsonBody := `{"name":"evil","value":"` + chosen + `","enabled":true}`
	csvBody := "name,key,enabled\nevil," + chosen + ",true\n"
	for _, c := range []struct{ path, body, ct string }{
		{"/apikeys", jsonBody, "text/plain"},
		{"/apikeys", jsonBody, "text/plain;charset=UTF-8"},
		{"/apikeys", jsonBody, "application/x-www-form-urlencoded"},
		{"/apikeys", jsonBody, "multipart/form-data; boundary=b"},
		{"/apikeys", jsonBody, ""},
		{"/apikeys", "", ""},
		{"/usageplans", `{"name":"evil"}`, "text/plain"},
		{"/apikeys?mode=import&format=csv", csvBody, "application/x-www-form-urlencoded"},
		{"/apikeys?mode=import&format=csv", csvBody, "text/plain"},
		{"/apikeys?mode=import&format=csv", csvBody, "multipart/form-data; boundary=b"},
		{"/apikeys?mode=import&format=csv", csvBody, ""},
	} {
		var hdr []string
		if c.ct != "" {
			hdr = []string{"Content-Type", c.ct}
		}
		r := g.rawAdmin("POST", c.path, "", c.body, hdr...)
		wantRefused(t, "POST "+c.path+" as "+c.ct, r, 415, "BadRequestException")
	}
	if keys := g.mustAdmin("GET", "/apikeys", nil, 200)["item"].([]any); len(keys) != 0 {
		t.Fatalf("refused POSTs created keys: %v", keys)
	}
	if plans := g.mustAdmin("GET", "/usageplans", nil, 200)["item"].([]any); len(plans) != 0 {
		t.Fatalf("refused POSTs created plans: %v", plans)
	}

	// What the SDKs, the CLI and the README's curl send still works.
	g.mustAdmin("POST", "/apikeys", map[string]any{"name": "ok", "value": strings.Repeat("a", 30)}, 201)
	if r := g.rawAdmin("POST", "/apikeys?mode=import&format=csv", "", "name,key\nimp,"+strings.Repeat("b", 30)+"\n", "Content-Type", "text/csv"); r.Status != 201 {
		t.Fatalf("text/csv import: %d %s", r.Status, r.Body)
	}
	if r := g.rawAdmin("POST", "/apikeys?mode=import&format=csv", "", "name,key\ncli,"+strings.Repeat("c", 30)+"\n", "X-Amz-Date", "20260315T120000Z"); r.Status != 201 {
		t.Fatalf("signed import without a type (the AWS CLI): %d %s", r.Status, r.Body)
	}
	if keys := g.mustAdmin("GET", "/apikeys", nil, 200)["item"].([]any); len(keys) != 3 {
		t.Fatalf("%d keys, want 3: %v", len(keys), keys)
	}
}
