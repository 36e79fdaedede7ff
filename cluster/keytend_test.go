package cluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// writeKEKFile writes a key-encryption key file of these raw keys.
func writeKEKFile(t *testing.T, path string, raws ...[]byte) {
	t.Helper()
	var b strings.Builder
	for _, r := range raws {
		b.WriteString(base64.StdEncoding.EncodeToString(r) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func plainValues(c *pb.Config) int {
	n := 0
	for _, k := range c.GetApiKeys() {
		if k.GetValue() != "" {
			n++
		}
	}
	return n
}

// TestNodeSealsPlainValuesAndRewraps is an upgrade: a data dir whose keys
// carry plain values (written as before values were sealed) and no data
// key. The leader makes a data key and seals every value, in more than one
// batch; the values still open, and a restart with a key-encryption key
// rewraps the data key under it and keeps every value.
func TestNodeSealsPlainValuesAndRewraps(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(dir)
	cfg.ReconcileInterval = time.Hour // no pass while the old state is written
	n := openSingle(t, cfg)
	values := map[string]string{}
	var cmds []*pb.ImportedKey
	for i := range sealBatch + 10 {
		id := "k" + itoa(int64(i))
		values[id] = "plainValueOfKey" + strings.Repeat("x", 5) + itoa(int64(1000+i))
		cmds = append(cmds, &pb.ImportedKey{Key: &pb.ApiKey{Id: id, Value: values[id], Enabled: true}})
	}
	nodeApply(t, n, &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{Keys: cmds}}})
	takeSnapshot(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.ReconcileInterval = 20 * time.Millisecond
	n = openSingle(t, cfg)
	eventually(t, 10*time.Second, func() bool { return plainValues(n.Config()) == 0 }, "the leader seals every plain value")
	keys, err := n.KeysIfSet()
	if err != nil {
		t.Fatal(err)
	}
	if d := n.Config().GetDataKey(); d.GetKekId() != "" {
		t.Fatalf("data key wrapped under %q without a key-encryption key", d.GetKekId())
	}
	check := func(n *Node) {
		t.Helper()
		c := n.Config()
		if len(c.ApiKeys) != len(values) {
			t.Fatalf("%d keys, want %d", len(c.ApiKeys), len(values))
		}
		for id, v := range values {
			got, err := keys.OpenAPIKey(c.ApiKeys[id])
			if err != nil || got != v {
				t.Fatalf("key %s opens to %q, %v; want %q", id, got, err, v)
			}
		}
	}
	check(n)
	takeSnapshot(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	kek := bytes.Repeat([]byte{5}, sealing.KeySize)
	cfg.KEKFile = filepath.Join(t.TempDir(), "kek.key")
	writeKEKFile(t, cfg.KEKFile, kek)
	n = openSingle(t, cfg)
	want, _ := sealing.NewKEK(kek)
	eventually(t, 10*time.Second, func() bool { return n.Config().GetDataKey().GetKekId() == want.ID() }, "the leader rewraps the data key under the key-encryption key")
	check(n)
	takeSnapshot(t, n)
	// The Raft log keeps the entries written in plain until Raft compacts
	// it; the newest snapshot holds no value.
	if b, err := os.ReadFile(filepath.Join(dir, "raft.db")); err != nil || !bytes.Contains(b, []byte(values["k0"])) {
		t.Fatalf("raft.db no longer holds the entry written in plain (%v): compaction came early?", err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	newest := snaps[len(snaps)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if bytes.Contains(b, []byte(v)) {
			t.Fatalf("the newest snapshot %s holds a value", newest)
		}
	}
}

// TestNodeWithoutTheKEKReportsOnce: a node whose key-encryption key file
// lacks the key the data key is wrapped under says why, once, and serves
// again once the file holds the key (read again without a restart).
func TestNodeWithoutTheKEKReportsOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := singleNodeConfig(dir)
	cfg.ReconcileInterval = 20 * time.Millisecond
	good := bytes.Repeat([]byte{6}, sealing.KeySize)
	other := bytes.Repeat([]byte{7}, sealing.KeySize)
	cfg.KEKFile = filepath.Join(t.TempDir(), "kek.key")
	writeKEKFile(t, cfg.KEKFile, good)
	n := openSingle(t, cfg)
	eventually(t, 10*time.Second, func() bool { return n.Config().GetDataKey() != nil }, "the leader makes a data key")
	if err := n.KeysProblem(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	writeKEKFile(t, cfg.KEKFile, other)
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n = openSingle(t, cfg)
	eventually(t, 10*time.Second, func() bool { return n.KeysProblem() != nil }, "the node reports it cannot unwrap")
	eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "cannot unwrap the cluster's data key") }, "the log says so")
	if _, err := n.KeysIfSet(); err == nil || errors.Is(err, sealing.ErrNoDataKey) {
		t.Fatalf("KeysIfSet: %v", err)
	}
	// Later passes, proven by their reading a broken key file twice,
	// have not said it again.
	for i, broken := range []string{"not a key\n", "still not a key\n"} {
		if err := os.WriteFile(cfg.KEKFile, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() bool {
			return strings.Count(logs.String(), "key-encryption key file changed but cannot be used") == i+1
		}, "a later pass reads the changed file")
	}
	if c := strings.Count(logs.String(), "cannot unwrap the cluster's data key"); c != 1 {
		t.Fatalf("the problem was logged %d times", c)
	}

	// Rotation's first step: the new key first, the old one kept.
	writeKEKFile(t, cfg.KEKFile, other, good)
	eventually(t, 10*time.Second, func() bool { return n.KeysProblem() == nil }, "the node unwraps once the file holds the key")
	o, _ := sealing.NewKEK(other)
	eventually(t, 10*time.Second, func() bool { return n.Config().GetDataKey().GetKekId() == o.ID() }, "the leader rewraps under the new first key")
	// The leader logs it once its rewrap has applied, just after the
	// configuration shows it.
	eventually(t, 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "the cluster's data key is now wrapped under this node's first key-encryption key")
	}, "the log says the data key was rewrapped")
	if !strings.Contains(logs.String(), "unwraps the cluster's data key again") {
		t.Fatal("the log does not say the problem ended")
	}
}

// takeSnapshot snapshots the node, retrying while Raft refuses because a
// configuration entry is not applied yet.
func takeSnapshot(t *testing.T, n *Node) {
	t.Helper()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err = n.Snapshot(); err != nil; err = n.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot within 10s: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
