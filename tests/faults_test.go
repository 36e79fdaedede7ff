package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fault suite runs the repository's docker-compose.yml (three nodes
// behind Caddy, the demo upstream as the oracle) and injects one fault per
// scenario under load through the load balancer. Each scenario has a usage
// plan and a key of its own, and checks:
//   - the upstream received at most the quota for the key (it counts by
//     the X-Tollgate-Key-Id each node sets);
//   - no acknowledged usage is lost: GetUsage ends equal to the upstream's
//     count, short only by what a SIGKILLed node admitted in its last
//     report interval or had in flight;
//   - clients see only 200, 429, and 502/503/504 while a node cannot serve:
//     never 403, 500 or another status, and no failed connection once the
//     load balancer had time to notice the fault;
//   - the load balancer stops sending to a node that cannot serve within
//     its health check interval and timeout (2s + 1s, deploy/caddy).
//
// It prints one row per scenario: offered, admitted (200s clients saw),
// quota, upstream count, usage, client-seen non-200 answers by status,
// when the load balancer last sent a request to the faulty node, and the
// recovery time.

// lbDetect is how long after a fault the load balancer may still send
// requests to a node that cannot serve: its health check interval (2s)
// and timeout (1s), and a second for the check's own scheduling.
const lbDetect = 4 * time.Second

// slowRequest is a request that took longer than any answer of a healthy
// path: a node's 503 after waiting for a quota grant comes at 2s.
const slowRequest = 2500 * time.Millisecond

// loadResult is one request of the load.
type loadResult struct {
	start  time.Time
	took   time.Duration
	status int    // 0: no answer (a failed connection, a timeout)
	node   string // the node that forwarded a 200 (the echo's answer)
	err    string
}

// load sends GETs with one key through the load balancer at a steady
// rate, from a few workers, until stopped or for at most max.
type load struct {
	mu      sync.Mutex
	results []loadResult
	stop    chan struct{}
	done    chan struct{}
}

func startLBLoad(url, key string, rate int, max time.Duration) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	ticks := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range ticks {
				l.add(loadGet(c, url, key))
			}
		})
	}
	go func() {
		defer close(l.done)
		defer wg.Wait()
		defer close(ticks)
		tk := time.NewTicker(time.Second / time.Duration(rate))
		defer tk.Stop()
		end := time.After(max)
		for {
			select {
			case <-l.stop:
				return
			case <-end:
				return
			case <-tk.C:
				select {
				case ticks <- struct{}{}:
				default: // every worker busy: this request is not offered
				}
			}
		}
	}()
	return l
}

func loadGet(c *http.Client, url, key string) loadResult {
	r := loadResult{start: time.Now()}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("x-api-key", key)
	resp, err := c.Do(req)
	if err != nil {
		r.took, r.err = time.Since(r.start), err.Error()
		return r
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r.took, r.status = time.Since(r.start), resp.StatusCode
	if r.status == http.StatusOK {
		var echo struct {
			Node string `json:"node"`
		}
		_ = json.Unmarshal(body, &echo)
		r.node = echo.Node
	}
	return r
}

func (l *load) add(r loadResult) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

func (l *load) snapshot() []loadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// finish stops the load and waits for its requests to end.
func (l *load) finish() []loadResult {
	close(l.stop)
	<-l.done
	return l.snapshot()
}

// countOf is how many results satisfy f.
func countOf(rs []loadResult, f func(loadResult) bool) int {
	n := 0
	for _, r := range rs {
		if f(r) {
			n++
		}
	}
	return n
}

// faultRow is one scenario's figures.
type faultRow struct {
	name              string
	offered, admitted int
	quota             int
	upstream, usage   int64
	lost              int         // usage a killed node may not have reported
	codes             map[int]int // non-200 answers by status; 0: no answer
	lastSent          time.Duration
	recovery          time.Duration
}

func (r faultRow) String() string {
	var codes []string
	for _, c := range slices.Sorted(func(yield func(int) bool) {
		for c := range r.codes {
			if !yield(c) {
				return
			}
		}
	}) {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "none"
		}
		codes = append(codes, fmt.Sprintf("%s:%d", name, r.codes[c]))
	}
	usage := fmt.Sprint(r.usage)
	if r.lost > 0 {
		usage += fmt.Sprintf(" (≥ %d)", r.upstream-int64(r.lost))
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %s | %s | %s | %s |", r.name, r.offered, r.admitted, r.quota,
		r.upstream, usage, strings.Join(codes, " "), r.lastSent.Round(100*time.Millisecond), r.recovery.Round(100*time.Millisecond))
}

// faultCluster is the compose project under test, with what the
// scenarios share.
type faultCluster struct {
	p     *composeProject
	token string
	api   string
	rows  []faultRow
}

// adminGet sends an authenticated GET to node i's admin API without
// failing the test when the node does not answer.
func (c *faultCluster) adminGet(i int, path string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, c.p.admin[i].AdminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// node returns node i's admin API for t (whose failures end t).
func (c *faultCluster) node(t *testing.T, i int) *gateway {
	return &gateway{t: t, AdminURL: c.p.admin[i].AdminURL, Token: c.token}
}

// container is the id of service's container.
func (c *faultCluster) container(t *testing.T, service string) string {
	t.Helper()
	out, err := c.p.run("ps", "-q", service)
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("docker-compose ps -q %s: %v\n%s", service, err, out)
	}
	return strings.TrimSpace(out)
}

// leader is the index of the leader as node i sees it, -1 when it knows
// none or does not answer.
func (c *faultCluster) leader(i int) int {
	st, b := c.adminGet(i, "/cluster")
	var v clusterView
	if st != 200 || json.Unmarshal(b, &v) != nil || len(v.Leader) != 3 || !strings.HasPrefix(v.Leader, "tg") {
		return -1
	}
	return int(v.Leader[2] - '1')
}

// whole tells whether every node answers /healthz 200 and node 0 sees
// three voters, all alive, and a leader.
func (c *faultCluster) whole() bool {
	for i := range 3 {
		if st, _ := c.adminGet(i, "/healthz"); st != 200 {
			return false
		}
	}
	st, b := c.adminGet(0, "/cluster")
	var v clusterView
	if st != 200 || json.Unmarshal(b, &v) != nil || v.Leader == "" || v.voters() != 3 {
		return false
	}
	for _, m := range v.Members {
		if m.Gossip != "alive" {
			return false
		}
	}
	return true
}

// upstreamCounts reads the demo upstream's counts, from inside the
// compose network (the upstream publishes no port): through a stage whose
// url is the counts route.
func (c *faultCluster) upstreamCounts(t *testing.T) (byKey, byNode map[string]int64) {
	t.Helper()
	var counts struct {
		ByKey  map[string]int64 `json:"byKey"`
		ByNode map[string]int64 `json:"byNode"`
	}
	eventually(t, 30*time.Second, "the upstream's counts", func() bool {
		resp, err := client.Get(c.p.DataURL + "/" + c.api + "/counts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&counts) == nil && counts.ByKey != nil
	})
	return counts.ByKey, counts.ByNode
}

// proxyRequests is node i's tollgate_proxy_requests_total, summed over its
// labels; false when the node does not answer.
func (c *faultCluster) proxyRequests(i int) (int, bool) {
	st, b := c.adminGet(i, "/metrics")
	if st != 200 {
		return 0, false
	}
	total := 0
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); strings.HasPrefix(line, "tollgate_proxy_requests_total{") && len(f) > 1 {
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, false
			}
			total += int(v)
		}
	}
	return total, true
}

// scenarioKey makes a plan with quota on the data stage and a key in it.
func (c *faultCluster) scenarioKey(t *testing.T, quota int) product {
	t.Helper()
	// write sends a change to the first node that takes it: a node may
	// stop serving between its /healthz and the write (a full disk).
	write := func(path string, body any) map[string]any {
		var out map[string]any
		var last apiResp
		eventually(t, 30*time.Second, "a node to take POST "+path, func() bool {
			for i := range 3 {
				last = c.node(t, i).admin("POST", path, body)
				if last.Status == 201 {
					out = last.JSON(t)
					return true
				}
			}
			return false
		})
		return out
	}
	p := product{APIID: c.api, Stage: "data"}
	p.PlanID = write("/usageplans", map[string]any{"name": t.Name(),
		"quota":     map[string]any{"limit": quota, "period": "DAY"},
		"apiStages": []map[string]any{{"apiId": c.api, "stage": "data"}}})["id"].(string)
	key := write("/apikeys", map[string]any{"name": t.Name(), "enabled": true})
	p.KeyID, p.Key = key["id"].(string), key["value"].(string)
	write("/usageplans/"+p.PlanID+"/keys", map[string]any{"keyId": p.KeyID, "keyType": "API_KEY"})
	return p
}

// usage is the key's usage today as any node reports it, -1 when none
// answers.
func (c *faultCluster) usage(t *testing.T, p product) int64 {
	for i := range 3 {
		today := time.Now().UTC().Format("2006-01-02")
		st, b := c.adminGet(i, "/usageplans/"+p.PlanID+"/usage?keyId="+p.KeyID+"&startDate="+today+"&endDate="+today)
		if st != 200 {
			continue
		}
		var u struct {
			Values map[string][][2]int64 `json:"values"`
		}
		if err := json.Unmarshal(b, &u); err != nil {
			t.Fatalf("GetUsage: %v: %s", err, b)
		}
		if days := u.Values[p.KeyID]; len(days) == 1 {
			return days[0][0]
		}
		return 0
	}
	return -1
}

// fault is one scenario's fault: it injects it (at the returned time),
// heals it, and returns when it healed and which node it hit. It runs
// under load.
type fault struct {
	name  string
	quota int
	// killed: the victim was SIGKILLed, so usage may lack what it admitted
	// in its last report interval or had in flight.
	killed bool
	run    func(t *testing.T, c *faultCluster) (victim int, at, healed time.Time)
}

// TestFaults brings up docker-compose.yml and runs each fault under load
// through the load balancer (see the top of this file for what each
// checks). It needs Docker and docker-compose; the whole suite runs in
// about five minutes.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite runs the compose cluster")
	}
	p := composeUp(t)
	c := &faultCluster{p: p}
	out, err := p.run("run", "--rm", "-T", "pki", "admin-credentials", "token", "--file", "/pki/admin.credentials")
	if err != nil {
		t.Fatalf("token: %v\n%s", err, out)
	}
	f := strings.Fields(out)
	c.token = f[len(f)-1]
	eventually(t, 90*time.Second, "the cluster to be whole", c.whole)
	g := c.node(t, 0)
	c.api = g.mustAdmin("POST", "/restapis", map[string]any{"name": "faults"}, 201)["id"].(string)
	g.mustAdmin("POST", "/restapis/"+c.api+"/deployments", map[string]any{"stageName": "data", "variables": map[string]string{"url": "http://upstream:3000/"}}, 201)
	g.mustAdmin("POST", "/restapis/"+c.api+"/deployments", map[string]any{"stageName": "counts", "variables": map[string]string{"url": "http://upstream:3000/_upstream/requests"}}, 201)
	g.mustAdmin("PATCH", "/restapis/"+c.api+"/stages/counts", map[string]any{"patchOperations": []map[string]string{
		{"op": "replace", "path": "/apiKeyRequired", "value": "false"}}}, 200)
	t.Cleanup(func() {
		var b strings.Builder
		b.WriteString("\n| scenario | offered | admitted | quota | upstream | usage | other answers | LB last sent to the node | recovery |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range c.rows {
			b.WriteString(r.String() + "\n")
		}
		t.Log(b.String())
	})

	only := os.Getenv("TOLLGATE_FAULTS") // a comma-separated list of scenario numbers: run only those
	pick := func(name string) bool {
		return only == "" || slices.Contains(strings.Split(only, ","), name[:1])
	}
	for _, f := range faults {
		if f.name == "6-rolling-upgrade" && pick("5") && !t.Run("5-down-up", c.downUp) {
			return
		}
		if !pick(f.name) {
			continue
		}
		if !t.Run(f.name, func(t *testing.T) { c.runFault(t, f) }) {
			return // a later fault on a broken cluster says nothing
		}
	}
}

// runFault runs f under load and checks the promises.
func (c *faultCluster) runFault(t *testing.T, f fault) {
	eventually(t, 90*time.Second, "the cluster to be whole before the fault", c.whole)
	p := c.scenarioKey(t, f.quota)
	url := c.p.DataURL + "/" + c.api + "/data/x"
	eventually(t, 30*time.Second, "the new key to be admitted through the load balancer", func() bool {
		return loadGet(client, url, p.Key).status == 200
	})
	l := startLBLoad(url, p.Key, 50, 4*time.Minute)
	// A little traffic first, so that every node holds units.
	warm := time.Now()
	eventually(t, 20*time.Second, "200s before the fault", func() bool {
		return countOf(l.snapshot(), func(r loadResult) bool { return r.status == 200 }) >= 50 && time.Since(warm) > 2*time.Second
	})
	victim, at, healed := f.run(t, c)
	victimName := fmt.Sprintf("tg%d", victim+1)

	// Recovery: the cluster whole again and the victim serving requests
	// through the load balancer.
	eventually(t, 60*time.Second, "the cluster to be whole after the fault", c.whole)
	base := -1
	eventually(t, 60*time.Second, victimName+" to serve requests through the load balancer", func() bool {
		n, ok := c.proxyRequests(victim)
		if base < 0 && ok {
			base = n
		}
		return ok && n > base
	})
	recovered := time.Now()
	// Then until the quota is used up (bounded by the load's own end).
	exhaustedBy := time.Now().Add(60 * time.Second)
	for time.Now().Before(exhaustedBy) && countOf(l.snapshot(), func(r loadResult) bool { return r.status == 429 }) < 20 {
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	rs := l.finish()

	row := faultRow{name: f.name, offered: len(rs), quota: f.quota, codes: map[int]int{}, recovery: recovered.Sub(healed)}
	for _, r := range rs {
		if r.status == 200 {
			row.admitted++
		} else {
			row.codes[r.status]++
		}
	}
	// The load balancer: the last request after the fault that failed, or
	// hung, which is one it sent to the faulty node.
	for _, r := range rs {
		if r.start.After(at) && r.start.Before(healed) && (r.status == 0 || r.status == 502 || r.status == 504 || (r.took > slowRequest && r.status != 503)) {
			row.lastSent = max(row.lastSent, r.start.Sub(at))
		}
	}

	// Usage: equal to the upstream's count once reported (every node
	// reports within a second); a SIGKILLed node's last interval is lost.
	byKey, _ := c.upstreamCounts(t)
	row.upstream = byKey[p.KeyID]
	// What a killed node admitted and never reported: its 200s that came
	// back in its last report interval and a half before it died (at is
	// when docker kill returned), and requests in flight when it died.
	lost := 0
	if f.killed {
		lost = countOf(rs, func(r loadResult) bool {
			end := r.start.Add(r.took)
			near := end.After(at.Add(-1500 * time.Millisecond))
			return (r.node == victimName && near && end.Before(healed)) || (r.node != victimName && near && r.start.Before(at) && end.After(at))
		})
		row.lost = lost
	}
	// Settled: at least what must be there, and unchanged for a second
	// (reports come every 500ms).
	settled, same := time.Now().Add(20*time.Second), 0
	for prev := int64(-1); same < 4 && time.Now().Before(settled); prev = row.usage {
		if row.usage = c.usage(t, p); row.usage == prev && row.usage >= row.upstream-int64(lost) {
			same++
		} else {
			same = 0
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	c.rows = append(c.rows, row)
	t.Log(row)

	if row.upstream > int64(f.quota) {
		t.Errorf("the upstream received %d requests with the key; its quota is %d", row.upstream, f.quota)
	}
	// A node that admitted a request and could not forward it (cut off,
	// or dying) counts it: usage may pass the upstream's count by the
	// requests clients saw fail.
	failed := int64(row.codes[0] + row.codes[502] + row.codes[504])
	if row.usage > row.upstream+failed || row.usage < row.upstream-int64(lost) {
		t.Errorf("GetUsage says %d; the upstream received %d (at most %d may be lost with a killed node, at most %d more counted for requests that failed)",
			row.usage, row.upstream, lost, failed)
	}
	if int64(row.admitted) > row.upstream {
		t.Errorf("clients saw %d 200s; the upstream received %d", row.admitted, row.upstream)
	}
	for code, n := range row.codes {
		switch code {
		case 0, 429, 502, 503, 504:
		default:
			t.Errorf("clients saw %d answers %d (only 200, 429, 502, 503, 504 may be seen)", n, code)
		}
	}
	for _, r := range rs {
		late := r.start.After(at.Add(lbDetect))
		if late && (r.status == 0 || r.status == 502 || r.status == 504 || (r.took > slowRequest && r.status != 503)) {
			t.Errorf("a request %s after the fault: status %d in %s (%s); the load balancer should have stopped sending to %s within %s",
				r.start.Sub(at).Round(time.Millisecond), r.status, r.took.Round(time.Millisecond), r.err, victimName, lbDetect)
			break
		}
		if r.status == 0 && !r.start.After(at.Add(-time.Second)) {
			t.Errorf("a request before the fault failed: %s", r.err)
			break
		}
	}
}

// faultFollower is a node other than the leader (as node 0, else 1, sees it).
func faultFollower(t *testing.T, c *faultCluster) (follower, leader int) {
	t.Helper()
	eventually(t, 30*time.Second, "a leader", func() bool {
		leader = max(c.leader(0), c.leader(1))
		return leader >= 0
	})
	return (leader + 1) % 3, leader
}

func faultLeader(t *testing.T, c *faultCluster) int {
	_, l := faultFollower(t, c)
	return l
}

// otherThan is a node index other than i.
func otherThan(i int) int { return (i + 1) % 3 }

// newLeader waits until a node other than old sees a leader other than old.
func newLeader(t *testing.T, c *faultCluster, old int) {
	t.Helper()
	eventually(t, 30*time.Second, "a new leader", func() bool {
		l := c.leader(otherThan(old))
		return l >= 0 && l != old
	})
}

// killAndRestart SIGKILLs node i's container under load, keeps it down
// for hold, and starts it again.
func killAndRestart(t *testing.T, c *faultCluster, i int, hold func()) (time.Time, time.Time) {
	t.Helper()
	id := c.container(t, fmt.Sprintf("tg%d", i+1))
	docker(t, "kill", "-s", "KILL", id)
	at := time.Now()
	hold()
	healed := time.Now()
	docker(t, "start", id)
	return at, healed
}

// holdFor returns a hold that waits d (the fault lasting under load).
func holdFor(d time.Duration) func() {
	return func() { <-time.After(d) }
}

var faults = []fault{
	{name: "1-follower-killed", quota: 1000, killed: true, run: func(t *testing.T, c *faultCluster) (int, time.Time, time.Time) {
		v, _ := faultFollower(t, c)
		at, healed := killAndRestart(t, c, v, holdFor(6*time.Second))
		return v, at, healed
	}},
	{name: "2-leader-killed", quota: 1000, killed: true, run: func(t *testing.T, c *faultCluster) (int, time.Time, time.Time) {
		v := faultLeader(t, c)
		at, healed := killAndRestart(t, c, v, func() {
			newLeader(t, c, v)
			<-time.After(3 * time.Second) // serving on two nodes
		})
		return v, at, healed
	}},
	{name: "3-leader-paused", quota: 1000, run: func(t *testing.T, c *faultCluster) (int, time.Time, time.Time) {
		v := faultLeader(t, c)
		id := c.container(t, fmt.Sprintf("tg%d", v+1))
		at := time.Now()
		docker(t, "pause", id)
		t.Cleanup(func() { _ = exec.Command("docker", "unpause", id).Run() })
		newLeader(t, c, v) // past the election timeout
		<-time.After(3 * time.Second)
		healed := time.Now()
		docker(t, "unpause", id)
		return v, at, healed
	}},
	{name: "4-follower-disconnected", quota: 1000, run: func(t *testing.T, c *faultCluster) (int, time.Time, time.Time) {
		v, _ := faultFollower(t, c)
		service := fmt.Sprintf("tg%d", v+1)
		id := c.container(t, service)
		network := c.p.name + "_default"
		ip := docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", id)
		at := time.Now()
		docker(t, "network", "disconnect", network, id)
		<-time.After(8 * time.Second)
		healed := time.Now()
		docker(t, "network", "connect", "--alias", service, network, id)
		if got := docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", id); got != ip {
			t.Logf("%s came back on %s (was %s)", service, got, ip)
		}
		return v, at, healed
	}},
	{name: "6-rolling-upgrade", quota: 2000, run: rollingUpgrade},
	{name: "7-follower-volume-full", quota: 1500, run: volumeFull},
}

// volumeFull gives a follower a data volume of 8 MiB (a tmpfs) on a fresh
// data dir, lets it catch up, fills the volume, and makes the cluster
// write: the node says so in its log and stops serving, while the others
// take writes, and a key created after the volume filled is admitted
// through the load balancer every time (no node answers it from a stale
// state). Then the node gets its own volume back.
func volumeFull(t *testing.T, c *faultCluster) (int, time.Time, time.Time) {
	t.Helper()
	v, _ := faultFollower(t, c)
	service := fmt.Sprintf("tg%d", v+1)
	dir := t.TempDir()
	override := filepath.Join(dir, "small-volume.yml")
	if err := writeFile(override, fmt.Sprintf(`services:
  %[1]s:
    volumes: ["pki:/pki:ro", "%[1]ssmall:/data"]
volumes:
  %[1]ssmall:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=8m,uid=65532,gid=65532,mode=0700"}
`, service)); err != nil {
		t.Fatal(err)
	}
	up := func(files ...string) {
		args := []string{"-p", c.p.name}
		for _, f := range files {
			args = append(args, "-f", f)
		}
		// Removed first: docker-compose would give a recreated container
		// the volumes of the one it replaces.
		for _, step := range [][]string{{"rm", "-s", "-f", service}, {"up", "-d", "--no-deps", service}} {
			cmd := exec.Command("docker-compose", append(slices.Clone(args), step...)...)
			cmd.Env = c.p.env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("docker-compose %s: %v\n%s", strings.Join(step, " "), err, out)
			}
		}
	}
	at := time.Now()
	up("../docker-compose.yml", override)
	eventually(t, 60*time.Second, service+" on a small volume to catch up", c.whole)

	// Fill the volume, then write.
	fill := filepath.Join(dir, "fill")
	if err := os.WriteFile(fill, make([]byte, 9<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "cp", fill, c.container(t, service)+":/data/fill").CombinedOutput(); err == nil {
		t.Fatalf("docker cp of 9 MiB to an 8 MiB volume succeeded: %s; mounts %s", out, docker(t, "inspect", "-f", "{{json .Mounts}}", c.container(t, service)))
	}
	g := c.node(t, otherThan(v))
	k := c.scenarioKey(t, 100)
	for i := range 20 {
		g.mustAdmin("POST", "/usageplans", map[string]any{"name": fmt.Sprintf("after-full-%d", i)}, 201)
	}
	eventually(t, 30*time.Second, service+" to say its volume is full", func() bool {
		logs, _ := c.p.run("logs", "--no-color", service)
		return strings.Contains(logs, "no space left on device")
	})
	eventually(t, 30*time.Second, service+" to stop answering /healthz 200", func() bool {
		st, _ := c.adminGet(v, "/healthz")
		return st != 200
	})
	url := c.p.DataURL + "/" + c.api + "/data/x"
	eventually(t, 30*time.Second, "the key created after the volume filled to be admitted", func() bool {
		return loadGet(client, url, k.Key).status == 200
	})
	for i := range 30 {
		if r := loadGet(client, url, k.Key); r.status != 200 {
			t.Fatalf("request %d with a key created after %s's volume filled: %d %s", i, service, r.status, r.err)
		}
	}
	healed := time.Now()
	up("../docker-compose.yml")
	return v, at, healed
}

// rollingUpgrade builds the node image again as another version and
// replaces the nodes one at a time (docker-compose up on one service with
// the new image: a graceful stop, then a new container on the same
// volume), each once the cluster is whole again.
func rollingUpgrade(t *testing.T, c *faultCluster) (int, time.Time, time.Time) {
	t.Helper()
	image := c.p.image + "-next"
	// Removed when the whole suite ends: the nodes run it from now on.
	c.p.t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })
	out, err := exec.Command("make", "-C", "..", "images", "VERSION=v-next", "TOLLGATE_IMAGE="+image, "CADDY_IMAGE="+c.p.lbImage).CombinedOutput()
	if err != nil {
		t.Fatalf("make images: %v\n%s", err, out)
	}
	at := time.Now()
	env := append(slices.Clone(c.p.env), "TOLLGATE_IMAGE="+image)
	for i := range 3 {
		service := fmt.Sprintf("tg%d", i+1)
		if i > 0 {
			eventually(t, 60*time.Second, "the cluster to be whole before replacing "+service, c.whole)
		}
		cmd := exec.Command("docker-compose", "-p", c.p.name, "-f", "../docker-compose.yml", "up", "-d", "--no-deps", service)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker-compose up %s: %v\n%s", service, err, out)
		}
		if got := docker(t, "inspect", "-f", "{{.Config.Image}}", c.container(t, service)); got != image {
			t.Fatalf("%s runs %s, want %s", service, got, image)
		}
		// The next one once the load balancer sends to this one again.
		eventually(t, 60*time.Second, service+" to serve through the load balancer", func() bool {
			n, ok := c.proxyRequests(i)
			return ok && n > 0
		})
	}
	eventually(t, 60*time.Second, "every node to say it runs v-next", func() bool {
		logs, _ := c.p.run("logs", "--no-color", "tg1", "tg2", "tg3")
		return strings.Count(logs, "version=v-next") == 3
	})
	c.p.env = env // the cluster runs the new image from now on
	return 2, at, time.Now()
}

// downUp stops the whole cluster (docker-compose down, the volumes kept)
// and starts it again (new containers, new addresses): every plan, key
// and usage figure is kept, and the quota holds across.
func (c *faultCluster) downUp(t *testing.T) {
	const quota = 600
	eventually(t, 90*time.Second, "the cluster to be whole", c.whole)
	p := c.scenarioKey(t, quota)
	url := c.p.DataURL + "/" + c.api + "/data/x"
	eventually(t, 30*time.Second, "the new key to be admitted through the load balancer", func() bool {
		return loadGet(client, url, p.Key).status == 200
	})
	l := startLBLoad(url, p.Key, 50, 4*time.Second)
	<-l.done
	before := l.snapshot()
	byKey, _ := c.upstreamCounts(t)
	upstream1 := byKey[p.KeyID]
	eventually(t, 20*time.Second, "usage to reach the upstream's count before the stop", func() bool { return c.usage(t, p) == upstream1 })

	if out, err := c.p.run("down", "--timeout", "10"); err != nil {
		t.Fatalf("docker-compose down: %v\n%s", err, out)
	}
	healed := time.Now()
	if out, err := c.p.run("up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	eventually(t, 90*time.Second, "the key to be admitted after the cluster came back", func() bool {
		return loadGet(client, url, p.Key).status == 200
	})
	recovered := time.Now()
	eventually(t, 90*time.Second, "the cluster to be whole after down and up", c.whole)
	if got := c.usage(t, p); got < upstream1 {
		t.Fatalf("after down and up GetUsage says %d; %d were reported before", got, upstream1)
	}
	l = startLBLoad(url, p.Key, 50, 60*time.Second)
	exhaustedBy := time.Now().Add(60 * time.Second)
	for time.Now().Before(exhaustedBy) && countOf(l.snapshot(), func(r loadResult) bool { return r.status == 429 }) < 20 {
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	rs := append(before, l.finish()...)
	byKey, _ = c.upstreamCounts(t) // the upstream restarted: its counts are since the up
	row := faultRow{name: "5-down-up", offered: len(rs), quota: quota, codes: map[int]int{},
		upstream: upstream1 + byKey[p.KeyID], recovery: recovered.Sub(healed)}
	for _, r := range rs {
		if r.status == 200 {
			row.admitted++
		} else {
			row.codes[r.status]++
		}
	}
	settled := time.Now().Add(20 * time.Second)
	for row.usage = c.usage(t, p); row.usage != row.upstream && time.Now().Before(settled); row.usage = c.usage(t, p) {
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	c.rows = append(c.rows, row)
	t.Log(row)
	if row.upstream > quota {
		t.Errorf("the upstream received %d requests with the key; its quota is %d", row.upstream, quota)
	}
	if row.usage != row.upstream {
		t.Errorf("GetUsage says %d; the upstream received %d", row.usage, row.upstream)
	}
	for code, n := range row.codes {
		if code != 429 {
			t.Errorf("clients saw %d answers %d while the cluster was up", n, code)
		}
	}
}
