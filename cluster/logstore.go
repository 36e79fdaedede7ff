package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// ErrLogWrite is wrapped by LogProblem's error.
var ErrLogWrite = errors.New("cannot write its Raft log")

// logWrites is Raft's log store, remembering whether its last write
// failed. A node that cannot write its log (a full disk) falls behind
// the cluster: the leader sends the same entries again and again, and the
// node's state stays where it was. Serving that state would refuse keys
// created since and admit disabled ones, so until a write succeeds again
// the node says so (Node.LogProblem) and answers 503.
type logWrites struct {
	raft.LogStore
	log    *slog.Logger
	failed atomic.Pointer[error] // the last write's error, nil after a success
}

func (s *logWrites) StoreLog(l *raft.Log) error { return s.note(s.LogStore.StoreLog(l)) }

func (s *logWrites) StoreLogs(logs []*raft.Log) error { return s.note(s.LogStore.StoreLogs(logs)) }

// note records the outcome of a write and logs each change of state.
func (s *logWrites) note(err error) error {
	if err != nil {
		if s.failed.Swap(&err) == nil {
			s.log.Error("cannot write the Raft log: this node answers 503 until it can (is its disk full?)", "err", err)
		}
		return err
	}
	if s.failed.Load() != nil && s.failed.Swap(nil) != nil {
		s.log.Info("writes the Raft log again; serving")
	}
	return nil
}

// problem is the last write's error, wrapped, or nil.
func (s *logWrites) problem() error {
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrLogWrite, *p)
	}
	return nil
}

// LogProblem tells why this node cannot serve its state: its last write
// to the Raft log failed (a full disk), so it falls behind the cluster.
// It is nil otherwise, and cheap.
func (n *Node) LogProblem() error { return n.logs.problem() }
