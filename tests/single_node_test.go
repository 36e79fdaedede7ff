package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// product is an API with a stage in front of an upstream, a plan on that
// stage and a key in the plan.
type product struct {
	APIID, Stage, PlanID, KeyID, Key string
}

func setupProduct(t *testing.T, g *gateway, upstreamURL string, plan map[string]any) product {
	t.Helper()
	api := g.mustAdmin("POST", "/restapis", map[string]any{"name": "pets"}, 201)
	p := product{APIID: api["id"].(string), Stage: "prod"}
	g.mustAdmin("POST", "/restapis/"+p.APIID+"/deployments", map[string]any{
		"stageName": p.Stage, "variables": map[string]string{"url": upstreamURL},
	}, 201)
	plan["name"] = "gold"
	plan["apiStages"] = []map[string]any{{"apiId": p.APIID, "stage": p.Stage}}
	up := g.mustAdmin("POST", "/usageplans", plan, 201)
	p.PlanID = up["id"].(string)
	key := g.mustAdmin("POST", "/apikeys", map[string]any{"name": "customer-1", "enabled": true}, 201)
	p.KeyID, p.Key = key["id"].(string), key["value"].(string)
	g.mustAdmin("POST", "/usageplans/"+p.PlanID+"/keys", map[string]any{"keyId": p.KeyID, "keyType": "API_KEY"}, 201)
	return p
}

// usageToday returns [used, remaining] of a key today from GetUsage.
func usageToday(t *testing.T, g *gateway, p product) (used, remaining int64, ok bool) {
	t.Helper()
	today := time.Now().UTC().Format("2006-01-02")
	r := g.admin("GET", "/usageplans/"+p.PlanID+"/usage?startDate="+today+"&endDate="+today, nil)
	if r.Status != 200 {
		t.Fatalf("GetUsage: %d %s", r.Status, r.Body)
	}
	values, _ := r.JSON(t)["values"].(map[string]any)
	days, _ := values[p.KeyID].([]any)
	if len(days) != 1 {
		return 0, 0, false
	}
	pair := days[0].([]any)
	return int64(pair[0].(float64)), int64(pair[1].(float64)), true
}

// TestQuotaExtensionAndRestart is the whole single-node story: a quota of
// 50 a day admits exactly 50 of 80 requests; an extension lets exactly that
// many more through; usage survives a restart.
func TestQuotaExtensionAndRestart(t *testing.T) {
	up := newUpstream(t)
	dir := t.TempDir()
	g := startGateway(t, dir)
	p := setupProduct(t, g, up.URL, map[string]any{
		"quota":    map[string]any{"limit": 50, "period": "DAY"},
		"throttle": map[string]any{"rateLimit": 10000, "burstLimit": 10000},
	})
	path := "/" + p.APIID + "/" + p.Stage + "/pets"

	codes := map[int]int{}
	for range 80 {
		r := g.call(path, p.Key)
		codes[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			if got := strings.TrimSpace(string(r.Body)); got != `{"message":"Limit Exceeded"}` {
				t.Fatalf("429 body = %s", got)
			}
			if r.Header.Get("x-amzn-ErrorType") != "LimitExceededException" {
				t.Fatalf("429 x-amzn-ErrorType = %q", r.Header.Get("x-amzn-ErrorType"))
			}
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if codes[200] != 50 || codes[429] != 30 {
		t.Fatalf("80 requests on a quota of 50: %v, want 50×200 and 30×429", codes)
	}
	if n := up.count.Load(); n != 50 {
		t.Fatalf("upstream saw %d requests, want 50", n)
	}
	eventually(t, 10*time.Second, "GetUsage to show 50 used", func() bool {
		used, remaining, ok := usageToday(t, g, p)
		return ok && used == 50 && remaining == 0
	})

	// Extend: 10 more for the rest of the period.
	g.mustAdmin("PATCH", "/usageplans/"+p.PlanID+"/keys/"+p.KeyID+"/usage", map[string]any{
		"patchOperations": []map[string]any{{"op": "replace", "path": "/remaining", "value": "10"}},
	}, 200)
	_, remaining, _ := usageToday(t, g, p)
	if remaining != 10 {
		t.Fatalf("remaining after the extension = %d, want 10", remaining)
	}
	// The node learns of the extension within about a second: until then
	// it still answers Limit Exceeded.
	admitted := 0
	deadline := time.Now().Add(10 * time.Second)
	for admitted < 10 && time.Now().Before(deadline) {
		if g.call(path, p.Key).Status == 200 {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("after extending by 10, %d requests got through within 10s", admitted)
	}
	for range 10 {
		if r := g.call(path, p.Key); r.Status != 429 {
			t.Fatalf("request beyond the extension: status %d, want 429", r.Status)
		}
	}
	if n := up.count.Load(); n != 60 {
		t.Fatalf("upstream saw %d requests, want 60", n)
	}
	eventually(t, 10*time.Second, "GetUsage to show 60 used", func() bool {
		used, remaining, ok := usageToday(t, g, p)
		return ok && used == 60 && remaining == 0
	})

	// Restart: everything is still there, usage included.
	g.stop()
	g2 := startGateway(t, dir)
	used, remaining, ok := usageToday(t, g2, p)
	if !ok || used != 60 || remaining != 0 {
		t.Fatalf("after restart GetUsage = [%d, %d] (found %v), want [60, 0]", used, remaining, ok)
	}
	if r := g2.call(path, p.Key); r.Status != 429 {
		t.Fatalf("after restart a request over quota got %d, want 429", r.Status)
	}
	g2.mustAdmin("PATCH", "/usageplans/"+p.PlanID+"/keys/"+p.KeyID+"/usage", map[string]any{
		"patchOperations": []map[string]any{{"op": "replace", "path": "/remaining", "value": "5"}},
	}, 200)
	admitted = 0
	deadline = time.Now().Add(10 * time.Second)
	for admitted < 5 && time.Now().Before(deadline) {
		if g2.call(path, p.Key).Status == 200 {
			admitted++
		}
	}
	if admitted != 5 || up.count.Load() != 65 {
		t.Fatalf("after restart and an extension of 5: admitted %d, upstream %d (want 5, 65)", admitted, up.count.Load())
	}
}

// TestKillRestartNeverOverAdmits kills the node with SIGKILL while it holds
// a grant: the grant counts as used, so the quota is never exceeded.
func TestKillRestartNeverOverAdmits(t *testing.T) {
	up := newUpstream(t)
	dir := t.TempDir()
	g := startGateway(t, dir)
	p := setupProduct(t, g, up.URL, map[string]any{"quota": map[string]any{"limit": 40, "period": "MONTH"}})
	path := "/" + p.APIID + "/" + p.Stage + "/x"
	for range 15 {
		if r := g.call(path, p.Key); r.Status != 200 {
			t.Fatalf("status %d within quota: %s", r.Status, r.Body)
		}
	}
	g.kill()
	g2 := startGateway(t, dir)
	for range 60 {
		g2.call(path, p.Key)
	}
	if n := up.count.Load(); n > 40 || n < 15 {
		t.Fatalf("upstream saw %d requests with a quota of 40 across a SIGKILL", n)
	}
	t.Logf("quota 40, SIGKILL after 15: %d admitted in all (%d lost to the killed node's grant)", up.count.Load(), 40-up.count.Load())
}

func TestDataPlaneAnswers(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	p := setupProduct(t, g, up.URL, map[string]any{"throttle": map[string]any{"rateLimit": 1, "burstLimit": 3}})
	path := "/" + p.APIID + "/" + p.Stage + "/pets/1?color=red"

	for _, tc := range []struct{ name, key string }{
		{"no key", ""}, {"unknown key", "nosuchkey0123456789abcdef"},
	} {
		r := g.call(path, tc.key)
		if r.Status != 403 || strings.TrimSpace(string(r.Body)) != `{"message":"Forbidden"}` || r.Header.Get("x-amzn-ErrorType") != "ForbiddenException" {
			t.Fatalf("%s: %d %s %v", tc.name, r.Status, r.Body, r.Header)
		}
	}
	// Forwarded: path and query kept, key not passed on.
	r := g.call(path, p.Key)
	if r.Status != 200 {
		t.Fatalf("valid key: %d %s", r.Status, r.Body)
	}
	last := up.lastRequest()
	if last.URL.Path != "/pets/1" || last.URL.RawQuery != "color=red" {
		t.Fatalf("upstream got %s?%s", last.URL.Path, last.URL.RawQuery)
	}
	if last.Header.Get("x-api-key") != "" {
		t.Fatal("the API key was forwarded upstream")
	}
	if last.Header.Get("X-Forwarded-For") == "" {
		t.Fatal("X-Forwarded-For not set")
	}
	// Burst 3: two more pass, then 429 Too Many Requests with Retry-After.
	for i := range 2 {
		if r := g.call(path, p.Key); r.Status != 200 {
			t.Fatalf("request %d within the burst: %d", i+2, r.Status)
		}
	}
	r = g.call(path, p.Key)
	if r.Status != 429 || strings.TrimSpace(string(r.Body)) != `{"message":"Too Many Requests"}` || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the burst: %d %s Retry-After=%q", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if r.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("no X-RateLimit-Limit on a 429: %v", r.Header)
	}
	// Disabling the key refuses it at once.
	g.mustAdmin("PATCH", "/apikeys/"+p.KeyID, map[string]any{
		"patchOperations": []map[string]any{{"op": "replace", "path": "/enabled", "value": "false"}},
	}, 200)
	if r := g.call(path, p.Key); r.Status != 403 {
		t.Fatalf("disabled key: %d", r.Status)
	}
	// The node's metrics cover Raft, the ledger and the data plane.
	m := g.admin("GET", "/metrics", nil)
	for _, name := range []string{"tollgate_raft_applies_total", "tollgate_quota_batches_total", "tollgate_proxy_requests_total", "tollgate_raft_leader 1"} {
		if !strings.Contains(string(m.Body), name) {
			t.Fatalf("/metrics has no %s", name)
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"admin on all interfaces", []string{"--admin-listen", "0.0.0.0:0"}, nil, "--admin-insecure"},
		{"bad listen", []string{"--listen", "nonsense"}, nil, "--listen"},
		{"bad bootstrap-expect", []string{"--bootstrap-expect", "0"}, nil, "--bootstrap-expect"},
		{"bad log level from env", nil, []string{"TOLLGATE_LOG_LEVEL=loud"}, "--log-level"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(loopbackArgs(t.TempDir()), tc.args...)
			g := launch(t, args, tc.env)
			log, err := g.waitExit(20 * time.Second)
			if err == nil {
				t.Fatalf("tollgate accepted %v %v", tc.args, tc.env)
			}
			if !strings.Contains(log, tc.want) {
				t.Fatalf("error does not mention %s:\n%s", tc.want, log)
			}
		})
	}
}

func TestServeReadsConfigFileAndKeepsNodeID(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/tollgate.yaml"
	if err := writeFile(file, fmt.Sprintf("node-id: edge-1\ndata-dir: %s/data\n", dir)); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", file, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--raft-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0",
		"--advertise-addr", "127.0.0.1", "--raft-fast"}
	g := launch(t, append([]string{"serve"}, args...), nil)
	eventually(t, 30*time.Second, "ready", func() bool { return strings.Contains(g.logs.String(), "tollgate is ready") })
	if !strings.Contains(g.logs.String(), "node=edge-1") {
		t.Fatalf("node id from the config file not used:\n%s", g.logs.String())
	}
	g.stop()
	// The data dir now belongs to edge-1: another id is refused.
	g2 := launch(t, []string{"serve", "--data-dir", dir + "/data", "--node-id", "edge-2", "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0", "--advertise-addr", "127.0.0.1"}, nil)
	log, err := g2.waitExit(20 * time.Second)
	if err == nil || !strings.Contains(log, "edge-1") {
		t.Fatalf("a different --node-id on the same data dir was not refused clearly: %v\n%s", err, log)
	}
}
