package cluster

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count is how many times sub was written.
func (s *syncBuffer) count(sub string) int { return strings.Count(s.String(), sub) }

// TestDataDirIsPrivate opens a node on a data dir left 0755 with a 0644
// raft.db and a 0755 snapshots dir, takes a snapshot, and checks that
// every directory under the data dir is 0700 and every file 0600, and
// that the node warned about each path it tightened with its old mode.
func TestDataDirIsPrivate(t *testing.T) {
	tc := newTestCluster(t)
	dir := filepath.Join(tc.dir, "n1")
	if err := os.MkdirAll(filepath.Join(dir, snapshotsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, snapshotsDir)} {
		if err := os.Chmod(d, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "raft.db"), 0o644); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	cfg := tc.config("n1", 1, nil)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	tc.nodes["n1"] = n
	waitFor(t, 10*time.Second, n.IsLeader)
	createPlan(t, n, "p1")
	takeSnapshot(t, n)

	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s is %#o, want %#o", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snaps, _ := os.ReadDir(filepath.Join(dir, snapshotsDir))
	if len(snaps) == 0 || files < 4 { // raft.db, data-id, pid, a snapshot's meta and state
		t.Fatalf("%d snapshots and %d files under the data dir: the snapshot was not written", len(snaps), files)
	}
	out := logs.String()
	for _, want := range []string{
		"path=" + dir + " old_mode=0755",
		"path=" + filepath.Join(dir, "raft.db") + " old_mode=0644",
		"path=" + filepath.Join(dir, snapshotsDir) + " old_mode=0755",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning with %q in the log:\n%s", want, out)
		}
	}
}
