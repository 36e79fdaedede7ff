package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// makeImages runs make images with the given tags, as a user would
// (it leaves the two static binaries in the work tree, which git ignores).
func makeImages(t *testing.T, tollgateTag, caddyTag string) {
	t.Helper()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tollgateTag, caddyTag).Run() })
	out, err := exec.Command("make", "-C", "..", "images", "TOLLGATE_IMAGE="+tollgateTag, "CADDY_IMAGE="+caddyTag).CombinedOutput()
	if err != nil {
		t.Fatalf("make images: %v\n%s", err, out)
	}
}

// runContainer creates, connects and starts a container on network with
// the given aliases and docker create arguments; it is removed when the
// test ends, its log printed first if the test failed.
func runContainer(t *testing.T, name, network string, aliases []string, args ...string) {
	t.Helper()
	docker(t, append([]string{"create", "--name", name}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "logs", "--tail", "30", name).CombinedOutput()
			t.Logf("%s log:\n%s", name, logs)
		}
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
	connect := []string{"network", "connect"}
	for _, a := range aliases {
		connect = append(connect, "--alias", a)
	}
	docker(t, append(connect, network, name)...)
	docker(t, "start", name)
}

// lbAnswer is what one request through the load balancer got.
type lbAnswer struct {
	status int
	// tollgate: a node answered (with its request id header), not Caddy.
	tollgate bool
	err      error
}

func lbGet(c *http.Client, url string) lbAnswer {
	resp, err := c.Get(url)
	if err != nil {
		return lbAnswer{err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return lbAnswer{status: resp.StatusCode, tollgate: resp.Header.Get("X-Amzn-Requestid") != ""}
}

// proxyRequests is a node's tollgate_proxy_requests_total, summed over
// its labels, read from its admin API.
func proxyRequests(t *testing.T, g *gateway) int {
	t.Helper()
	r := g.admin("GET", "/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	total := 0
	for line := range strings.Lines(string(r.Body)) {
		if !strings.HasPrefix(line, "tollgate_proxy_requests_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += int(v)
	}
	return total
}

// TestCaddyLoadBalancer builds both images with make images, and runs
// the load balancer's (deploy/caddy) in front of three Tollgate nodes named tg1..tg3 on a Docker network the
// test creates, with the Caddyfile as shipped. Requests go through to
// every node (so Caddy's health check on each node's admin /healthz
// passes the admin API's Host check); with tg1 killed, no request fails
// (Caddy tries another node); with tg2 frozen (docker pause: connections
// hang rather than fail), requests stop reaching it once the active
// health check has marked it down.
func TestCaddyLoadBalancer(t *testing.T) {
	needDocker(t)
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	image, lbImage := "tollgate:test-"+id, "tollgate-caddy:test-"+id
	makeImages(t, image, lbImage)
	network := "tglb-" + id
	testNetwork(t, network, "10.215", r[0], "")

	// Three independent nodes (each a cluster of one): the load balancer
	// sees nothing of the cluster, only data planes and /healthz.
	nodes, names := make([]*gateway, 3), make([]string, 3)
	for i := range 3 {
		names[i] = fmt.Sprintf("tglb-%s-tg%d", id, i+1)
		runContainer(t, names[i], network, []string{fmt.Sprintf("tg%d", i+1)},
			"-p", "127.0.0.1::9090", image,
			"serve", "--data-dir", "/data", "--raft-fast",
			"--admin-listen", "0.0.0.0:9090", "--admin-insecure", "--admin-host", "127.0.0.1")
		nodes[i] = &gateway{t: t, AdminURL: "http://" + strings.Split(docker(t, "port", names[i], "9090/tcp"), "\n")[0]}
	}
	lbName := "tglb-" + id + "-caddy"
	runContainer(t, lbName, network, nil, "-p", "127.0.0.1::8080", lbImage)
	lb := "http://" + strings.Split(docker(t, "port", lbName, "8080/tcp"), "\n")[0] + "/no/such/api"

	c := &http.Client{Timeout: 2 * time.Second}
	before := make([]int, 3)
	for i, g := range nodes {
		eventually(t, 60*time.Second, names[i]+" ready", func() bool { return g.admin("GET", "/healthz", nil).Status == 200 })
		before[i] = proxyRequests(t, g)
	}
	// Caddy's first health checks may have run before the nodes were
	// ready: wait until every node has answered through it.
	eventually(t, 30*time.Second, "requests through the load balancer reach all three nodes", func() bool {
		if a := lbGet(c, lb); !a.tollgate {
			return false
		}
		for i, g := range nodes {
			if proxyRequests(t, g) == before[i] {
				return false
			}
		}
		return true
	})
	if a := lbGet(c, lb); !a.tollgate || a.status != http.StatusForbidden {
		t.Fatalf("through the load balancer: %+v, want a node's 403 (no API key)", a)
	}

	// tg1 dies: connections to it fail, Caddy tries another node at once.
	docker(t, "kill", names[0])
	for i := range 15 {
		if a := lbGet(c, lb); !a.tollgate {
			t.Fatalf("request %d after tg1 was killed: %+v, want a node's answer (Caddy retries on another node)", i, a)
		}
	}

	// tg2 freezes: a request sent to it hangs (past the client's 2s) until
	// the active health check (every 2s, 1s timeout) marks it down; then
	// every request goes to tg3, quickly.
	docker(t, "pause", names[1])
	t.Cleanup(func() { _ = exec.Command("docker", "unpause", names[1]).Run() })
	const run = 12
	var start time.Time
	eventually(t, 30*time.Second, fmt.Sprintf("%d requests in a row answered by a node within 2s", run), func() bool {
		start = time.Now()
		tg3 := proxyRequests(t, nodes[2])
		for range run {
			if a := lbGet(c, lb); !a.tollgate || a.err != nil {
				return false
			}
		}
		return proxyRequests(t, nodes[2])-tg3 == run
	})
	t.Logf("with tg2 paused, %d requests answered in %s, all by tg3", run, time.Since(start).Round(time.Millisecond))
}
