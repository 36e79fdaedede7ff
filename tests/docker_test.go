package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docker runs the docker CLI and returns its trimmed output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// needDocker skips without a Docker engine, except in CI, where the
// engine is part of the machine and its absence is a failure.
func needDocker(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Docker engine in CI: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
}

// buildImage builds the FROM-scratch image around the test binary, with
// the repository's Dockerfile.
func buildImage(t *testing.T, tag string) {
	t.Helper()
	ctx := t.TempDir()
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("../Dockerfile", filepath.Join(ctx, "Dockerfile"))
	copyFile("../deploy/data/README", filepath.Join(ctx, "deploy/data/README"))
	copyFile("../deploy/pki/README", filepath.Join(ctx, "deploy/pki/README"))
	copyFile(binary, filepath.Join(ctx, "tollgate"))
	docker(t, "build", "-q", "-t", tag, ctx)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
}

// TestDockerPartition runs three nodes in containers built FROM scratch on
// a Docker network the test creates, then cuts the leader off the network
// (it stays reachable from the host through Docker's default bridge):
// the isolated node admits quota-limited requests only from the units it
// holds, then answers 503; the majority elects a leader and goes on; the
// quota is never exceeded; after the heal the isolated node catches up.
func TestDockerPartition(t *testing.T) {
	needDocker(t)
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	image := "tollgate:test-" + id
	buildImage(t, image)

	// A network of our own, on a private subnet.
	network := "tgtest-" + id
	subnet := testNetwork(t, network, "10.213", r[0], "")
	nodes, names := startContainers(t, image, network, subnet, "tgtest-"+id, nil)
	eventually(t, 60*time.Second, "three voters, a leader, and every node caught up", func() bool {
		v, ok := nodes[0].cluster()
		if !ok || v.Leader == "" || v.voters() != 3 {
			return false
		}
		for _, g := range nodes {
			if g.admin("GET", "/healthz", nil).Status != 200 {
				return false
			}
		}
		return true
	})

	// The upstream is each container's own loopback, where nothing
	// listens: an admitted request answers 502, a refused one 403/429/503.
	const quota = 600
	p := setupProduct(t, nodes[0], "http://127.0.0.1:9", map[string]any{"quota": map[string]any{"limit": quota, "period": "DAY"}})
	path := "/" + p.APIID + "/" + p.Stage + "/x"
	admitted := 0
	count := func(g *gateway) int {
		r := g.call(path, p.Key)
		if r.Status == 502 {
			admitted++
		}
		return r.Status
	}
	eventually(t, 20*time.Second, "every node to admit the key", func() bool {
		ok := true
		for _, g := range nodes {
			ok = count(g) == 502 && ok
		}
		return ok
	})
	for i := range 150 {
		count(nodes[i%3])
	}

	// Cut the leader off.
	v, _ := nodes[0].cluster()
	li := int(v.Leader[1] - '1')
	isolated := nodes[li]
	docker(t, "network", "disconnect", network, names[li])
	var majority []*gateway
	for i, g := range nodes {
		if i != li {
			majority = append(majority, g)
		}
	}

	// The isolated node spends what it holds, then answers 503.
	held, deadline := 0, time.Now().Add(60*time.Second)
	for time.Now().Before(deadline) {
		st := count(isolated)
		if st == 503 {
			break
		}
		if st != 502 && st != 429 {
			t.Fatalf("isolated node answered %d", st)
		}
		if st == 502 {
			held++
		}
	}
	if r := isolated.call(path, p.Key); r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("isolated node, units spent: %d (Retry-After %q)", r.Status, r.Header.Get("Retry-After"))
	}
	t.Logf("the isolated old leader admitted %d requests from the units it held, then answered 503", held)

	// The majority elects a leader, takes writes and serves the quota
	// until it is used up.
	var planID string
	eventually(t, 30*time.Second, "a write on the majority side", func() bool {
		r := majority[0].admin("POST", "/usageplans", map[string]any{"name": "during-partition"})
		if r.Status == 201 {
			planID = r.JSON(t)["id"].(string)
		}
		return r.Status == 201
	})
	limitExceeded := 0
	for i := 0; i < 2*quota && limitExceeded < 20; i++ {
		if count(majority[i%2]) == 429 {
			limitExceeded++
		}
	}
	if limitExceeded < 20 {
		t.Fatalf("the majority never answered Limit Exceeded; %d admitted in all", admitted)
	}
	if admitted > quota {
		t.Fatalf("%d requests admitted with a quota of %d across a partition", admitted, quota)
	}
	t.Logf("quota %d across a leader partition: %d admitted (%d short: units granted to nodes and not spent)", quota, admitted, quota-admitted)

	// Heal: the old leader rejoins and catches up.
	docker(t, "network", "connect", "--ip", fmt.Sprintf("%s.%d", subnet, 11+li), network, names[li])
	eventually(t, 30*time.Second, "the healed node to see the write it missed", func() bool {
		return isolated.admin("GET", "/usageplans/"+planID, nil).Status == 200
	})
	// What the majority still held when it stopped comes back to the
	// ledger when its nodes go idle: the healed node may spend that, and
	// not one unit more.
	healed, refused := 0, 0
	for i := 0; i < 2*quota && refused < 20; i++ {
		switch st := count(isolated); st {
		case 502:
			healed++
		case 429, 503:
			refused++
		default:
			t.Fatalf("after the heal the healed node answered %d", st)
		}
	}
	t.Logf("after the heal the old leader admitted %d more; %d admitted in all on a quota of %d", healed, admitted, quota)
	if refused < 20 || admitted > quota {
		t.Fatalf("after the heal: %d refused, %d admitted in all with a quota of %d", refused, admitted, quota)
	}
}

// testNetwork creates a Docker network on a free private prefix.x.0/24
// subnet (prefix like "10.213"), other than avoid, and removes it when the
// test ends unless the test removes it first.
func testNetwork(t *testing.T, name, prefix string, first byte, avoid string) (subnet string) {
	t.Helper()
	for i := range 16 {
		subnet = fmt.Sprintf("%s.%d", prefix, (int(first)+i)%256)
		if subnet == avoid {
			continue
		}
		if exec.Command("docker", "network", "create", "--subnet", subnet+".0/24", name).Run() == nil {
			t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", name).Run() })
			return subnet
		}
	}
	t.Fatalf("could not create a test network on any %s.x.0/24 subnet", prefix)
	return ""
}

// startContainers creates and starts three nodes, named prefix-n1..n3, at
// subnet.11..13 on network, bootstrapping together, with their data plane
// and admin API published on loopback; extra gives node i's further
// docker create arguments (volumes). Each is removed when the test ends,
// its log printed first if the test failed.
func startContainers(t *testing.T, image, network, subnet, prefix string, extra func(i int) []string) ([]*gateway, []string) {
	t.Helper()
	nodes, names := make([]*gateway, 3), make([]string, 3)
	for i := range 3 {
		names[i] = fmt.Sprintf("%s-n%d", prefix, i+1)
		ip := fmt.Sprintf("%s.%d", subnet, 11+i)
		args := []string{"create", "--name", names[i], "-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090"}
		if extra != nil {
			args = append(args, extra(i)...)
		}
		args = append(args, image,
			"serve", "--data-dir", "/data", "--node-id", fmt.Sprintf("n%d", i+1), "--advertise-addr", ip,
			"--bootstrap-expect", "3", "--join", subnet+".11:7946",
			"--admin-listen", "0.0.0.0:9090", "--admin-insecure", "--cluster-insecure", "--admin-host", "127.0.0.1", "--raft-fast")
		docker(t, args...)
		name := names[i]
		t.Cleanup(func() {
			if t.Failed() {
				logs, _ := exec.Command("docker", "logs", "--tail", "40", name).CombinedOutput()
				t.Logf("%s log:\n%s", name, logs)
			}
			_ = exec.Command("docker", "rm", "-f", name).Run()
		})
		docker(t, "network", "connect", "--ip", ip, network, names[i])
		docker(t, "start", names[i])
		nodes[i] = &gateway{t: t,
			DataURL:  "http://" + strings.Split(docker(t, "port", names[i], "8080/tcp"), "\n")[0],
			AdminURL: "http://" + strings.Split(docker(t, "port", names[i], "9090/tcp"), "\n")[0],
		}
	}
	return nodes, names
}
