package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

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
		nodes, names := startContainers(t, image, network, subnet, "tgtest-"+id+"-"+round, func(i int) []string {
			return []string{"-v", volumes[i] + ":/data"}
		})
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
	subnet1 := testNetwork(t, net1, "10.214", r[0], "")
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
	subnet2 := testNetwork(t, net2, "10.214", r[0]+1, subnet1)
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
