package cluster

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/tollgate/tollgate/pki"
)

// TestSecurityGossipKeyRotation rotates the gossip key through the key
// file, as the README says, without a restart: add the new key as a second
// line, make it the first, remove the old line. A member with only the new
// key joins once it is in use; one with only the old key cannot once it
// is removed; the cluster commits at every step.
func TestSecurityGossipKeyRotation(t *testing.T) {
	p := newTestPKI(t, "cluster")
	tc := newTestCluster(t)
	tc.secure = func(id string, c *NodeConfig) {
		p.secure(id, c)
		c.KeyReloadInterval = 10 * time.Millisecond
	}
	n1 := tc.start("n1", 2)
	n2 := tc.start("n2", 2, n1.GossipAddr())
	waitFor(t, 15*time.Second, func() bool { return tc.voters()["n2"] == "voter" })

	oldKeys, _, err := readGossipKeys(p.gossip)
	if err != nil {
		t.Fatal(err)
	}
	newLine, err := pki.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	newKeys, err := pki.ParseGossipKeys(newLine)
	if err != nil {
		t.Fatal(err)
	}
	// join tries to join n1 as a member holding only keys.
	join := func(name string, keys [][]byte) error {
		t.Helper()
		_, err := gossipJoin(t, name, keys, n1.GossipAddr())
		return err
	}
	if err := join("probe-new", newKeys); err == nil {
		t.Fatal("a member with a key not installed joined")
	}

	installed := func(primary []byte, count int) func() bool {
		return func() bool {
			for _, n := range []*Node{n1, n2} {
				if !bytes.Equal(n.keyring.GetPrimaryKey(), primary) || len(n.keyring.GetKeys()) != count {
					return false
				}
			}
			return true
		}
	}
	old := []byte(base64.StdEncoding.EncodeToString(oldKeys[0]) + "\n")
	// Add the new key.
	writeFile(t, p.gossip, append(append([]byte{}, old...), newLine...))
	waitFor(t, 10*time.Second, installed(oldKeys[0], 2))
	createPlan(t, n1, "key-added")
	// Use it.
	writeFile(t, p.gossip, append(append([]byte{}, newLine...), old...))
	waitFor(t, 10*time.Second, installed(newKeys[0], 2))
	if err := join("probe-new", newKeys); err != nil {
		t.Fatalf("a member with the new key cannot join: %v", err)
	}
	createPlan(t, n1, "key-used")
	// Remove the old one.
	writeFile(t, p.gossip, newLine)
	waitFor(t, 10*time.Second, installed(newKeys[0], 1))
	if err := join("probe-old", oldKeys); err == nil {
		t.Fatal("a member with the removed key joined")
	}
	createPlan(t, n1, "key-removed")
	if m, ok := n1.gossip.Member("n2"); !ok || m.State != "alive" {
		t.Fatalf("n2 as n1 sees it after the rotation: %+v", m)
	}
}

// gossipJoin starts a memberlist named name holding only keys, tries to
// join addr with it, and shuts it down: how many it contacted, and why not.
func gossipJoin(t *testing.T, name string, keys [][]byte, addr string) (int, error) {
	t.Helper()
	mc, err := gossipConfig(name, "127.0.0.1:0", "127.0.0.1", FastGossipTimings(), keys, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Shutdown()
	return ml.Join([]string{addr})
}
