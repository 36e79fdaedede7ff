package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// The data dir's lock.
//
// bolt locks raft.db (flock) for as long as a process has it open. A second
// process on the same data dir waits for LockTimeout, then fails with
// ErrDataDirInUse naming the holder: the pid the holder wrote to
// tollgate.pid once it held the lock. A pid file is simpler than reading
// /proc/locks (Linux only, by inode) and works in any container; it may be
// stale only after a crash, and then the lock is free and the next holder
// overwrites it. A pid that is not a live process is not named.

const pidFileName = "tollgate.pid"

// openStore opens the data dir's Raft log and stable store, waiting at most
// timeout for the lock, and writes the pid file.
func openStore(dataDir string, timeout time.Duration) (*raftboltdb.BoltStore, string, error) {
	path := filepath.Join(dataDir, "raft.db")
	pidPath := filepath.Join(dataDir, pidFileName)
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: timeout}})
	if errors.Is(err, bbolt.ErrTimeout) {
		holder := "another process"
		if pid, ok := livePID(pidPath); ok {
			holder = fmt.Sprintf("process %d", pid)
		}
		return nil, "", fmt.Errorf("%w: %s: %s holds %s (waited %s for its lock); stop it or use another data dir",
			ErrDataDirInUse, dataDir, holder, path, timeout)
	}
	if err != nil {
		return nil, "", fmt.Errorf("open raft log %s: %w", path, err)
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		store.Close()
		return nil, "", fmt.Errorf("write pid file: %w", err)
	}
	return store, pidPath, nil
}

// livePID reads a pid file and tells whether its process is alive.
func livePID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return 0, false
	}
	// Signal 0 checks only that the process exists; EPERM means it
	// exists but belongs to another user.
	if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	return pid, true
}

func removePIDFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}
