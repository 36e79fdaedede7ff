package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// StateMachine is what MemStore needs from cluster.FSM.
type StateMachine interface {
	ApplyCommand(index uint64, cmd *pb.Command) *pb.Result
	Config() *pb.Config
	KeyLedgers(planID string) []*pb.KeyLedger
}

// MemStore is the FSM without Raft: commands go through the same encoding
// and apply in order, in memory. It serves as the Store of admin tests and
// as the LedgerClient of a QuotaPool of one node.
type MemStore[F StateMachine] struct {
	mu    sync.Mutex
	fsm   F
	index uint64
	now   func() time.Time

	keyring *sealing.Keyring
}

// NewMemStore returns a store on fsm (usually a new, empty cluster.FSM) and
// the wall clock.
func NewMemStore[F StateMachine](fsm F) *MemStore[F] {
	return &MemStore[F]{fsm: fsm, now: time.Now, keyring: sealing.NewKeyring()}
}

// SetClock replaces the clock that stamps commands.
func (m *MemStore[F]) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}

// FSM returns the state machine behind the store.
func (m *MemStore[F]) FSM() F { return m.fsm }

// Config returns the current configuration (immutable).
func (m *MemStore[F]) Config() *pb.Config { return m.fsm.Config() }

// KeyLedgers returns copies of a plan's key ledgers.
func (m *MemStore[F]) KeyLedgers(planID string) []*pb.KeyLedger { return m.fsm.KeyLedgers(planID) }

// Apply stamps, encodes and applies a command, as the leader does before
// and after Raft: the command gets the store's time, and a request id when
// the caller gave none.
func (m *MemStore[F]) Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cmd.RequestId == "" {
		var id [16]byte
		_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on supported platforms
		cmd.RequestId = hex.EncodeToString(id[:])
	}
	cmd.TimeUnixNano = m.now().UnixNano()
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

// ApplyLedger applies a ledger batch: MemStore is the quota ledger of a
// QuotaPool of one node.
func (m *MemStore[F]) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	return m.Apply(ctx, cmd)
}

// Keys returns the keys of the store's data key, creating it (unwrapped)
// on first use, as a node without a key-encryption key does.
func (m *MemStore[F]) Keys(ctx context.Context) (*sealing.Keys, error) {
	return m.keyring.Ensure(ctx, m, "test")
}
