package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds a Chromium to drive. Without one the test skips,
// saying so, unless TOLLGATE_REQUIRE_BROWSER is set (CI sets it once it
// installed chromium): then it fails.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TOLLGATE_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium on PATH, and TOLLGATE_REQUIRE_BROWSER is set")
	}
	t.Skip("SKIPPED: no chromium on PATH (apt-get install -y chromium): the console's browser test did not run")
	return ""
}

// artifactsDir is where the test saves screenshots: TOLLGATE_ARTIFACTS,
// or a new directory under the system's temporary one, kept after the test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TOLLGATE_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tollgate-console-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of the console's pages: %s", dir)
	return dir
}

// TestConsoleBrowser drives the web console in headless Chromium against
// the binary: sign in with a bearer token, create a usage plan (after a
// refused one) and a key through the pages, reveal the key's value, put it
// in the plan, send traffic through the data plane, see the usage chart
// count it, and set the key's remaining quota in the extension dialog. It
// saves a screenshot of each page.
func TestConsoleBrowser(t *testing.T) {
	chromium := browserPath(t)
	shots := artifactsDir(t)
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	api := g.mustAdmin("POST", "/restapis", map[string]any{"name": "pets", "description": "The pet store"}, 201)["id"].(string)
	g.mustAdmin("POST", "/restapis/"+api+"/deployments", map[string]any{"stageName": "prod", "variables": map[string]string{"url": up.URL}}, 201)
	token := g.mustAdmin("POST", "/tollgate/credentials", map[string]string{"name": "console", "role": "admin"}, 201)["token"].(string)
	g.Token = token

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	if err := chromedp.Do(bctx); err != nil { // starts the browser, for the whole test
		t.Fatalf("start %s: %v", chromium, err)
	}
	// Each step waits at most stepTimeout; a failed one logs the page.
	const stepTimeout = 30 * time.Second
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, stepTimeout)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			dctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			defer cancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v\nthe browser is at %s:\n%s", what, err, loc, html)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	attr := func(sel, name string) string {
		t.Helper()
		a, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil || !a.Exists {
			t.Fatalf("attribute %s of %s: %v", name, sel, err)
		}
		return a.Value
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	console := g.AdminURL + "/console/"

	// Signed out: the login form.
	do("open the console", chromedp.Navigate(console), chromedp.WaitVisible(chromedp.ID("token")))
	shot("login")
	do("sign in", chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.ID("node-id")))
	if leader, node := text("#leader"), text("#node-id"); leader == "" || leader != node {
		t.Fatalf("overview: leader %q, node %q", leader, node)
	}
	if h := text("#health"); !strings.HasPrefix(h, "ok") {
		t.Fatalf("overview health: %q", h)
	}
	shot("overview")

	do("APIs", chromedp.Navigate(console+"apis"), chromedp.WaitVisible(chromedp.CSS("#api-"+api+" table.stages")))
	if u := text("#api-" + api + " table.stages tbody td:nth-child(3)"); u != up.URL {
		t.Fatalf("the stage's upstream shows %q, want %q", u, up.URL)
	}
	shot("apis")

	// A refused plan: the admin API's message, nothing created.
	do("plan with a bad rate", chromedp.Navigate(console+"plans"),
		chromedp.SendKeys(chromedp.ID("plan-name"), "gold"), chromedp.SendKeys(chromedp.ID("plan-rate"), "fast"),
		chromedp.Click(chromedp.ID("plan-submit")), chromedp.WaitVisible(chromedp.ID("error")))
	if e := text("#error"); !strings.Contains(e, `"throttle.rateLimit" must be a number`) {
		t.Fatalf("refused plan shows %q", e)
	}
	if r := g.mustAdmin("GET", "/usageplans", nil, 200); len(r["item"].([]any)) != 0 {
		t.Fatalf("a refused form created a plan: %v", r)
	}
	// The form kept what was typed: fix the rate and send it again.
	do("create the plan", chromedp.SetValue(chromedp.ID("plan-rate"), "100"), chromedp.SendKeys(chromedp.ID("plan-burst"), "200"),
		chromedp.SendKeys(chromedp.ID("plan-quota"), "1000"), chromedp.SetValue(chromedp.ID("plan-period"), "DAY"),
		chromedp.Click(chromedp.CSS(`input[data-stage="`+api+`/prod"]`)), chromedp.Click(chromedp.ID("plan-submit")),
		chromedp.WaitVisible(chromedp.ID("plan-id")))
	plan := text("#plan-id")
	p := g.mustAdmin("GET", "/usageplans/"+plan, nil, 200)
	if p["name"] != "gold" || p["quota"].(map[string]any)["limit"] != 1000.0 || len(p["apiStages"].([]any)) != 1 {
		t.Fatalf("the plan made through the page: %v", p)
	}
	do("plans", chromedp.Navigate(console+"plans"), chromedp.WaitVisible(chromedp.CSS(`tr[data-plan="`+plan+`"]`)))
	shot("plans")

	value := "consolebrowsertest" + strconv.FormatInt(time.Now().UnixNano(), 10)
	do("create a key", chromedp.Navigate(console+"keys"), chromedp.SendKeys(chromedp.ID("key-name"), "acme"),
		chromedp.SendKeys(chromedp.ID("key-value"), value), chromedp.Click(chromedp.ID("key-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="acme"]`)))
	key := attr(`tr[data-name="acme"]`, "data-key")
	do("reveal its value", chromedp.Click(chromedp.CSS(`tr[data-name="acme"] button.reveal`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="acme"] code.value[data-revealed]`)))
	if v := text(`tr[data-name="acme"] code.value`); v != value {
		t.Fatalf("revealed %q, want %q", v, value)
	}
	shot("keys")

	do("add the key to the plan", chromedp.Navigate(console+"plans/"+plan), chromedp.SendKeys(chromedp.ID("add-key-id"), key),
		chromedp.Click(chromedp.CSS("#add-key button")), chromedp.WaitVisible(chromedp.CSS(`#plan-keys tr[data-key="`+key+`"]`)))
	shot("plan")

	const sent = 7
	for i := range sent {
		if r := g.call("/"+api+"/prod/hello", value); r.Status != 200 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	// Usage reaches the ledger within about a second: reload until the
	// chart counts it.
	usage := console + "usage?plan=" + plan
	eventually(t, 30*time.Second, "the usage chart to count the requests", func() bool {
		do("usage", chromedp.Navigate(usage), chromedp.WaitVisible(chromedp.ID("usage-total")))
		return text("#usage-total") == strconv.Itoa(sent)
	})
	today := time.Now().UTC().Format(time.DateOnly)
	bar := `#usage-chart rect.bar[data-date="` + today + `"]`
	if v := attr(bar, "data-value"); v != strconv.Itoa(sent) {
		t.Fatalf("today's bar: %s, want %d", v, sent)
	}
	if h, _ := strconv.ParseFloat(attr(bar, "height"), 64); h <= 0 {
		t.Fatalf("today's bar has height %v", h)
	}
	if r := text(`#usage-keys tr[data-key="` + key + `"] td.remaining`); r != strconv.Itoa(1000-sent) {
		t.Fatalf("remaining %q, want %d", r, 1000-sent)
	}
	shot("usage")

	// The extension dialog: UpdateUsage.
	dialog := "#extend-" + key
	do("extend", chromedp.Click(chromedp.CSS(`button[data-dialog="extend-`+key+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(dialog+" input[name=remaining]")),
		chromedp.SendKeys(chromedp.CSS(dialog+" input[name=remaining]"), "5000"))
	shot("usage-extend")
	do("set remaining", chromedp.Click(chromedp.CSS(dialog+` button[type=submit]`)))
	// The form posts, and the usage page comes back with the new remaining.
	remaining := `#usage-keys tr[data-key="` + key + `"] td.remaining`
	eventually(t, stepTimeout, "the remaining quota to read 5000", func() bool {
		sctx, cancel := context.WithTimeout(bctx, stepTimeout)
		defer cancel()
		r, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(remaining)))
		return err == nil && strings.TrimSpace(r) == "5000"
	})
	if open, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector("`+dialog+`").open`)); err != nil || open {
		t.Fatalf("the dialog is still open on the new page (%v)", err)
	}
}
