package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// The data dir holds key values (raft.db, snapshots) and the node's
// identity: only the user that runs the node may read it. Directories are
// 0700 and files 0600.
const (
	privateDir  fs.FileMode = 0o700
	privateFile fs.FileMode = 0o600
)

// snapshotsDir is where raft's FileSnapshotStore keeps snapshots.
const snapshotsDir = "snapshots"

// tightenTree makes every directory under root (root included) 0700 and
// every regular file 0600 where its mode lets anyone else in, and logs a
// warning naming each path it changed and its old mode (when log is not
// nil). Symbolic links are left alone.
func tightenTree(root string, log *slog.Logger) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (a snapshot reaped)
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || !(d.IsDir() || d.Type().IsRegular()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		want := privateFile
		if d.IsDir() {
			want = privateDir
		}
		old := info.Mode().Perm()
		if old&^want == 0 {
			return nil
		}
		if err := os.Chmod(path, old&want); err != nil {
			return fmt.Errorf("tighten permissions of %s: %w", path, err)
		}
		if log != nil {
			log.Warn("tightened permissions in the data dir: it holds key values", "path", path,
				"old_mode", fmt.Sprintf("%#o", old), "new_mode", fmt.Sprintf("%#o", old&want))
		}
		return nil
	})
}

// privateSnapshots is raft's FileSnapshotStore made private: raft creates
// snapshot directories 0755 and files 0666 less the umask, so each sink
// tightens the snapshots directory once it is written. The directory
// itself is 0700 from the start, so a snapshot being written is never
// readable by others either.
type privateSnapshots struct {
	*raft.FileSnapshotStore
	dir string
	log *slog.Logger
}

func (s *privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &privateSink{SnapshotSink: sink, store: s, index: index, start: time.Now()}, nil
}

type privateSink struct {
	raft.SnapshotSink
	store   *privateSnapshots
	index   uint64
	start   time.Time
	written int64
}

func (s *privateSink) Write(p []byte) (int, error) {
	n, err := s.SnapshotSink.Write(p)
	s.written += int64(n)
	return n, err
}

// Close finishes the snapshot, then makes what raft wrote private. It
// logs the snapshot's size and how long it took to write.
func (s *privateSink) Close() error {
	err := s.SnapshotSink.Close()
	if terr := tightenTree(s.store.dir, nil); terr != nil {
		s.store.log.Error("snapshot permissions", "err", terr)
		err = errors.Join(err, terr)
	}
	if err == nil {
		s.store.log.Info("raft snapshot written", "index", s.index, "bytes", s.written, "took", time.Since(s.start))
	}
	return err
}
