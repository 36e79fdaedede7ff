package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive a three-node cluster with `tollgate loadtest --json`
// and hold it to the product's two promises: a quota is exact across the
// cluster (never more, and with every node alive, exactly), and a plan's
// throttle holds cluster-wide however the traffic is spread. Each logs one
// FIGURES line to copy into a report.

// loadReport is the part of `tollgate loadtest --json` these tests read.
type loadReport struct {
	Mode            string       `json:"mode"`
	DurationSeconds float64      `json:"durationSeconds"`
	OfferedRate     float64      `json:"offeredRate"`
	AdmittedRate    float64      `json:"admittedRate"`
	Targets         []loadCounts `json:"targets"`
	Total           loadCounts   `json:"total"`
	Schedule        *struct {
		Due      int64   `json:"due"`
		Sent     int64   `json:"sent"`
		Missed   int64   `json:"missed"`
		LagP99Ms float64 `json:"lagP99Ms"`
		LagMaxMs float64 `json:"lagMaxMs"`
	} `json:"schedule"`
	Plan *struct {
		Expected       float64  `json:"expected"`
		ErrorPct       float64  `json:"errorPct"`
		QuotaAllows    *int64   `json:"quotaAllows"`
		ThrottleAllows *float64 `json:"throttleAllows"`
	} `json:"plan"`
}

type loadCounts struct {
	URL          string           `json:"url"`
	Sent         int64            `json:"sent"`
	OK           int64            `json:"ok"`
	Forbidden    int64            `json:"forbidden"`
	Throttled    int64            `json:"throttled"`
	QuotaExceed  int64            `json:"quotaExceeded"`
	Unavailable  int64            `json:"unavailable"`
	Other        int64            `json:"other"`
	Errors       int64            `json:"errors"`
	Statuses     map[string]int64 `json:"statuses"`
	LatencyP50Ms float64          `json:"latencyP50Ms"`
	LatencyP99Ms float64          `json:"latencyP99Ms"`
	FirstError   string           `json:"firstError"`
}

// loadRun is a `tollgate loadtest --json` running in the background.
type loadRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout bytes.Buffer
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// startLoad starts the load tool; it is killed after limit at the latest.
func startLoad(t *testing.T, limit time.Duration, args ...string) *loadRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	r := &loadRun{t: t, cancel: cancel, done: make(chan struct{})}
	r.cmd = exec.CommandContext(ctx, binary, append([]string{"loadtest", "--json"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	t.Logf("tollgate loadtest --json %s", strings.Join(args, " "))
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start the load tool: %v", err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for the load tool to finish and returns its report.
func (r *loadRun) wait() loadReport {
	r.t.Helper()
	<-r.done
	r.cancel()
	if r.err != nil {
		r.t.Fatalf("the load tool failed: %v\n%s", r.err, r.stderr.String())
	}
	var rep loadReport
	if err := json.Unmarshal(r.stdout.Bytes(), &rep); err != nil {
		r.t.Fatalf("the load tool's output is not its JSON report: %v\n%s", err, r.stdout.String())
	}
	if len(rep.Targets) == 0 {
		r.t.Fatalf("the load tool reported no targets:\n%s", r.stdout.String())
	}
	return rep
}

// runLoad runs the load tool to the end.
func runLoad(t *testing.T, limit time.Duration, args ...string) loadReport {
	t.Helper()
	return startLoad(t, limit, args...).wait()
}

func dataTargets(nodes []*gateway) string {
	urls := make([]string, len(nodes))
	for i, g := range nodes {
		urls[i] = g.DataURL
	}
	return strings.Join(urls, ",")
}

// nodeUpstream is a backend that counts what each node forwarded to it,
// by the X-Forwarded-Host the node sets (its own data-plane address).
type nodeUpstream struct {
	*httptest.Server
	count  atomic.Int64
	mu     sync.Mutex
	byHost map[string]int64
}

func newNodeUpstream(t *testing.T) *nodeUpstream {
	u := &nodeUpstream{byHost: map[string]int64{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.count.Add(1)
		u.mu.Lock()
		u.byHost[r.Header.Get("X-Forwarded-Host")]++
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(u.Close)
	return u
}

// forwarded lists what each node forwarded, in nodes order.
func (u *nodeUpstream) forwarded(nodes []*gateway) []int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]int64, len(nodes))
	for i, g := range nodes {
		out[i] = u.byHost[strings.TrimPrefix(g.DataURL, "http://")]
	}
	return out
}

// waitKeyEverywhere waits until every node's state holds the plan's key,
// without spending quota or tokens on a probe request.
func waitKeyEverywhere(t *testing.T, nodes []*gateway, p product) {
	t.Helper()
	for _, g := range nodes {
		eventually(t, 10*time.Second, g.AdminURL+" to see the key in the plan", func() bool {
			return g.admin("GET", "/usageplans/"+p.PlanID+"/keys/"+p.KeyID, nil).Status == 200
		})
	}
}

func (p product) path() string { return "/" + p.APIID + "/" + p.Stage + "/hello" }

// leaderOf returns the node that leads, as the nodes themselves say.
func leaderOf(t *testing.T, nodes []*gateway) (*gateway, string) {
	t.Helper()
	var leader *gateway
	var id string
	eventually(t, 10*time.Second, "a leader", func() bool {
		v, ok := nodes[0].cluster()
		if !ok || v.Leader == "" {
			return false
		}
		for i, g := range nodes {
			if fmt.Sprintf("n%d", i+1) == v.Leader {
				leader, id = g, v.Leader
				return true
			}
		}
		return false
	})
	return leader, id
}

// perNode lists a count of every target, in --targets order.
func perNode(rep loadReport, f func(loadCounts) int64) []int64 {
	out := make([]int64, len(rep.Targets))
	for i, c := range rep.Targets {
		out[i] = f(c)
	}
	return out
}

func admitted(c loadCounts) int64 { return c.OK }

// logFigures logs one line with what a case measured, to copy into a report.
func logFigures(t *testing.T, name string, rep loadReport, expected float64, upstream int64, perNodeUpstream []int64) {
	t.Helper()
	errPct := 0.0
	if expected > 0 {
		errPct = (float64(rep.Total.OK) - expected) / expected * 100
	}
	line := fmt.Sprintf("FIGURES %s: admitted %d, expected %.0f (%+.1f%%); upstream %d; sent %d in %.2fs (%.0f/s offered, %.1f/s admitted); "+
		"429 quota %d, 429 throttled %d, 503 %d, 403 %d, other %d, errors %d; admitted per node %v of sent %v (upstream per node %v); p50/p99 %.2f/%.2f ms",
		name, rep.Total.OK, expected, errPct, upstream, rep.Total.Sent, rep.DurationSeconds, rep.OfferedRate, rep.AdmittedRate,
		rep.Total.QuotaExceed, rep.Total.Throttled, rep.Total.Unavailable, rep.Total.Forbidden, rep.Total.Other, rep.Total.Errors,
		perNode(rep, admitted), perNode(rep, func(c loadCounts) int64 { return c.Sent }), perNodeUpstream, rep.Total.LatencyP50Ms, rep.Total.LatencyP99Ms)
	if s := rep.Schedule; s != nil {
		line += fmt.Sprintf("; schedule %d due, %d missed, late p99 %.1f ms, max %.1f ms", s.Due, s.Missed, s.LagP99Ms, s.LagMaxMs)
	}
	var refused []string
	for i, c := range rep.Targets {
		if n := c.Sent - c.OK; n > 0 {
			refused = append(refused, fmt.Sprintf("node %d: %v", i+1, c.Statuses))
		}
	}
	if len(refused) > 0 {
		line += "; statuses " + strings.Join(refused, ", ")
	}
	if rep.Total.FirstError != "" {
		line += "; first error: " + rep.Total.FirstError
	}
	t.Log(line)
}

// waitUsageEverywhere waits until GetUsage on every node shows want used
// today.
func waitUsageEverywhere(t *testing.T, nodes []*gateway, p product, want int64) {
	t.Helper()
	for _, g := range nodes {
		var last int64 = -1
		deadline := time.Now().Add(10 * time.Second)
		for {
			used, _, ok := usageToday(t, g, p)
			if ok {
				last = used
			}
			if last == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GetUsage on %s shows used %d, want %d (the upstream's count)", g.AdminURL, last, want)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}
}

// testExactQuota sends 3000 requests as fast as possible at a quota of
// 1000 a day: exactly 1000 pass, on every spread.
func testExactQuota(t *testing.T, name, spread string) {
	up := newNodeUpstream(t)
	nodes := startCluster(t, 3)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": 1000, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)

	rep := runLoad(t, 60*time.Second, "--targets", dataTargets(nodes), "--spread", spread, "--path", p.path(),
		"--key", p.Key, "--requests", "3000", "--admin", nodes[1].AdminURL, "--plan", p.PlanID)
	logFigures(t, name, rep, 1000, up.count.Load(), up.forwarded(nodes))

	if rep.Total.Sent != 3000 {
		t.Errorf("sent %d, want 3000", rep.Total.Sent)
	}
	if rep.Total.OK != 1000 || rep.Total.QuotaExceed != 2000 {
		t.Errorf("admitted %d and refused %d as over the quota; want exactly 1000 and 2000", rep.Total.OK, rep.Total.QuotaExceed)
	}
	if n := rep.Total.Sent - rep.Total.OK - rep.Total.QuotaExceed; n != 0 {
		t.Errorf("%d answers were neither 200 nor 429 Limit Exceeded: %v (first error %q)", n, rep.Total.Statuses, rep.Total.FirstError)
	}
	if got := up.count.Load(); got != 1000 {
		t.Errorf("the upstream saw %d requests, want exactly 1000", got)
	}
	if fw, ok := up.forwarded(nodes), perNode(rep, admitted); fmt.Sprint(fw) != fmt.Sprint(ok) {
		t.Errorf("the nodes forwarded %v, the tool counted %v admitted per node", fw, ok)
	}
	if rep.Plan == nil || rep.Plan.QuotaAllows == nil || *rep.Plan.QuotaAllows != 1000 {
		t.Errorf("the load tool did not read the plan's quota: %+v", rep.Plan)
	}
	waitUsageEverywhere(t, nodes, p, up.count.Load())
}

// TestClusterQuotaExactEven: 3000 requests spread evenly over three nodes
// at a quota of 1000 a day.
func TestClusterQuotaExactEven(t *testing.T) {
	testExactQuota(t, "quota 1000/DAY, 3000 flat out, even", "1,1,1")
}

// TestClusterQuotaExactSkewed: the same with 80% of the traffic on one node.
func TestClusterQuotaExactSkewed(t *testing.T) {
	testExactQuota(t, "quota 1000/DAY, 3000 flat out, 80/10/10", "80,10,10")
}

// TestClusterQuotaLeaderKilled kills the leader with SIGKILL while a quota
// of 1000 is being spent: the cluster may admit fewer (the dead node's
// grant stays counted as used) but never more.
func TestClusterQuotaLeaderKilled(t *testing.T) {
	up := newNodeUpstream(t)
	nodes := startClusterArgs(t, 3, "--reap-after", "2s")
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": 1000, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)
	leader, leaderID := leaderOf(t, nodes)

	run := startLoad(t, 60*time.Second, "--targets", dataTargets(nodes), "--path", p.path(),
		"--key", p.Key, "--requests", "3000", "--timeout", "5s")
	deadline := time.Now().Add(30 * time.Second)
	for up.count.Load() < 400 {
		select {
		case <-run.done:
			t.Fatalf("the load ended before the upstream saw 400 requests (it saw %d)", up.count.Load())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream saw only %d requests after 30s", up.count.Load())
		}
		time.Sleep(time.Millisecond) // polling the upstream's count
	}
	atKill := up.count.Load()
	leader.kill()
	rep := run.wait()
	got := up.count.Load()
	fw := up.forwarded(nodes)
	logFigures(t, fmt.Sprintf("quota 1000/DAY, 3000 flat out, even, leader %s SIGKILLed at upstream %d", leaderID, atKill), rep, 1000, got, fw)
	var deadFw, deadOK int64
	for i, g := range nodes {
		if g == leader {
			deadFw, deadOK = fw[i], rep.Targets[i].OK
		}
	}
	t.Logf("FIGURES leader killed: upstream %d of 1000 (%d fewer); the dead leader forwarded %d (the tool got %d of those answers), the survivors %d; "+
		"the tool saw 200 %d, 429 quota %d, 503 %d, transport errors %d",
		got, 1000-got, deadFw, deadOK, got-deadFw, rep.Total.OK, rep.Total.QuotaExceed, rep.Total.Unavailable, rep.Total.Errors)

	if got > 1000 {
		t.Errorf("the upstream saw %d requests: over the quota of 1000", got)
	}
	if rep.Total.OK > got {
		t.Errorf("the tool counted %d admitted, more than the upstream's %d", rep.Total.OK, got)
	}
	if rep.Total.Sent != 3000 {
		t.Errorf("sent %d, want 3000", rep.Total.Sent)
	}
	if rep.Total.Throttled != 0 || rep.Total.Forbidden != 0 {
		t.Errorf("a plan without a throttle answered 429 Too Many Requests %d times, 403 %d times", rep.Total.Throttled, rep.Total.Forbidden)
	}
	// The survivors report all they forwarded and agree on the usage; what
	// the dead node forwarded but had not reported is lost to the usage.
	var survivors []*gateway
	for _, g := range nodes {
		if g != leader {
			survivors = append(survivors, g)
		}
	}
	var used []int64
	eventually(t, 15*time.Second, "the survivors' usage to reach what they forwarded, and to agree", func() bool {
		used = used[:0]
		for _, g := range survivors {
			u, _, ok := usageToday(t, g, p)
			if !ok {
				return false
			}
			used = append(used, u)
		}
		return used[0] == used[1] && used[0] >= got-deadFw
	})
	_, remaining, _ := usageToday(t, survivors[0], p)
	t.Logf("FIGURES leader killed: GetUsage on the survivors shows used %d, remaining %d; the upstream saw %d (%d forwarded but never reported)",
		used[0], remaining, got, got-used[0])
	if used[0] > got {
		t.Errorf("GetUsage shows used %d, more than the %d requests the upstream saw", used[0], got)
	}

	// Once the dead node is reaped its grant is settled: what it held stays
	// spent, so the survivors still admit nothing beyond the quota.
	eventually(t, 20*time.Second, "the dead leader to be reaped", func() bool {
		v, ok := survivors[0].cluster()
		return ok && v.Leader != "" && v.voters() == 2
	})
	after := runLoad(t, 60*time.Second, "--targets", dataTargets(survivors), "--path", p.path(),
		"--key", p.Key, "--requests", "300")
	used2, remaining2, _ := usageToday(t, survivors[0], p)
	t.Logf("FIGURES leader killed, after the reap: 300 more requests: 200 %d, 429 quota %d, 503 %d; upstream %d; GetUsage used %d, remaining %d",
		after.Total.OK, after.Total.QuotaExceed, after.Total.Unavailable, up.count.Load(), used2, remaining2)
	if n := up.count.Load(); n > 1000 {
		t.Errorf("after the reap the upstream saw %d requests: over the quota of 1000", n)
	}
	if after.Total.QuotaExceed+after.Total.OK != 300 {
		t.Errorf("after the reap, answers other than 200 and 429 Limit Exceeded: %v", after.Total.Statuses)
	}
}

// startClusterArgs is startCluster with extra serve flags on every node.
func startClusterArgs(t *testing.T, n int, extra ...string) []*gateway {
	t.Helper()
	root := t.TempDir()
	nodes := make([]*gateway, n)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(root, id)
		args := append(loopbackArgs(dir), "--node-id", id, "--bootstrap-expect", fmt.Sprint(n))
		if i > 0 {
			args = append(args, "--join", nodes[0].listening["gossip"])
		}
		nodes[i] = launch(t, append(args, extra...), nil)
		nodes[i].dataDir = dir
		nodes[i].waitListening()
	}
	for _, g := range nodes {
		g.waitReady()
	}
	eventually(t, 30*time.Second, "the voters and a leader", func() bool {
		v, ok := nodes[0].cluster()
		return ok && v.Leader != "" && v.voters() == n
	})
	return nodes
}

// testClusterThrottle offers 600 req/s for 10s to a plan of 100/s burst
// 100 and wants 100·10 + 100 = 1100 admitted, ±10%.
func testClusterThrottle(t *testing.T, nodes []*gateway, up *nodeUpstream, name, spread string) {
	t.Helper()
	before, beforeNodes := up.count.Load(), up.forwarded(nodes)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"throttle": map[string]any{"rateLimit": 100, "burstLimit": 100}})
	waitKeyEverywhere(t, nodes, p)
	rep := runLoad(t, 60*time.Second, "--targets", dataTargets(nodes), "--spread", spread, "--path", p.path(),
		"--key", p.Key, "--rate", "600", "--duration", "10s", "--admin", nodes[0].AdminURL, "--plan", p.PlanID)
	forwarded := up.count.Load() - before
	const want = 100*10 + 100
	perNodeUp := up.forwarded(nodes)
	for i := range perNodeUp {
		perNodeUp[i] -= beforeNodes[i]
	}
	logFigures(t, name, rep, want, forwarded, perNodeUp)
	if rep.Plan != nil && rep.Plan.ThrottleAllows != nil {
		t.Logf("FIGURES %s: over the measured %.2fs the plan allows %.0f (%+.1f%%)", name, rep.DurationSeconds, *rep.Plan.ThrottleAllows, rep.Plan.ErrorPct)
	}

	if dev := math.Abs(float64(rep.Total.OK)-want) / want; dev > 0.10 {
		t.Errorf("%s: admitted %d, want %d ±10%% (off by %.1f%%)", name, rep.Total.OK, want, dev*100)
	}
	if rep.Total.OK != forwarded {
		t.Errorf("%s: the tool counted %d admitted, the upstream %d", name, rep.Total.OK, forwarded)
	}
	if n := rep.Total.Sent - rep.Total.OK - rep.Total.Throttled; n != 0 {
		t.Errorf("%s: %d answers were neither 200 nor 429 Too Many Requests: %v", name, n, rep.Total.Statuses)
	}
	if s := rep.Schedule; s == nil || s.Missed > s.Due/100 {
		t.Errorf("%s: the load tool fell behind its schedule: %+v", name, s)
	}
}

// TestClusterThrottle: rate 100/s burst 100 holds across three nodes for
// an even spread and for 80/10/10.
func TestClusterThrottle(t *testing.T) {
	up := newNodeUpstream(t)
	nodes := startCluster(t, 3)
	testClusterThrottle(t, nodes, up, "throttle 100/s burst 100, 600/s for 10s, even", "1,1,1")
	testClusterThrottle(t, nodes, up, "throttle 100/s burst 100, 600/s for 10s, 80/10/10", "80,10,10")
}

// TestRaftEntriesPerSecond measures how many Raft entries the quota ledger
// needs under load: 5000 req/s for 10s over three nodes, against a plan
// whose quota is never reached. It is run by hand:
//
//	TOLLGATE_LOAD=1 go test ./tests -run TestRaftEntriesPerSecond -v
//
// TOLLGATE_LOAD_RATE and TOLLGATE_LOAD_DURATION change the rate and the
// duration.
func TestRaftEntriesPerSecond(t *testing.T) {
	if os.Getenv("TOLLGATE_LOAD") != "1" {
		t.Skip("a measurement run by hand: set TOLLGATE_LOAD=1")
	}
	rate, duration := "5000", "10s"
	if v := os.Getenv("TOLLGATE_LOAD_RATE"); v != "" {
		rate = v
	}
	if v := os.Getenv("TOLLGATE_LOAD_DURATION"); v != "" {
		duration = v
	}
	up := newNodeUpstream(t)
	nodes := startCluster(t, 3)
	p := setupProduct(t, nodes[0], up.URL, map[string]any{"quota": map[string]any{"limit": 1_000_000_000, "period": "DAY"}})
	waitKeyEverywhere(t, nodes, p)
	leader, leaderID := leaderOf(t, nodes)

	read := func() (applied uint64, batches, groups float64) {
		v, ok := leader.cluster()
		if !ok {
			t.Fatal("GET /cluster on the leader failed")
		}
		for _, g := range nodes {
			batches += metric(t, g, "tollgate_quota_batches_total")
		}
		return v.Applied, batches, metric(t, leader, "tollgate_ledger_group_commits_total")
	}

	// Idle: what the cluster writes with no traffic (a measurement window).
	idleA, _, _ := read()
	idleStart := time.Now()
	time.Sleep(2 * time.Second)
	idleB, _, _ := read()
	idleRate := float64(idleB-idleA) / time.Since(idleStart).Seconds()

	a0, b0, g0 := read()
	rep := runLoad(t, 10*time.Minute, "--targets", dataTargets(nodes), "--path", p.path(), "--key", p.Key,
		"--rate", rate, "--duration", duration, "--concurrency", "512")
	a1, b1, g1 := read()
	entries := a1 - a0
	logFigures(t, "raft load, "+rate+"/s for "+duration, rep, float64(rep.Total.Sent), up.count.Load(), up.forwarded(nodes))
	t.Logf("FIGURES raft: %d entries in %.2fs = %.1f entries/s at %.0f req/s offered, %.0f admitted/s (%.1f requests per entry); "+
		"%.0f ledger batches from the nodes, %.0f group commits on the leader %s; idle %.1f entries/s",
		entries, rep.DurationSeconds, float64(entries)/rep.DurationSeconds, rep.OfferedRate, rep.AdmittedRate,
		float64(rep.Total.OK)/math.Max(float64(entries), 1), b1-b0, g1-g0, leaderID, idleRate)
	if rep.Total.OK == 0 || entries == 0 {
		t.Fatalf("nothing was admitted or applied: %d admitted, %d entries", rep.Total.OK, entries)
	}
	if rep.Total.OK != rep.Total.Sent {
		t.Errorf("a quota that is never reached refused requests: %v (first error %q)", rep.Total.Statuses, rep.Total.FirstError)
	}
}

// metric reads one unlabelled sample from a node's /metrics (0 if absent).
func metric(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	r := g.admin("GET", "/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %d", r.Status)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	return 0
}
