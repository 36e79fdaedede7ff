package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// MemStore is the FSM without Raft: commands go through the same encoding
// and apply in order, in memory. It serves tests and tools that need the
// real state machine but no cluster.
type MemStore struct {
	mu    sync.Mutex
	fsm   *FSM
	index uint64
	now   func() time.Time
}

// NewMemStore returns an empty in-memory store on the wall clock.
func NewMemStore() *MemStore {
	return &MemStore{fsm: NewFSM(), now: time.Now}
}

// SetClock replaces the clock that stamps commands.
func (m *MemStore) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}

// FSM returns the state machine behind the store.
func (m *MemStore) FSM() *FSM { return m.fsm }

// Config returns the current configuration (immutable).
func (m *MemStore) Config() *pb.Config { return m.fsm.Config() }

// KeyLedgers returns copies of a plan's key ledgers.
func (m *MemStore) KeyLedgers(planID string) []*pb.KeyLedger { return m.fsm.KeyLedgers(planID) }

// Apply stamps, encodes and applies a command.
func (m *MemStore) Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	stamp(cmd, m.now())
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	var decoded pb.Command
	if err := proto.Unmarshal(data, &decoded); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	m.index++
	return m.fsm.ApplyCommand(m.index, &decoded), nil
}

// ApplyLedger applies a ledger batch: MemStore is a quota ledger for a
// QuotaPool of one node.
func (m *MemStore) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	return m.Apply(ctx, cmd)
}
