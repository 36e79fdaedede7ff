package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// fullStore is a log store whose writes fail while full is set.
type fullStore struct {
	raft.LogStore
	full bool
}

func (f *fullStore) StoreLogs(logs []*raft.Log) error {
	if f.full {
		return syscall.ENOSPC
	}
	return f.LogStore.StoreLogs(logs)
}

func (f *fullStore) StoreLog(l *raft.Log) error { return f.StoreLogs([]*raft.Log{l}) }

// TestLogWritesProblem: a failed write makes a problem that wraps
// ErrLogWrite and the cause, logged once; a write that succeeds again
// clears it, and says so.
func TestLogWritesProblem(t *testing.T) {
	var out bytes.Buffer
	store := &fullStore{LogStore: raft.NewInmemStore()}
	w := &logWrites{LogStore: store, log: slog.New(slog.NewTextHandler(&out, nil))}
	cache, err := raft.NewLogCache(4, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.StoreLog(&raft.Log{Index: 1}); err != nil || w.problem() != nil {
		t.Fatalf("a write that succeeds: %v, problem %v", err, w.problem())
	}
	store.full = true
	for i := range 3 {
		if err := cache.StoreLogs([]*raft.Log{{Index: uint64(2 + i)}}); err == nil {
			t.Fatal("a write to a full store succeeded")
		}
	}
	if p := w.problem(); !errors.Is(p, ErrLogWrite) || !errors.Is(p, syscall.ENOSPC) {
		t.Fatalf("problem %v, want ErrLogWrite and ENOSPC", p)
	}
	if n := strings.Count(out.String(), "cannot write the Raft log"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, out.String())
	}
	store.full = false
	if err := cache.StoreLog(&raft.Log{Index: 2}); err != nil || w.problem() != nil {
		t.Fatalf("a write after space came back: %v, problem %v", err, w.problem())
	}
	if !strings.Contains(out.String(), "writes the Raft log again") {
		t.Fatalf("the recovery is not logged:\n%s", out.String())
	}
}
