package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/admin"
	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// testNow is the test clock's time: 2026-03-15, a Sunday.
var testNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// env is a console over an admin API on the real state machine (in
// memory), served on a loopback listener.
type env struct {
	t     *testing.T
	store *clustertest.MemStore[*cluster.FSM]
	api   *admin.Server
	con   *Console
	srv   *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvTLS(t, false)
}

func newEnvTLS(t *testing.T, tls bool) *env {
	t.Helper()
	e := &env{t: t, store: clustertest.NewMemStore(cluster.NewFSM())}
	now := func() time.Time { return testNow }
	e.store.SetClock(now)
	api, err := admin.New(admin.Config{Store: e.store, Registry: prometheus.NewRegistry(), Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	e.con, err = New(Config{API: api, Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if tls {
		e.srv = httptest.NewTLSServer(e.con.Handler())
	} else {
		e.srv = httptest.NewServer(e.con.Handler())
	}
	t.Cleanup(e.srv.Close)
	return e
}

// adminCall sends one request to the admin API directly (as the operator's
// scripts would), with a bearer token when tok is not "".
func (e *env) adminCall(method, path, tok, contentType, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// adminJSON sends a JSON request to the admin API and decodes its answer,
// failing unless the status is want.
func (e *env) adminJSON(method, path, tok string, body any, want int) map[string]any {
	e.t.Helper()
	b, _ := json.Marshal(body)
	code, out := e.adminCall(method, path, tok, "application/json", string(b))
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return m
}

// adminMessage is the admin API's error message in an answer.
func adminMessage(t *testing.T, body []byte) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Message == "" {
		t.Fatalf("not an error answer: %s", body)
	}
	return m.Message
}

// credential creates an admin credential of role and returns its token.
func (e *env) credential(role, tok string) string {
	e.t.Helper()
	m := e.adminJSON("POST", "/tollgate/credentials", tok, map[string]string{"name": role, "role": role}, 201)
	return m["token"].(string)
}

// report puts n requests of key on day into the plan's usage ledger.
func (e *env) report(planID, keyID string, day time.Time, n int64) {
	e.t.Helper()
	res, err := e.store.Apply(e.t.Context(), &pb.Command{Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{
		NodeId: "n1", Reports: []*pb.UsageReport{{PlanId: planID, KeyId: keyID, Day: limiter.DayOf(day.Unix()), Count: n}},
	}}})
	if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		e.t.Fatalf("ledger: %v %v", err, res)
	}
}

// browser is a cookie-keeping client of the console that does not follow
// redirects, so a test sees each answer.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := *e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, client: &c}
}

// page is one answer of the console.
type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

var errorLine = regexp.MustCompile(`(?s)<p class="error" role="alert" id="error">(.*?)</p>`)

// errorText is the message a page shows in its error box, or "".
func (p page) errorText() string {
	m := errorLine.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return htmlUnescape(m[1])
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`).Replace(s)
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// csrf is the session's CSRF token as the browser holds it ("" before the
// first page).
func (b *browser) csrf() string {
	u, _ := url.Parse(b.e.srv.URL + Prefix)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == csrfCookie {
			return c.Value
		}
	}
	return ""
}

// post sends a form as the console's pages do, with the session's CSRF
// token.
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	if b.csrf() == "" {
		b.get(Prefix + "login")
	}
	f := url.Values{"csrf": {b.csrf()}}
	for k, v := range form {
		f[k] = v
	}
	return b.postRaw(path, f, nil)
}

// postRaw sends a form as given, with extra headers (pairs).
func (b *browser) postRaw(path string, form url.Values, hdr []string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// login signs the browser in with tok.
func (b *browser) login(tok string) page {
	b.e.t.Helper()
	return b.post(Prefix+"login", url.Values{"token": {tok}})
}
