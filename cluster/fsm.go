package cluster

import (
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// snapshotVersion is written in every snapshot (fsm_snapshot.go). Restore
// reads it and the two before it (converting version 1's ledgers), and
// refuses others.
const snapshotVersion = 3

// dedupWindow is how long a configuration command's request id is
// remembered: a retried command older than this may apply twice. The
// admin API retries within a request's deadline (seconds). Ledger batches
// do not depend on it: they carry a per-node sequence (applyLedger).
const dedupWindow = int64(10 * 60 * 1e9)

// FSM is Tollgate's replicated state machine: every piece of configuration
// and the quota ledger. It is deterministic: the time it uses comes from the
// command (stamped by the leader that proposed it) and nothing it produces
// depends on map order.
//
// Configuration is copy-on-write: each change builds a new *pb.Config and
// publishes it atomically, so readers never lock. The ledger is mutated in
// place under mu.
type FSM struct {
	config  atomic.Pointer[pb.Config]
	applied atomic.Uint64
	keys    keyIndex // under mu (fsm_keys.go)

	mu      sync.RWMutex
	ledgers map[string]map[string]*pb.KeyLedger // plan id -> key id -> ledger
	nodes   map[string]*pb.NodeLedger           // node id -> its batches' run and sequence
	dedup   map[string]*pb.DedupRecord
	lastTS  int64     // Unix nanoseconds: the latest time of any applied command
	changes changeLog // what each recent configuration changed (fsm_changes.go)

	// onQuota, when set, is called (outside mu) for each QuotaEvent of an
	// applied command.
	onQuota func(QuotaEvent)
}

// QuotaEvent tells a node's quota pool, as the node applies the log, that
// a key's grantable quota may have grown (an extension, units handed
// back, a raised limit, a key added to a plan: ask again) or that what
// nodes hold was revoked (a lowered remaining or limit, a changed period,
// a quota removed, a key removed, disabled or deleted: hand back what you
// hold, and drop grants decided before Index). An empty PlanID or KeyID
// matches every plan or key.
type QuotaEvent struct {
	PlanID, KeyID string
	Index         uint64
	Revoke        bool
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM {
	f := &FSM{
		ledgers: map[string]map[string]*pb.KeyLedger{},
		nodes:   map[string]*pb.NodeLedger{},
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
	f.lastTS = max(f.lastTS, ts)
	if cmd.RequestId != "" {
		if rec, ok := f.dedup[cmd.RequestId]; ok {
			// Applied again as a no-op: the entry still counts as applied.
			f.applied.Store(index)
			f.mu.Unlock()
			return rec.Result
		}
	}
	a := &applyCtx{index: index, ts: ts, sec: floorDiv(ts, 1e9)}
	var res *pb.Result
	var newConfig *pb.Config
	var events []QuotaEvent
	switch b := cmd.Body.(type) {
	case *pb.Command_Ledger:
		res = f.applyLedger(a, f.config.Load(), b.Ledger)
		events = releases(events, index, b.Ledger)
	case *pb.Command_LedgerGroup:
		res = f.applyLedgerGroup(a, b.LedgerGroup)
		for _, sub := range b.LedgerGroup.Commands {
			events = releases(events, index, sub.GetLedger())
		}
	case *pb.Command_SetRemaining:
		var lowered bool
		res, lowered = f.applySetRemaining(a, f.config.Load(), b.SetRemaining)
		if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
			events = append(events, QuotaEvent{PlanID: b.SetRemaining.PlanId, KeyID: b.SetRemaining.KeyId, Index: index, Revoke: lowered})
		}
	case *pb.Command_Noop:
		res = &pb.Result{}
	default:
		old := f.config.Load()
		c := cloneConfig(old, writesKeys(cmd))
		a.old = old
		res = f.applyConfig(a, c, cmd)
		if res.Code == pb.ErrorCode_ERROR_CODE_NONE {
			c.Index = index
			newConfig = c
			events = quotaEvents(events, index, cmd, old, c)
			f.changes.add(old, c, cmd, res)
		}
	}
	res.Index = index
	res.TimeUnix = a.sec
	res.TimeUnixNano = ts
	if cmd.RequestId != "" && !sequenced(cmd) {
		f.dedup[cmd.RequestId] = &pb.DedupRecord{TimeUnixNano: ts, Result: res}
	}
	if index%1024 == 0 {
		f.pruneDedup(f.lastTS)
	}
	if newConfig != nil {
		f.config.Store(newConfig)
	}
	f.applied.Store(index)
	onQuota := f.onQuota
	f.mu.Unlock()
	if onQuota != nil {
		for _, ev := range events {
			onQuota(ev)
		}
	}
	return res
}

// sequenced tells whether a command is a ledger batch that carries its
// node's run and sequence, which de-duplicate it without the window.
func sequenced(cmd *pb.Command) bool {
	return cmd.GetLedger().GetRun() != ""
}

// floorDiv divides rounding toward minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// releases appends an event for each key a ledger batch hands units back for.
func releases(out []QuotaEvent, index uint64, b *pb.LedgerBatch) []QuotaEvent {
	for _, r := range b.GetReports() {
		if r.Release > 0 {
			out = append(out, QuotaEvent{PlanID: r.PlanId, KeyID: r.KeyId, Index: index})
		}
	}
	return out
}

// quotaEvents appends what a configuration command means for the quota
// nodes hold or may ask for.
func quotaEvents(out []QuotaEvent, index uint64, cmd *pb.Command, old, c *pb.Config) []QuotaEvent {
	switch b := cmd.Body.(type) {
	case *pb.Command_PutUsagePlan:
		id := b.PutUsagePlan.GetPlan().GetId()
		was, now := old.UsagePlans[id], c.UsagePlans[id]
		if was == nil || now == nil {
			return out
		}
		oq, oldOK := PlanQuota(was)
		nq, newOK := PlanQuota(now)
		switch {
		case oldOK == newOK && oq == nq:
		case oldOK && newOK && oq.Period == nq.Period && oq.Offset == nq.Offset && nq.Limit >= oq.Limit:
			out = append(out, QuotaEvent{PlanID: id, Index: index})
		default:
			out = append(out, QuotaEvent{PlanID: id, Index: index, Revoke: true})
		}
	case *pb.Command_DeleteUsagePlan:
		out = append(out, QuotaEvent{PlanID: b.DeleteUsagePlan.Id, Index: index, Revoke: true})
	case *pb.Command_CreateUsagePlanKey:
		out = append(out, QuotaEvent{PlanID: b.CreateUsagePlanKey.PlanId, KeyID: b.CreateUsagePlanKey.KeyId, Index: index})
	case *pb.Command_DeleteUsagePlanKey:
		out = append(out, QuotaEvent{PlanID: b.DeleteUsagePlanKey.PlanId, KeyID: b.DeleteUsagePlanKey.KeyId, Index: index, Revoke: true})
	case *pb.Command_DeleteApiKey:
		out = append(out, QuotaEvent{KeyID: b.DeleteApiKey.Id, Index: index, Revoke: true})
	case *pb.Command_PutApiKey:
		id := b.PutApiKey.GetKey().GetId()
		if k := c.ApiKeys[id]; k != nil && !k.Enabled && old.ApiKeys[id].GetEnabled() {
			out = append(out, QuotaEvent{KeyID: id, Index: index, Revoke: true})
		}
	}
	return out
}

// OnQuotaChange sets the function called, outside the FSM's lock, for each
// QuotaEvent of an applied command.
func (f *FSM) OnQuotaChange(fn func(QuotaEvent)) {
	f.mu.Lock()
	f.onQuota = fn
	f.mu.Unlock()
}

// applyLedgerGroup applies the ledger batches of a group commit in order,
// each de-duplicated by its own request id, as if each had its own entry.
func (f *FSM) applyLedgerGroup(a *applyCtx, g *pb.LedgerGroup) *pb.Result {
	res := &pb.Result{Group: make([]*pb.Result, 0, len(g.Commands))}
	for _, sub := range g.Commands {
		if rec, ok := f.dedup[sub.GetRequestId()]; ok && sub.GetRequestId() != "" && !sequenced(sub) {
			res.Group = append(res.Group, rec.Result)
			continue
		}
		var r *pb.Result
		if lb, ok := sub.GetBody().(*pb.Command_Ledger); ok {
			r = f.applyLedger(a, f.config.Load(), lb.Ledger)
		} else {
			r = fail(codeBad, "a ledger group holds only ledger batches, not %T", sub.GetBody())
		}
		r.Index, r.TimeUnix, r.TimeUnixNano = a.index, a.sec, a.ts
		if sub.GetRequestId() != "" && !sequenced(sub) {
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
	ts    int64      // Unix nanoseconds: the leader's clock when it proposed the entry
	sec   int64      // ts in Unix seconds
	old   *pb.Config // a configuration command's published configuration, shared with c
}

// cloneConfig returns a copy of old that a configuration command may
// change. Everything but the keys and their plan memberships is copied
// deep, as proto.Clone does (it is small: APIs, stages, plans, the
// account). The key maps hold one entry per key, so they are shared with
// old unless keys is set, and then copied one level deep: their entries
// are shared, and a command replaces an entry rather than changing it
// (ownPlanKeys copies a plan's membership before it changes). A command
// that adds one key therefore copies pointers, not messages.
func cloneConfig(old *pb.Config, keys bool) *pb.Config {
	rest := &pb.Config{}
	src, dst := old.ProtoReflect(), rest.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Number() {
		case fieldApiKeys, fieldPlanKeys, fieldQuotaNotices:
		default:
			dst.Set(fd, v) // shared by rest, which is only read: cloned below
		}
		return true
	})
	c := proto.Clone(rest).(*pb.Config)
	c.ApiKeys, c.PlanKeys = old.ApiKeys, old.PlanKeys
	c.QuotaNotices = old.QuotaNotices // copied by the commands that change it (fsm_notices.go)
	if keys {
		c.ApiKeys, c.PlanKeys = maps.Clone(old.ApiKeys), maps.Clone(old.PlanKeys)
	}
	fillConfigMaps(c)
	return c
}

// Field numbers of Config's key maps.
const (
	fieldApiKeys        = 5
	fieldPlanKeys       = 6
	fieldDeletedApiKeys = 50
	fieldQuotaNotices   = 70
)

// writesKeys tells whether a configuration command may change the key
// maps. Commands this list does not know of may: a new command copies
// them until it is listed here.
func writesKeys(cmd *pb.Command) bool {
	switch cmd.Body.(type) {
	case *pb.Command_CreateRestApi, *pb.Command_UpdateRestApi, *pb.Command_DeleteRestApi,
		*pb.Command_CreateDeployment, *pb.Command_PutStage, *pb.Command_DeleteStage,
		*pb.Command_PutUsagePlan, *pb.Command_UpdateAccount, *pb.Command_SetDataKey,
		*pb.Command_PutAdminCredential, *pb.Command_DeleteAdminCredential, *pb.Command_RecordQuotaNotices:
		return false
	}
	return true
}

// ownPlanKeys returns the membership of a plan in c that the command may
// change: a copy when it is still the one the published configuration
// holds. It creates an empty one when the plan has none.
func ownPlanKeys(a *applyCtx, c *pb.Config, planID string) *pb.PlanKeys {
	pk := c.PlanKeys[planID]
	if pk == nil || pk == a.old.GetPlanKeys()[planID] {
		pk = &pb.PlanKeys{Keys: maps.Clone(pk.GetKeys())}
		if pk.Keys == nil {
			pk.Keys = map[string]uint64{}
		}
		c.PlanKeys[planID] = pk
	}
	return pk
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
		Nodes:            make(map[string]*pb.NodeLedger, len(f.nodes)),
	}
	for id, st := range f.nodes {
		s.Nodes[id] = proto.Clone(st).(*pb.NodeLedger)
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
	if err := writeSnapshot(sink, s.s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM: it builds the new state aside and swaps it in.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := readSnapshot(rc)
	if err != nil {
		return err
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
		if s.Version == 1 {
			upgradeLedgerV1(l, s.LastTimeUnixNano/1e9)
		}
		m[l.KeyId] = l
	}
	nodes := s.Nodes
	if nodes == nil {
		nodes = map[string]*pb.NodeLedger{}
	}
	dedup := s.Dedup
	if dedup == nil {
		dedup = map[string]*pb.DedupRecord{}
	}
	if err := checkSnapshot(cfg, ledgers); err != nil {
		return fmt.Errorf("snapshot refused, the state is unchanged: %w", err)
	}
	f.mu.Lock()
	f.ledgers = ledgers
	f.nodes = nodes
	f.dedup = dedup
	f.lastTS = s.LastTimeUnixNano
	f.changes = changeLog{}
	f.applied.Store(s.AppliedIndex)
	f.config.Store(cfg)
	onQuota := f.onQuota
	f.mu.Unlock()
	if onQuota != nil {
		// Anything may have changed: every grant decided before is void.
		onQuota(QuotaEvent{Index: s.AppliedIndex, Revoke: true})
	}
	return nil
}

// upgradeLedgerV1 converts a ledger of snapshot version 1 (used and
// granted for the current period only): units granted then are settled
// (their nodes restart into a new run and settle them anyway), and so are
// used units no day holds, over the period until the snapshot's time.
func upgradeLedgerV1(l *pb.KeyLedger, sec int64) {
	if l.PeriodStart != 0 {
		first := DayOf(l.PeriodStart)
		var inDays int64
		for d, n := range l.Daily {
			if d >= first && d <= DayOf(sec) {
				inDays += n
			}
		}
		settled := max(l.Used-inDays, 0)
		for _, g := range l.Granted {
			settled += g
		}
		if settled > 0 {
			end := limiter.DayStart(max(first, DayOf(sec)) + 1)
			l.Settled = append(l.Settled, &pb.Grant{Start: l.PeriodStart, End: end, Units: settled})
		}
		if l.Extra != 0 {
			if l.PeriodExtra == nil {
				l.PeriodExtra = map[int64]int64{}
			}
			l.PeriodExtra[l.PeriodStart] = l.Extra
		}
	}
	l.Used, l.Granted, l.Extra = 0, nil, 0
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
	if c.DeletedApiKeys == nil {
		c.DeletedApiKeys = map[string]*pb.DeletedApiKey{}
	}
}
