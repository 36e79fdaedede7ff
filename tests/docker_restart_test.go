package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testNetwork creates a Docker network on a free private 10.214.x.0/24
// subnet, other than avoid, and removes it when the test ends unless the
// test removes it first.
func testNetwork(t *testing.T, name string, first byte, avoid string) (subnet string) {
	t.Helper()
	for i := range 16 {
		subnet = fmt.Sprintf("10.214.%d", (int(first)+i)%256)
		if subnet == avoid {
			continue
		}
		if exec.Command("docker", "network", "create", "--subnet", subnet+".0/24", name).Run() == nil {
			t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", name).Run() })
			return subnet
		}
	}
	t.Fatalf("could not create a test network on any 10.214.x.0/24 subnet")
	return ""
}

// TestItem11DockerClusterRestartsOnANewSubnet is a docker-compose down
// then up with the volumes kept: three FROM-scratch containers form a
// cluster, are removed with their network, and come back with the same
// volumes on a new network with other addresses. A leader is elected
// within seconds and the data is there.
func TestItem11DockerClusterRestartsOnANewSubnet(t *testing.T) {
	needDocker(t)
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	image := "tollgate:test-" + id
	buildImage(t, image)

	volumes := make([]string, 3)
	for i := range volumes {
		volumes[i] = fmt.Sprintf("tgtest-%s-v%d", id, i+1)
		docker(t, "volume", "create", volumes[i])
		v := volumes[i]
		t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", v).Run() })
	}

	// up starts the three nodes on a network of their own and returns
	// them with their container names.
	up := func(network, subnet, round string) ([]*gateway, []string) {
		nodes, names := make([]*gateway, 3), make([]string, 3)
		for i := range 3 {
			names[i] = fmt.Sprintf("tgtest-%s-%s-n%d", id, round, i+1)
			ip := fmt.Sprintf("%s.%d", subnet, 11+i)
			docker(t, "create", "--name", names[i], "-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090",
				"-v", volumes[i]+":/data", image,
				"serve", "--data-dir", "/data", "--node-id", fmt.Sprintf("n%d", i+1), "--advertise-addr", ip,
				"--bootstrap-expect", "3", "--join", subnet+".11:7946",
				"--admin-listen", "0.0.0.0:9090", "--admin-insecure", "--cluster-insecure", "--admin-host", "127.0.0.1", "--raft-fast")
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
		for i, g := range nodes {
			eventually(t, 30*time.Second, names[i]+" to answer on its admin port", func() bool {
				resp, err := client.Get(g.AdminURL + "/cluster")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return true
			})
		}
		return nodes, names
	}

	net1 := "tgtest-" + id + "-a"
	subnet1 := testNetwork(t, net1, r[0], "")
	nodes, names := up(net1, subnet1, "a")
	eventually(t, 60*time.Second, "three voters and a leader", func() bool {
		v, ok := nodes[0].cluster()
		return ok && v.Leader != "" && v.voters() == 3
	})
	var planID string
	eventually(t, 20*time.Second, "a write before the restart", func() bool {
		r := nodes[0].admin("POST", "/usageplans", map[string]any{"name": "before-restart"})
		if r.Status == 201 {
			planID = r.JSON(t)["id"].(string)
		}
		return r.Status == 201
	})
	eventually(t, 20*time.Second, "the write on every node", func() bool {
		for _, g := range nodes {
			if g.admin("GET", "/usageplans/"+planID, nil).Status != 200 {
				return false
			}
		}
		return true
	})

	// down: containers and network go, volumes stay.
	docker(t, append([]string{"stop", "-t", "10"}, names...)...)
	docker(t, append([]string{"rm"}, names...)...)
	docker(t, "network", "rm", net1)

	// up, on another subnet.
	net2 := "tgtest-" + id + "-b"
	subnet2 := testNetwork(t, net2, r[0]+1, subnet1)
	start := time.Now()
	nodes, _ = up(net2, subnet2, "b")
	eventually(t, 60*time.Second, "a leader after the restart on a new subnet", func() bool {
		for _, g := range nodes {
			if v, ok := g.cluster(); !ok || v.Leader == "" {
				return false
			}
		}
		return true
	})
	t.Logf("subnet %s.0/24 -> %s.0/24: every node knows a leader %s after the containers started", subnet1, subnet2, time.Since(start).Round(100*time.Millisecond))
	eventually(t, 30*time.Second, "the data on every node", func() bool {
		for _, g := range nodes {
			if g.admin("GET", "/usageplans/"+planID, nil).Status != 200 {
				return false
			}
		}
		return true
	})
	eventually(t, 30*time.Second, "a write after the restart", func() bool {
		return nodes[1].admin("POST", "/usageplans", map[string]any{"name": "after-restart"}).Status == 201
	})
}
