package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// promqlWords are the PromQL functions, aggregations and keywords the
// dashboard and the alerts use; any other word of an expression must be
// a metric a node exposes.
var promqlWords = []string{"sum", "max", "min", "avg", "count", "rate", "irate", "increase",
	"histogram_quantile", "by", "without", "and", "or", "unless", "bool"}

// syntheticMetrics are series Prometheus makes itself, not a node.
var syntheticMetrics = []string{"up"}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelector = regexp.MustCompile(`\{[^{}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariable = regexp.MustCompile(`\$\{?\w+\}?`)
	promIdent    = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// metricNames returns the metric names an expression uses: its words,
// less strings, label selectors, ranges, grouping clauses, variables and
// PromQL's own words.
func metricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{promString, promSelector, promRange, promGrouping, promVariable} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(promqlWords, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`sum by (instance) (rate(tollgate_x_total{job="t",code=~"5.."}[5m])) / max(up{job="t"}) > 0.01 and histogram_quantile(0.99, sum by (le) (rate(a_bucket[$__rate_interval])))`)
	if want := []string{"tollgate_x_total", "up", "a_bucket"}; !slices.Equal(got, want) {
		t.Fatalf("metricNames: %q, want %q", got, want)
	}
}

// scrapeNames reads a node's /metrics with a bearer token and returns the
// names of its samples.
func scrapeNames(t *testing.T, g *gateway, token string) map[string]bool {
	t.Helper()
	req, err := http.NewRequest("GET", g.AdminURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	r := g.send(req)
	if r.Status != 200 {
		t.Fatalf("GET /metrics with a token: %d %s", r.Status, r.Body)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		names[name] = true
	}
	return names
}

// TestDashboardsAndAlertsNameRealMetrics: deploy/grafana/tollgate.json and
// deploy/prometheus/alerts.yml parse, the alerts the README promises are
// there, and every metric their expressions name is on a running node's
// /metrics, which needs a bearer token once a credential exists (as
// deploy/prometheus/prometheus.yml sends it).
func TestDashboardsAndAlertsNameRealMetrics(t *testing.T) {
	// The files, parsed.
	var alerts struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
				For   string `json:"for"`
			} `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, "../deploy/prometheus/alerts.yml", &alerts)
	exprs := map[string]string{} // expression -> where
	var alertNames []string
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Fatalf("alerts.yml: a rule without alert or expr: %+v", r)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alerts.yml: %s: for %q: %v", r.Alert, r.For, err)
			}
			alertNames = append(alertNames, r.Alert)
			exprs[r.Expr] = "alerts.yml " + r.Alert
		}
	}
	for _, want := range []string{"TollgateNoLeader", "TollgateLedgerUnreachable", "TollgateHigh503Rate", "TollgateRaftApplySlow", "TollgateNodeDown"} {
		if !slices.Contains(alertNames, want) {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
	var scrape struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			Authorization struct {
				Type            string `json:"type"`
				CredentialsFile string `json:"credentials_file"`
			} `json:"authorization"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "../deploy/prometheus/prometheus.yml", &scrape)
	if !slices.Contains(scrape.RuleFiles, "alerts.yml") || len(scrape.ScrapeConfigs) != 1 ||
		scrape.ScrapeConfigs[0].JobName != "tollgate" || scrape.ScrapeConfigs[0].Authorization.Type != "Bearer" ||
		scrape.ScrapeConfigs[0].Authorization.CredentialsFile == "" {
		t.Fatalf("prometheus.yml: %+v", scrape)
	}

	b, err := os.ReadFile("../deploy/grafana/tollgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("tollgate.json: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) < 10 {
		t.Fatalf("tollgate.json: title %q, %d panels", dash.Title, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("tollgate.json: panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs[tg.Expr] = "tollgate.json " + p.Title
		}
	}
	labelValues := regexp.MustCompile(`^label_values\(([^,]+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		if v.Definition == "" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("tollgate.json: variable query %q", v.Definition)
		}
		exprs[m[1]] = "tollgate.json variable"
	}

	// A node with a credential and traffic of every kind the panels show:
	// admitted, throttled, over quota.
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	cred := g.mustAdmin("POST", "/tollgate/credentials", map[string]any{"name": "ops", "role": "admin"}, 201)
	g.Token = cred["token"].(string)
	ro := g.mustAdmin("POST", "/tollgate/credentials", map[string]any{"name": "prometheus", "role": "read-only"}, 201)
	if r := g.send(mustRequest(t, "GET", g.AdminURL+"/metrics")); r.Status != 403 {
		t.Fatalf("/metrics without a token: %d, want 403", r.Status)
	}
	api := g.mustAdmin("POST", "/restapis", map[string]any{"name": "pets"}, 201)["id"].(string)
	for _, st := range []string{"a", "b"} {
		g.mustAdmin("POST", "/restapis/"+api+"/deployments", map[string]any{"stageName": st, "variables": map[string]string{"url": up.URL}}, 201)
	}
	throttled := g.mustAdmin("POST", "/usageplans", map[string]any{"name": "slow", "throttle": map[string]any{"rateLimit": 1, "burstLimit": 1},
		"apiStages": []map[string]any{{"apiId": api, "stage": "a"}}}, 201)["id"].(string)
	quota := g.mustAdmin("POST", "/usageplans", map[string]any{"name": "small", "quota": map[string]any{"limit": 2, "period": "DAY"},
		"apiStages": []map[string]any{{"apiId": api, "stage": "b"}}}, 201)["id"].(string)
	key := g.mustAdmin("POST", "/apikeys", map[string]any{"name": "k", "enabled": true}, 201)
	for _, p := range []string{throttled, quota} {
		g.mustAdmin("POST", "/usageplans/"+p+"/keys", map[string]any{"keyId": key["id"], "keyType": "API_KEY"}, 201)
	}
	value := key["value"].(string)
	for _, stage := range []string{"a", "b"} {
		seen := false
		for range 50 {
			if g.call("/"+api+"/"+stage+"/x", value).Status == 429 {
				seen = true
				break
			}
		}
		if !seen {
			t.Fatalf("stage %s: no 429 in 50 requests", stage)
		}
	}
	g.call("/"+api+"/a/x", "") // a 403

	names := scrapeNames(t, g, ro["token"].(string))
	for expr, where := range exprs {
		for _, n := range metricNames(expr) {
			if !names[n] && !slices.Contains(syntheticMetrics, n) {
				t.Errorf("%s: %q names %s, which the node's /metrics does not have", where, expr, n)
			}
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
