package cluster

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// snapshotVersion is written in every snapshot; Restore refuses others.
const snapshotVersion = 1

// dedupWindow is how long a request id is remembered: a retried command
// older than this may apply twice. Retries happen within seconds.
const dedupWindow = int64(10 * 60 * 1e9)

// FSM is Tollgate's replicated state machine: every piece of configuration
// and the quota ledger. It is deterministic: the time it uses comes from the
// command (stamped by the proposing node, clamped so it never goes back) and
// nothing it produces depends on map order.
//
// Configuration is copy-on-write: each change builds a new *pb.Config and
// publishes it atomically, so readers never lock. The ledger is mutated in
// place under mu.
type FSM struct {
	config  atomic.Pointer[pb.Config]
	applied atomic.Uint64

	mu      sync.RWMutex
	ledgers map[string]map[string]*pb.KeyLedger // plan id -> key id -> ledger
	dedup   map[string]*pb.DedupRecord
	lastTS  int64 // Unix nanoseconds of the latest applied command

	// onConfig, when set, is called (outside mu) after a configuration change.
	onConfig func(*pb.Config)
	// onQuota, when set, is called (outside mu) when a key's grantable quota
	// may have grown: an extension, units handed back, or any configuration
	// change (then with empty ids: every key).
	onQuota func(planID, keyID string)
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM {
	f := &FSM{
		ledgers: map[string]map[string]*pb.KeyLedger{},
		dedup:   map[string]*pb.DedupRecord{},
	}
	f.config.Store(emptyConfig())
	return f
}

func emptyConfig() *pb.Config {
	return &pb.Config{
		RestApis:    map[string]*pb.RestApi{},
		Stages:      map[string]*pb.Stage{},
		Deployments: map[string]*pb.Deployment{},
		UsagePlans:  map[string]*pb.UsagePlan{},
		ApiKeys:     map[string]*pb.ApiKey{},
		PlanKeys:    map[string]*pb.PlanKeys{},
	}
}

// Config returns the current configuration. It is immutable: never change it.
func (f *FSM) Config() *pb.Config { return f.config.Load() }

// AppliedIndex is the Raft index of the last applied command.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// KeyLedgers returns copies of the ledgers of every key in a plan, ordered
// by key id.
func (f *FSM) KeyLedgers(planID string) []*pb.KeyLedger {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m := f.ledgers[planID]
	out := make([]*pb.KeyLedger, 0, len(m))
	for _, l := range m {
		out = append(out, proto.Clone(l).(*pb.KeyLedger))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyId < out[j].KeyId })
	return out
}

// Apply applies one Raft log entry. It implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd pb.Command
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		// A committed entry that cannot be read means this binary cannot
		// follow the log: stop rather than diverge.
		panic(fmt.Sprintf("tollgate: undecodable raft entry at index %d: %v", l.Index, err))
	}
	if cmd.Body == nil {
		panic(fmt.Sprintf("tollgate: raft entry at index %d has a command this version does not know; upgrade this node", l.Index))
	}
	return f.ApplyCommand(l.Index, &cmd)
}

// ApplyCommand applies a decoded command at a Raft index.
func (f *FSM) ApplyCommand(index uint64, cmd *pb.Command) *pb.Result {
	f.mu.Lock()
	ts := cmd.TimeUnixNano
	if ts < f.lastTS {
		ts = f.lastTS
	}
	f.lastTS = ts
	if cmd.RequestId != "" {
		if rec, ok := f.dedup[cmd.RequestId]; ok {
			// Applied again as a no-op: the entry still counts as applied.
			f.applied.Store(index)
			f.mu.Unlock()
			return rec.Result
		}
	}
	a := &applyCtx{index: index, ts: ts, sec: ts / 1e9}
	var res *pb.Result
	var newConfig *pb.Config
	var freed []counterKey // keys whose grantable quota may have grown
	switch b := cmd.Body.(type) {
	case *pb.Command_Ledger:
		res = f.applyLedger(a, f.config.Load(), b.Ledger)
		freed = releases(freed, b.Ledger)
	case *pb.Command_LedgerGroup:
		res = f.applyLedgerGroup(a, b.LedgerGroup)
		for _, sub := range b.LedgerGroup.Commands {
			freed = releases(freed, sub.GetLedger())
		}
	case *pb.Command_SetRemaining:
		res = f.applySetRemaining(a, f.config.Load(), b.SetRemaining)
		if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
			freed = append(freed, counterKey{b.SetRemaining.PlanId, b.SetRemaining.KeyId})
		}
	case *pb.Command_Noop:
		res = &pb.Result{}
	default:
		c := proto.Clone(f.config.Load()).(*pb.Config)
		fillConfigMaps(c)
		res = f.applyConfig(a, c, cmd)
		if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
			c.Index = index
			newConfig = c
		}
	}
	res.Index = index
	res.TimeUnix = a.sec
	if cmd.RequestId != "" {
		f.dedup[cmd.RequestId] = &pb.DedupRecord{TimeUnixNano: ts, Result: res}
	}
	if index%1024 == 0 {
		f.pruneDedup(ts)
	}
	if newConfig != nil {
		f.config.Store(newConfig)
	}
	f.applied.Store(index)
	onConfig, onQuota := f.onConfig, f.onQuota
	f.mu.Unlock()
	if newConfig != nil && onConfig != nil {
		onConfig(newConfig)
	}
	if onQuota != nil {
		if newConfig != nil {
			onQuota("", "")
		}
		for _, k := range freed {
			onQuota(k.plan, k.key)
		}
	}
	return res
}

// releases appends the keys a ledger batch hands units back for.
func releases(out []counterKey, b *pb.LedgerBatch) []counterKey {
	for _, r := range b.GetReports() {
		if r.Release > 0 {
			out = append(out, counterKey{r.PlanId, r.KeyId})
		}
	}
	return out
}

// OnQuotaChange sets the function called when a key's grantable quota may
// have grown (empty ids: any key's).
func (f *FSM) OnQuotaChange(fn func(planID, keyID string)) {
	f.mu.Lock()
	f.onQuota = fn
	f.mu.Unlock()
}

// applyLedgerGroup applies the ledger batches of a group commit in order,
// each de-duplicated by its own request id, as if each had its own entry.
func (f *FSM) applyLedgerGroup(a *applyCtx, g *pb.LedgerGroup) *pb.Result {
	res := &pb.Result{Group: make([]*pb.Result, 0, len(g.Commands))}
	for _, sub := range g.Commands {
		if rec, ok := f.dedup[sub.GetRequestId()]; ok && sub.GetRequestId() != "" {
			res.Group = append(res.Group, rec.Result)
			continue
		}
		var r *pb.Result
		if lb, ok := sub.GetBody().(*pb.Command_Ledger); ok {
			r = f.applyLedger(a, f.config.Load(), lb.Ledger)
		} else {
			r = fail(codeBad, "a ledger group holds only ledger batches, not %T", sub.GetBody())
		}
		r.Index, r.TimeUnix = a.index, a.sec
		if sub.GetRequestId() != "" {
			f.dedup[sub.RequestId] = &pb.DedupRecord{TimeUnixNano: a.ts, Result: r}
		}
		res.Group = append(res.Group, r)
	}
	return res
}

func (f *FSM) pruneDedup(now int64) {
	for id, rec := range f.dedup {
		if now-rec.TimeUnixNano > dedupWindow {
			delete(f.dedup, id)
		}
	}
}

// applyCtx carries what every applyX needs from the entry.
type applyCtx struct {
	index uint64
	ts    int64 // Unix nanoseconds, monotone across the log
	sec   int64 // ts in Unix seconds
}

func fail(code pb.ErrorCode, format string, args ...any) *pb.Result {
	return &pb.Result{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Snapshot implements raft.FSM: it copies the state under the lock;
// Persist writes it outside.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := &pb.Snapshot{
		Version:          snapshotVersion,
		Config:           f.config.Load(), // immutable
		Ledgers:          make(map[string]*pb.KeyLedger),
		Dedup:            make(map[string]*pb.DedupRecord, len(f.dedup)),
		LastTimeUnixNano: f.lastTS,
		AppliedIndex:     f.applied.Load(),
	}
	for planID, m := range f.ledgers {
		for keyID, l := range m {
			s.Ledgers[planID+"/"+keyID] = proto.Clone(l).(*pb.KeyLedger)
		}
	}
	for id, rec := range f.dedup {
		s.Dedup[id] = rec // records are never changed once stored
	}
	return &fsmSnapshot{s: s}, nil
}

type fsmSnapshot struct{ s *pb.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s.s)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM: it builds the new state aside and swaps it in.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	var s pb.Snapshot
	if err := proto.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("snapshot version %d is not supported by this node (want %d)", s.Version, snapshotVersion)
	}
	cfg := s.Config
	if cfg == nil {
		cfg = emptyConfig()
	}
	fillConfigMaps(cfg)
	ledgers := map[string]map[string]*pb.KeyLedger{}
	for _, l := range s.Ledgers {
		m := ledgers[l.PlanId]
		if m == nil {
			m = map[string]*pb.KeyLedger{}
			ledgers[l.PlanId] = m
		}
		m[l.KeyId] = l
	}
	dedup := s.Dedup
	if dedup == nil {
		dedup = map[string]*pb.DedupRecord{}
	}
	f.mu.Lock()
	f.ledgers = ledgers
	f.dedup = dedup
	f.lastTS = s.LastTimeUnixNano
	f.applied.Store(s.AppliedIndex)
	f.config.Store(cfg)
	onConfig := f.onConfig
	f.mu.Unlock()
	if onConfig != nil {
		onConfig(cfg)
	}
	return nil
}

// fillConfigMaps makes every map of a decoded Config non-nil, so apply code
// can write to them.
func fillConfigMaps(c *pb.Config) {
	if c.RestApis == nil {
		c.RestApis = map[string]*pb.RestApi{}
	}
	if c.Stages == nil {
		c.Stages = map[string]*pb.Stage{}
	}
	if c.Deployments == nil {
		c.Deployments = map[string]*pb.Deployment{}
	}
	if c.UsagePlans == nil {
		c.UsagePlans = map[string]*pb.UsagePlan{}
	}
	if c.ApiKeys == nil {
		c.ApiKeys = map[string]*pb.ApiKey{}
	}
	if c.PlanKeys == nil {
		c.PlanKeys = map[string]*pb.PlanKeys{}
	}
}
