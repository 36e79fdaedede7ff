package console

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

// TestConsolePagesRender: with no admin credential yet, a browser on the
// node's host sees every page, each with the headers that keep it from
// being framed or running foreign scripts.
func TestConsolePagesRender(t *testing.T) {
	e := newEnv(t)
	api := e.adminJSON("POST", "/restapis", "", map[string]string{"name": "pets"}, 201)["id"].(string)
	e.adminJSON("POST", "/restapis/"+api+"/deployments", "", map[string]any{"stageName": "prod", "variables": map[string]string{"url": "http://127.0.0.1:3000"}}, 201)
	plan := e.adminJSON("POST", "/usageplans", "", map[string]any{"name": "gold", "throttle": map[string]any{"rateLimit": 10, "burstLimit": 20},
		"quota": map[string]any{"limit": 1000, "period": "DAY"}, "apiStages": []map[string]string{{"apiId": api, "stage": "prod"}}}, 201)["id"].(string)
	b := e.browser()
	for _, tc := range []struct{ path, want string }{
		{Prefix, `id="health" class="status-ok">ok`},
		{Prefix + "apis", `<td><code>/` + api + `/prod/…</code></td><td>http://127.0.0.1:3000</td>`},
		{Prefix + "plans", `<a href="/console/plans/` + plan + `">gold</a>`},
		{Prefix + "plans", `10/s, burst 20`},
		{Prefix + "plans", `1000 a DAY`},
		{Prefix + "plans/" + plan, `<code id="plan-id">` + plan + `</code>`},
		{Prefix + "keys", `id="create-key"`},
		{Prefix + "usage", `<option value="` + plan + `" selected>gold</option>`},
		{Prefix + "login", `name="token"`},
	} {
		p := b.get(tc.path)
		if p.status != 200 || !strings.Contains(p.body, tc.want) {
			t.Fatalf("GET %s: %d, want 200 with %q:\n%s", tc.path, p.status, tc.want, p.body)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s: headers %v", tc.path, p.header)
		}
	}
	for _, f := range []string{"console.js", "console.css"} {
		if p := b.get(Prefix + "static/" + f); p.status != 200 || len(p.body) < 100 {
			t.Fatalf("static %s: %d %d bytes", f, p.status, len(p.body))
		}
	}
	if p := b.get("/console"); p.status != http.StatusMovedPermanently || p.location() != Prefix {
		t.Fatalf("/console: %d %q", p.status, p.location())
	}
	// Every other path is the admin API's, as without the console.
	if p := b.get("/usageplans"); p.status != 200 || !strings.Contains(p.body, `"name":"gold"`) {
		t.Fatalf("/usageplans: %d %s", p.status, p.body)
	}
	if p := b.get("/console/nothing"); p.status != 404 {
		t.Fatalf("/console/nothing: %d", p.status)
	}
}

// TestConsoleLogin: once a credential exists, the pages need one: the
// login form takes a bearer token, checked as the admin API checks the
// header, and keeps it in an HttpOnly, SameSite=Strict cookie.
func TestConsoleLogin(t *testing.T) {
	e := newEnv(t)
	admin := e.credential("admin", "")
	b := e.browser()
	for _, path := range []string{Prefix, Prefix + "apis", Prefix + "plans", Prefix + "keys", Prefix + "usage", Prefix + "plans/x"} {
		if p := b.get(path); p.status != http.StatusSeeOther || p.location() != Prefix+"login" {
			t.Fatalf("GET %s without a token: %d %q, want 303 to the login form", path, p.status, p.location())
		}
	}
	// A reveal without a token answers the admin API's refusal.
	if p := b.get(Prefix + "keys/k/value"); p.status != 403 || !strings.Contains(p.body, "Missing Authentication Token") {
		t.Fatalf("value without a token: %d %s", p.status, p.body)
	}

	id, _, _ := strings.Cut(admin, ".")
	_, direct := e.adminCall("GET", "/cluster", id+".wrongsecret", "", "")
	p := b.login(id + ".wrongsecret")
	if p.status != 403 || p.errorText() != adminMessage(t, direct) {
		t.Fatalf("login with a wrong secret: %d %q, want 403 %q", p.status, p.errorText(), adminMessage(t, direct))
	}
	if strings.Contains(p.header.Get("Set-Cookie"), tokenCookie) {
		t.Fatalf("a refused login set the token cookie: %v", p.header["Set-Cookie"])
	}

	before := b.csrf()
	p = b.login(admin)
	if p.status != http.StatusSeeOther || p.location() != Prefix {
		t.Fatalf("login: %d %q %s", p.status, p.location(), p.errorText())
	}
	var tokenSet string
	for _, c := range p.header["Set-Cookie"] {
		if strings.HasPrefix(c, tokenCookie+"=") {
			tokenSet = c
		}
	}
	for _, want := range []string{"Path=/console/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(tokenSet, want) {
			t.Fatalf("token cookie %q lacks %s", tokenSet, want)
		}
	}
	if strings.Contains(tokenSet, "Secure") {
		t.Fatalf("token cookie over plain HTTP is Secure (the browser would drop it): %q", tokenSet)
	}
	if b.csrf() == before || b.csrf() == "" {
		t.Fatal("login kept the session's CSRF token")
	}
	if p := b.get(Prefix + "plans"); p.status != 200 {
		t.Fatalf("plans after login: %d", p.status)
	}
	// Signing out forgets the token.
	if p := b.post(Prefix+"logout", nil); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.status)
	}
	if p := b.get(Prefix + "plans"); p.status != http.StatusSeeOther {
		t.Fatalf("plans after logout: %d", p.status)
	}
	// A deleted credential's cookie no longer opens the pages.
	other := e.credential("admin", admin)
	b.login(other)
	e.adminJSON("DELETE", "/tollgate/credentials/"+strings.SplitN(other, ".", 2)[0], admin, nil, 202)
	if p := b.get(Prefix + "keys"); p.status != http.StatusSeeOther || p.location() != Prefix+"login" {
		t.Fatalf("keys with a deleted credential: %d %q", p.status, p.location())
	}
}

// TestConsoleCookieSecureOverTLS: over TLS the token cookie is Secure.
func TestConsoleCookieSecureOverTLS(t *testing.T) {
	e := newEnvTLS(t, true)
	admin := e.credential("admin", "")
	p := e.browser().login(admin)
	if p.status != http.StatusSeeOther || !strings.Contains(strings.Join(p.header["Set-Cookie"], "\n"), "Secure") {
		t.Fatalf("login over TLS: %d %v", p.status, p.header["Set-Cookie"])
	}
}

// TestConsoleReadOnlyRole: a read-only token reads every page, and a form
// it sends shows the admin API's refusal and changes nothing.
func TestConsoleReadOnlyRole(t *testing.T) {
	e := newEnv(t)
	admin := e.credential("admin", "")
	ro := e.credential("read-only", admin)
	b := e.browser()
	b.login(ro)
	if p := b.get(Prefix + "keys"); p.status != 200 {
		t.Fatalf("keys as read-only: %d", p.status)
	}
	before := e.store.Config()
	p := b.post(Prefix+"plans", url.Values{"name": {"gold"}})
	if p.status != 403 || !strings.Contains(p.errorText(), "is not authorized to perform: POST") {
		t.Fatalf("create plan as read-only: %d %q", p.status, p.errorText())
	}
	if e.store.Config() != before {
		t.Fatal("a refused form changed the configuration")
	}
}

// TestConsoleCSRF: a form post without the session's token, with another
// one, or from another site is refused and changes nothing.
func TestConsoleCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get(Prefix + "plans")
	token := b.csrf()
	if len(token) != 43 {
		t.Fatalf("CSRF token %q", token)
	}
	before := e.store.Config()
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", url.Values{"name": {"gold"}}, nil},
		{"another token", url.Values{"name": {"gold"}, "csrf": {strings.Repeat("A", 43)}}, nil},
		{"another site's Origin", url.Values{"name": {"gold"}, "csrf": {token}}, []string{"Origin", "https://attacker.example"}},
		{"cross-site fetch", url.Values{"name": {"gold"}, "csrf": {token}}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		for _, path := range []string{Prefix + "plans", Prefix + "keys", Prefix + "usage/extend", Prefix + "login", Prefix + "keys/k/enabled"} {
			p := b.postRaw(path, tc.form, tc.hdr)
			if p.status != 403 || !strings.Contains(p.errorText(), "The form") {
				t.Fatalf("%s, POST %s: %d %q", tc.name, path, p.status, p.errorText())
			}
		}
	}
	if e.store.Config() != before {
		t.Fatal("a refused form changed the configuration")
	}
	// A cookie-less post (a cross-site form: SameSite=Strict withholds
	// the cookie) is refused too.
	fresh := e.browser()
	if p := fresh.postRaw(Prefix+"plans", url.Values{"name": {"gold"}, "csrf": {token}}, nil); p.status != 403 {
		t.Fatalf("post without the CSRF cookie: %d", p.status)
	}
	// The same form with the session's token from this site goes through.
	p := b.postRaw(Prefix+"plans", url.Values{"name": {"gold"}, "csrf": {token}}, []string{"Origin", e.srv.URL})
	if p.status != http.StatusSeeOther || len(e.store.Config().GetUsagePlans()) != 1 {
		t.Fatalf("post with the token: %d %q", p.status, p.errorText())
	}
}

// TestConsoleHostGuard: a page asked for under a name that is not the
// admin API's (DNS rebinding) shows the admin API's refusal, and no data.
func TestConsoleHostGuard(t *testing.T) {
	e := newEnv(t)
	e.adminJSON("POST", "/usageplans", "", map[string]any{"name": "secret-plan"}, 201)
	b := e.browser()
	for _, path := range []string{Prefix, Prefix + "plans", Prefix + "keys", Prefix + "usage", Prefix + "apis"} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Host = "rebind.attacker.example"
		p := b.do(req)
		if p.status != 403 || !strings.Contains(p.errorText(), "is not an address of this admin API") || strings.Contains(p.body, "secret-plan") {
			t.Fatalf("GET %s under another Host: %d %q", path, p.status, p.errorText())
		}
	}
}

// TestConsoleRemoteWithoutCredentials: while the cluster has no admin
// credential, a browser on another host is refused as by the admin API.
func TestConsoleRemoteWithoutCredentials(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{Prefix, Prefix + "plans", Prefix + "keys"} {
		req := httptest.NewRequest("GET", path, nil)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9090}))
		req.Host = "10.0.0.1:9090"
		req.RemoteAddr = "10.0.0.5:40000"
		w := httptest.NewRecorder()
		e.con.Handler().ServeHTTP(w, req)
		p := page{status: w.Code, header: w.Header(), body: w.Body.String()}
		if p.status != 403 || !strings.Contains(p.errorText(), "answers only callers on its own host") {
			t.Fatalf("GET %s from another host: %d %q", path, p.status, p.errorText())
		}
	}
}

// TestConsoleFormsShowAdminErrors: every form, given bad input, shows the
// admin API's own message for it (the same as the API answers a direct
// request), keeps what was typed, and changes nothing.
func TestConsoleFormsShowAdminErrors(t *testing.T) {
	e := newEnv(t)
	plan := e.adminJSON("POST", "/usageplans", "", map[string]any{"name": "gold", "quota": map[string]any{"limit": 100, "period": "DAY"}}, 201)["id"].(string)
	key := e.adminJSON("POST", "/apikeys", "", map[string]any{"name": "acme", "enabled": true}, 201)["id"].(string)
	e.adminJSON("POST", "/usageplans/"+plan+"/keys", "", map[string]any{"keyId": key, "keyType": "API_KEY"}, 201)
	b := e.browser()
	for _, tc := range []struct {
		name        string
		path        string
		form        url.Values
		method, api string // the same request to the admin API
		ct, body    string
		echo        string // a typed value the page shows again
	}{
		{"plan rate not a number", Prefix + "plans", url.Values{"name": {"silver"}, "rateLimit": {"fast"}},
			"POST", "/usageplans", "application/json", `{"name":"silver","throttle":{"rateLimit":"fast"},"apiStages":[]}`, `value="fast"`},
		{"plan quota period", Prefix + "plans", url.Values{"name": {"silver"}, "quotaLimit": {"5"}, "quotaPeriod": {"YEAR"}},
			"POST", "/usageplans", "application/json", `{"name":"silver","quota":{"limit":5,"period":"YEAR"},"apiStages":[]}`, `value="silver"`},
		{"plan unknown stage", Prefix + "plans", url.Values{"name": {"silver"}, "stage": {"nope prod"}},
			"POST", "/usageplans", "application/json", `{"name":"silver","apiStages":[{"apiId":"nope","stage":"prod"}]}`, `value="silver"`},
		{"key value too short", Prefix + "keys", url.Values{"name": {"short"}, "value": {"abc"}, "enabled": {"true"}},
			"POST", "/apikeys", "application/json", `{"name":"short","value":"abc","enabled":true}`, `value="abc"`},
		{"key import without a header", Prefix + "keys/import", url.Values{"csv": {"just,text\n"}},
			"POST", "/apikeys?mode=import&format=csv", "text/csv", "just,text\n", `just,text`},
		{"key to plan unknown", Prefix + "plans/" + plan + "/keys", url.Values{"keyId": {"nokey"}},
			"POST", "/usageplans/" + plan + "/keys", "application/json", `{"keyId":"nokey","keyType":"API_KEY"}`, `value="nokey"`},
		{"key already in plan", Prefix + "plans/" + plan + "/keys", url.Values{"keyId": {key}},
			"POST", "/usageplans/" + plan + "/keys", "application/json", `{"keyId":"` + key + `","keyType":"API_KEY"}`, `value="` + key + `"`},
		{"extension negative", Prefix + "usage/extend", url.Values{"plan": {plan}, "extendKey": {key}, "remaining": {"-5"}},
			"PATCH", "/usageplans/" + plan + "/keys/" + key + "/usage", "application/json", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"-5"}]}`, ""},
		{"extension not a number", Prefix + "usage/extend", url.Values{"plan": {plan}, "extendKey": {key}, "remaining": {"lots"}},
			"PATCH", "/usageplans/" + plan + "/keys/" + key + "/usage", "application/json", `{"patchOperations":[{"op":"replace","path":"/remaining","value":"lots"}]}`, ""},
		{"enable unknown key", Prefix + "keys/nokey/enabled", url.Values{"enabled": {"true"}},
			"PATCH", "/apikeys/nokey", "application/json", `{"patchOperations":[{"op":"replace","path":"/enabled","value":"true"}]}`, ""},
		{"remove a key not in the plan", Prefix + "plans/" + plan + "/keys/nokey/remove", url.Values{},
			"DELETE", "/usageplans/" + plan + "/keys/nokey", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.store.Config()
			wantCode, direct := e.adminCall(tc.method, tc.api, "", tc.ct, tc.body)
			if wantCode < 400 {
				t.Fatalf("the admin API accepted the direct request: %d %s", wantCode, direct)
			}
			// A new plan's id, in a message, differs between the two.
			ids := regexp.MustCompile(`usageplan [a-z0-9]+`)
			want := ids.ReplaceAllString(adminMessage(t, direct), "usageplan ID")
			p := b.post(tc.path, tc.form)
			if p.status != wantCode || ids.ReplaceAllString(p.errorText(), "usageplan ID") != want {
				t.Fatalf("console: %d %q\nwant %d %q", p.status, p.errorText(), wantCode, want)
			}
			if tc.echo != "" && !strings.Contains(p.body, tc.echo) {
				t.Fatalf("the page does not show the typed %s again", tc.echo)
			}
			if e.store.Config() != before {
				t.Fatal("a refused form changed the configuration")
			}
		})
	}
}

// TestConsolePlansAndKeys: a plan, a key and the key in the plan, made
// through the forms; the key searched by name prefix, disabled and enabled,
// its value revealed; a CSV import shows its warnings line by line.
func TestConsolePlansAndKeys(t *testing.T) {
	e := newEnv(t)
	api := e.adminJSON("POST", "/restapis", "", map[string]string{"name": "pets"}, 201)["id"].(string)
	e.adminJSON("POST", "/restapis/"+api+"/deployments", "", map[string]any{"stageName": "prod", "variables": map[string]string{"url": "http://127.0.0.1:3000"}}, 201)
	b := e.browser()
	if p := b.get(Prefix + "plans"); !strings.Contains(p.body, `value="`+api+` prod"`) {
		t.Fatalf("the plan form offers no stage %s/prod:\n%s", api, p.body)
	}
	p := b.post(Prefix+"plans", url.Values{"name": {"gold"}, "rateLimit": {"10"}, "burstLimit": {"20"},
		"quotaLimit": {"1000"}, "quotaPeriod": {"DAY"}, "stage": {api + " prod"}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), Prefix+"plans/") {
		t.Fatalf("create plan: %d %q %q", p.status, p.location(), p.errorText())
	}
	planID := strings.TrimPrefix(p.location(), Prefix+"plans/")
	got := e.store.Config().GetUsagePlans()[planID]
	if got.GetName() != "gold" || got.GetThrottle().GetRateLimit() != 10 || got.GetThrottle().GetBurstLimit() != 20 ||
		got.GetQuota().GetLimit() != 1000 || got.GetQuota().GetPeriod() != "DAY" || len(got.GetApiStages()) != 1 || got.GetApiStages()[0].GetStage() != "prod" {
		t.Fatalf("stored plan: %v", got)
	}

	value := strings.Repeat("v", 30)
	if p := b.post(Prefix+"keys", url.Values{"name": {"acme-1"}, "value": {value}, "enabled": {"true"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create key: %d %q", p.status, p.errorText())
	}
	b.post(Prefix+"keys", url.Values{"name": {"beta"}, "enabled": {"true"}})
	var keyID string
	for id, k := range e.store.Config().GetApiKeys() {
		if k.GetName() == "acme-1" {
			keyID = id
		}
	}
	if keyID == "" || !e.store.Config().GetApiKeys()[keyID].GetEnabled() {
		t.Fatal("the key was not stored enabled")
	}
	// Search by name prefix.
	p = b.get(Prefix + "keys?name=acme")
	if !strings.Contains(p.body, `data-name="acme-1"`) || strings.Contains(p.body, `data-name="beta"`) {
		t.Fatalf("search acme:\n%s", p.body)
	}
	// Reveal.
	if p := b.get(Prefix + "keys/" + keyID + "/value"); p.status != 200 || strings.TrimSpace(p.body) != `{"value":"`+value+`"}` {
		t.Fatalf("reveal: %d %s", p.status, p.body)
	}
	if p := b.get(Prefix + "keys/nokey/value"); p.status != 404 || !strings.Contains(p.body, `"message"`) {
		t.Fatalf("reveal an unknown key: %d %s", p.status, p.body)
	}
	// Disable, then enable.
	for _, enabled := range []bool{false, true} {
		p := b.post(Prefix+"keys/"+keyID+"/enabled", url.Values{"enabled": {fmt.Sprint(enabled)}, "back": {"acme"}})
		if p.status != http.StatusSeeOther || p.location() != Prefix+"keys?name=acme" {
			t.Fatalf("enabled=%v: %d %q %q", enabled, p.status, p.location(), p.errorText())
		}
		if e.store.Config().GetApiKeys()[keyID].GetEnabled() != enabled {
			t.Fatalf("enabled=%v not stored", enabled)
		}
	}
	// Into the plan, shown on its page, and out again.
	if p := b.post(Prefix+"plans/"+planID+"/keys", url.Values{"keyId": {keyID}}); p.status != http.StatusSeeOther {
		t.Fatalf("add key to plan: %d %q", p.status, p.errorText())
	}
	if p := b.get(Prefix + "plans/" + planID); !strings.Contains(p.body, `<tr data-key="`+keyID+`"><td>acme-1</td>`) {
		t.Fatalf("plan page lacks the key:\n%s", p.body)
	}
	if p := b.post(Prefix+"plans/"+planID+"/keys/"+keyID+"/remove", nil); p.status != http.StatusSeeOther || len(e.store.Config().GetPlanKeys()[planID].GetKeys()) != 0 {
		t.Fatalf("remove key from plan: %d %q", p.status, p.errorText())
	}

	// Import: one good line, one without a key value.
	csv := "Name,Key,Enabled,UsageplanIds\nimp-1," + strings.Repeat("i", 30) + ",true," + planID + "\nimp-2,,true,\n"
	p = b.post(Prefix+"keys/import", url.Values{"csv": {csv}})
	if p.status != 200 || !strings.Contains(p.body, "Imported 1 key(s).") {
		t.Fatalf("import: %d %q\n%s", p.status, p.errorText(), p.body)
	}
	warnings := regexp.MustCompile(`<li>(line \d+: [^<]*)</li>`).FindAllStringSubmatch(p.body, -1)
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0][1], "line 3: ") {
		t.Fatalf("import warnings: %q", warnings)
	}
	if len(e.store.Config().GetPlanKeys()[planID].GetKeys()) != 1 {
		t.Fatal("the imported key is not in the plan")
	}
	// The same as an uploaded file (multipart), with a warning on line 2.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", b.csrf())
	fw, _ := mw.CreateFormFile("file", "keys.csv")
	_, _ = fw.Write([]byte("Name,Key\nimp-3,short\nimp-4," + strings.Repeat("j", 30) + "\n"))
	_ = mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+Prefix+"keys/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	p = b.do(req)
	warnings = regexp.MustCompile(`<li>(line \d+: [^<]*)</li>`).FindAllStringSubmatch(p.body, -1)
	if p.status != 200 || !strings.Contains(p.body, "Imported 1 key(s).") || len(warnings) != 1 || !strings.HasPrefix(warnings[0][1], "line 2: ") {
		t.Fatalf("file import: %d %q %q", p.status, p.errorText(), warnings)
	}
}

// TestConsolePlanShowsQuotaNotifications: a plan with a webhook shows its
// settings and the notices the cluster recorded, with their state; a plan
// without one shows no notification section.
func TestConsolePlanShowsQuotaNotifications(t *testing.T) {
	e := newEnv(t)
	id := e.adminJSON("POST", "/usageplans", "", map[string]any{"name": "gold", "quota": map[string]any{"limit": 10, "period": "DAY"},
		"quotaNotifications": map[string]any{"webhookUrl": "http://127.0.0.1:9/hook", "thresholds": []int{80, 100}}}, 201)["id"].(string)
	plain := e.adminJSON("POST", "/usageplans", "", map[string]any{"name": "plain"}, 201)["id"].(string)
	start := testNow.Truncate(24 * time.Hour).Unix()
	for _, state := range []string{"pending", "failed"} { // recorded when decided, then its outcome
		res, err := e.store.Apply(t.Context(), &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: []*pb.QuotaNotice{
			{PlanId: id, KeyId: "k1", PeriodStart: start, PeriodEnd: start + 86400, Threshold: 80, Used: 8, Limit: 10, State: state, Attempts: 5, Error: "connection refused", Sender: "n1"},
		}}}})
		if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("record %s: %v %v", state, err, res)
		}
	}
	b := e.browser()
	p := b.get(Prefix + "plans/" + id)
	for _, want := range []string{"http://127.0.0.1:9/hook", "80%, 100%", `<tr data-key="k1">`, "8 / 10", `<td class="notice-state">failed</td>`, "connection refused"} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("the plan page does not show %q:\n%s", want, p.body)
		}
	}
	if p := b.get(Prefix + "plans/" + plain); p.status != 200 || strings.Contains(p.body, "Quota notifications") {
		t.Fatalf("a plan without a webhook: %d\n%s", p.status, p.body)
	}
}
