package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newListeningEnv serves an env on a real loopback listener, so requests
// carry the listener's address as net/http gives it.
func newListeningEnv(t *testing.T, allowed ...string) (*env, *httptest.Server) {
	t.Helper()
	e := newEnv(t)
	if len(allowed) > 0 {
		srv, err := New(Config{Store: e.store, Now: e.clock, Logger: slog.New(slog.DiscardHandler), AllowedHosts: allowed})
		if err != nil {
			t.Fatal(err)
		}
		e.srv = srv
	}
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	return e, ts
}

// send sends one request to ts with the given Host (empty: the URL's) and
// headers (pairs).
func send(t *testing.T, ts *httptest.Server, method, path, host, body string, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, header: res.Header, body: b}
}

const chosenValue = "attackerchosenvalue0001"

func TestHostAllowlistDefault(t *testing.T) {
	e, ts := newListeningEnv(t)
	e.must("POST", "/apikeys", map[string]any{"name": "k", "value": strings.Repeat("v", 30)}, 201)
	u, _ := url.Parse(ts.URL)
	port := u.Port()
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{u.Host, true},                             // the listener's own address
		{"localhost:" + port, true},                // loopback names on its port
		{"LocalHost.:" + port, true},               // case and a trailing dot do not matter
		{"[::1]:" + port, true},                    // IPv6 loopback
		{"127.0.0.1:" + port, true},                // IPv4 loopback
		{"localhost", false},                       // port 80 is not the listener's
		{"localhost:1", false},                     // another port
		{"rebind.attacker.example:" + port, false}, // DNS rebinding
		{"rebind.attacker.example", false},
		{"127.0.0.1.nip.io:" + port, false},
		{"0.0.0.0:" + port, false},
		{"[::1", false},
		{"a:b:c", false},
	} {
		r := send(t, ts, "GET", "/apikeys?includeValues=true", c.host, "")
		if c.ok {
			if r.code != 200 || !strings.Contains(string(r.body), strings.Repeat("v", 30)) {
				t.Errorf("Host %q: %d %s, want 200 with the key", c.host, r.code, r.body)
			}
			continue
		}
		wantError(t, r, 403, "ForbiddenException", "Host *")
		if !strings.Contains(string(r.body), "is not an address of this admin API") {
			t.Errorf("Host %q: %s", c.host, r.body)
		}
		if strings.Contains(string(r.body), strings.Repeat("v", 30)) {
			t.Errorf("Host %q: the answer holds the key value", c.host)
		}
	}
	// Nothing runs for a refused Host: no key is created, not even with a
	// correct Content-Type, and unknown paths say nothing either.
	r := send(t, ts, "POST", "/apikeys", "rebind.attacker.example:"+port, `{"value":"`+chosenValue+`","enabled":true}`,
		"Content-Type", "application/json")
	wantError(t, r, 403, "ForbiddenException", "*")
	wantError(t, send(t, ts, "GET", "/no/such/route", "rebind.attacker.example:"+port, ""), 403, "ForbiddenException", "*")
	if n := len(e.store.Config().GetApiKeys()); n != 1 {
		t.Fatalf("%d keys after refused requests, want 1", n)
	}
	m := e.do("GET", "/metrics", nil)
	if !strings.Contains(string(m.body), `tollgate_admin_requests_total{code="403",route="refused"}`) {
		t.Errorf("refusals are not counted under route=refused:\n%s", m.body)
	}
}

func TestHostAllowlistConfigured(t *testing.T) {
	_, ts := newListeningEnv(t, "admin.example.com", "gw.example:8443", "10.1.2.3")
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"admin.example.com", true},                          // a name without a port: any port
		{"admin.example.com:9443", true},                     //
		{"ADMIN.example.com.:1", true},                       //
		{"gw.example:8443", true},                            // with a port: that port only
		{"gw.example:8444", false},                           //
		{"gw.example", false},                                //
		{"10.1.2.3:7", true},                                 // an address
		{"sub.admin.example.com", false},                     // no wildcard below a name
		{"evil.example", false},                              //
		{"localhost:" + strings.Split(ts.URL, ":")[2], true}, // the defaults stay
	} {
		r := send(t, ts, "GET", "/account", c.host, "")
		if got := r.code == 200; got != c.ok {
			t.Errorf("Host %q: %d %s", c.host, r.code, r.body)
		}
	}
	_, any := newListeningEnv(t, "*")
	if r := send(t, any, "GET", "/account", "whatever.example", ""); r.code != 200 {
		t.Errorf(`"*" refused a Host: %d %s`, r.code, r.body)
	}
}

func TestHostAllowlistValidate(t *testing.T) {
	for _, h := range []string{"", "a b", "http://x", "x:0", "x:99999", "x:", "::1", "[::1]:x", "-x.example", "x_y"} {
		if _, err := New(Config{Store: newEnv(t).store, AllowedHosts: []string{h}}); err == nil {
			t.Errorf("AllowedHosts %q accepted", h)
		}
	}
	for _, h := range []string{"*", "x", "admin.example.com", "admin.example.com:443", "10.0.0.1", "10.0.0.1:9090", "[::1]", "[fd00::1]:9090"} {
		if err := CheckAllowedHost(h); err != nil {
			t.Errorf("AllowedHosts %q refused: %v", h, err)
		}
	}
}

func TestContentTypeRequired(t *testing.T) {
	e := newEnv(t)
	csv := "name,key,enabled\nevil," + chosenValue + ",true\n"
	refused := []struct {
		name, method, path, body, ct string
	}{
		{"text/plain JSON", "POST", "/apikeys", `{"value":"` + chosenValue + `","enabled":true}`, "text/plain"},
		{"text/plain with charset", "POST", "/apikeys", `{"value":"` + chosenValue + `"}`, "text/plain;charset=UTF-8"},
		{"form-encoded JSON", "POST", "/apikeys", `{"value":"` + chosenValue + `"}`, "application/x-www-form-urlencoded"},
		{"multipart", "POST", "/apikeys", `{"value":"` + chosenValue + `"}`, "multipart/form-data; boundary=x"},
		{"no type", "POST", "/apikeys", `{"value":"` + chosenValue + `"}`, ""},
		{"no type, no body", "POST", "/apikeys", "", ""},
		{"malformed type", "POST", "/apikeys", `{"value":"` + chosenValue + `"}`, "application/json; ="},
		{"csv on a JSON route", "POST", "/apikeys", `{"value":"` + chosenValue + `"}`, "text/csv"},
		{"PATCH text/plain", "PATCH", "/account", `{"patchOperations":[{"op":"replace","path":"/throttle/rateLimit","value":"1"}]}`, "text/plain"},
		{"form-encoded import", "POST", "/apikeys?mode=import&format=csv", csv, "application/x-www-form-urlencoded"},
		{"text/plain import", "POST", "/apikeys?mode=import&format=csv", csv, "text/plain"},
		{"multipart import", "POST", "/apikeys?mode=import&format=csv", csv, "multipart/form-data; boundary=x"},
		{"import with no type", "POST", "/apikeys?mode=import&format=csv", csv, ""},
		{"JSON import", "POST", "/apikeys?mode=import&format=csv", csv, "application/json"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			want := "; send the JSON body with Content-Type: application/json"
			if strings.Contains(c.path, "mode=import") {
				want = "; an API key import must be sent as Content-Type: text/csv"
			}
			r := e.do(c.method, c.path, c.body, "Content-Type", c.ct)
			wantError(t, r, 415, "BadRequestException", "Unsupported media type: the request has *")
			if !strings.Contains(string(r.body), want) {
				t.Errorf("message %s, want it to end %q", r.body, want)
			}
		})
	}
	if n := len(e.store.Config().GetApiKeys()); n != 0 {
		t.Fatalf("%d keys after refused requests, want 0", n)
	}
	if got := e.must("GET", "/account", nil, 200)["throttleSettings"].(map[string]any)["rateLimit"]; got != 10000.0 {
		t.Fatalf("refused PATCH changed the account: rateLimit %v", got)
	}

	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/x-amz-json-1.1", "application/x-amz-json-1.0"} {
		e.must("POST", "/apikeys", nil, 201) // sanity: the helper's default
		r := e.do("POST", "/apikeys", `{"name":"t`+string(rune('a'+i))+`"}`, "Content-Type", ct)
		if r.code != 201 {
			t.Errorf("Content-Type %q: %d %s", ct, r.code, r.body)
		}
	}
	for i, c := range [][]string{
		{"Content-Type", "text/csv"},
		{"Content-Type", "text/csv; charset=utf-8"},
		{"Content-Type", "application/octet-stream"},           // the AWS SDK for Go v2
		{"Content-Type", "", "X-Amz-Date", "20260315T120000Z"}, // the AWS CLI: no type, signed
	} {
		body := "name,key\nimp" + string(rune('a'+i)) + "," + strings.Repeat(string(rune('a'+i)), 30) + "\n"
		if r := e.do("POST", "/apikeys?mode=import&format=csv", body, c...); r.code != 201 {
			t.Errorf("import with %q: %d %s", c, r.code, r.body)
		}
	}
	// GET and DELETE carry no body a page could choose: no type needed.
	if r := e.do("GET", "/apikeys", nil, "Content-Type", "text/plain"); r.code != 200 {
		t.Errorf("GET with text/plain: %d %s", r.code, r.body)
	}
	id := e.must("POST", "/apikeys", nil, 201)["id"].(string)
	if r := e.do("DELETE", "/apikeys/"+id, nil, "Content-Type", ""); r.code != 202 {
		t.Errorf("DELETE without a type: %d %s", r.code, r.body)
	}
	// An unknown route stays 404, a wrong method 405: the type is checked
	// only where a handler would run.
	wantError(t, e.do("POST", "/nope", "x", "Content-Type", "text/plain"), 404, "NotFoundException", "*")
	wantError(t, e.do("PUT", "/apikeys", "x", "Content-Type", "text/plain"), 405, "MethodNotAllowedException", "*")
}

// TestAWSCLICompatibility runs the real AWS CLI, when installed, against the
// API: its JSON requests and its key import (sent with no Content-Type)
// pass the guards.
func TestAWSCLICompatibility(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	e, ts := newListeningEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.csv")
	if err := os.WriteFile(file, []byte("name,key,enabled\ncli,"+strings.Repeat("c", 30)+",true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"apigateway", "--endpoint-url", ts.URL, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("create-api-key", "--name", "viacli", "--enabled")
	run("import-api-keys", "--body", "fileb://"+file, "--format", "csv", "--fail-on-warnings")
	if out := run("get-api-keys", "--include-values"); !strings.Contains(out, strings.Repeat("c", 30)) || !strings.Contains(out, "viacli") {
		t.Fatalf("get-api-keys: %s", out)
	}
	if n := len(e.store.Config().GetApiKeys()); n != 2 {
		t.Fatalf("%d keys, want 2", n)
	}
}
