package cluster

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// restoreTimeLimit bounds one input of FuzzRestore (a loop over a crafted
// span of days or periods would otherwise stall the node).
const restoreTimeLimit = 5 * time.Second

// FuzzRestore feeds Restore arbitrary bytes over a populated state machine.
// A refused snapshot returns an error and changes nothing: the same Config
// pointer, applied index and snapshot content. An accepted one holds only
// keys and plans the admin API's checks pass, and leaves a state
// whose every config map is set, that snapshots to bytes that restore to the
// same state again, and that goes on applying commands without panicking.
// Run it with go test -run '^$' -fuzz '^FuzzRestore$' ./cluster/
func FuzzRestore(f *testing.F) {
	h := newTestFSM(f, t0)
	buildState(h)
	base := persist(f, h.f)

	f.Add(base)
	f.Add(base[:len(base)/2])
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x02}) // version 2, nothing else
	f.Add([]byte{0x08, 0x01}) // version 1, nothing else
	f.Add(mustMarshal(f, &pb.Snapshot{Version: snapshotVersion + 1, Config: emptyConfig()}))
	f.Add(mustMarshal(f, &pb.Snapshot{Version: 1, LastTimeUnixNano: -1 << 63, Ledgers: map[string]*pb.KeyLedger{
		"p1/k1": {PlanId: "p1", KeyId: "k1", PeriodStart: 1 << 62, Used: 1 << 62, Granted: map[string]int64{"n1": 1 << 62}, Extra: -1},
	}}))
	f.Add(mustMarshal(f, &pb.Snapshot{Version: 2, Ledgers: map[string]*pb.KeyLedger{"x": {}}}))
	// Well-formed snapshots whose content breaks a command rule.
	for _, change := range []func(*pb.Snapshot){
		func(s *pb.Snapshot) { s.Config.ApiKeys["k2"].Value = "abcde" },
		func(s *pb.Snapshot) { s.Config.ApiKeys["k2"].Id = "k/2" },
		func(s *pb.Snapshot) { s.Config.UsagePlans["p1"].Quota.Limit = -1 },
		func(s *pb.Snapshot) { s.Config.Account.Throttle.BurstLimit = -1 },
		func(s *pb.Snapshot) { s.Config.Stages["a1/prod"].Variables["url"] = "\x00" },
	} {
		s := decodeSnapshot(f, base)
		change(s)
		f.Add(encodeSnapshot(f, s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// Restoring and applying take bounded time, whatever the snapshot.
		slow := time.AfterFunc(restoreTimeLimit, func() { panic(fmt.Sprintf("restore and apply of %x took over %v", data, restoreTimeLimit)) })
		defer slow.Stop()
		g := NewFSM()
		if err := g.Restore(nopCloser{bytes.NewReader(base)}); err != nil {
			t.Fatal(err)
		}
		before, beforeIndex := g.Config(), g.AppliedIndex()
		err := g.Restore(nopCloser{bytes.NewReader(data)})
		if err != nil {
			if g.Config() != before || g.AppliedIndex() != beforeIndex {
				t.Fatalf("a refused snapshot (%v) changed the state", err)
			}
			if after := persist(t, g); !sameSnapshot(t, after, base) {
				t.Fatalf("a refused snapshot (%v) changed the ledger", err)
			}
			return
		}
		cfg := g.Config()
		if cfg.RestApis == nil || cfg.Stages == nil || cfg.Deployments == nil ||
			cfg.UsagePlans == nil || cfg.ApiKeys == nil || cfg.PlanKeys == nil {
			t.Fatalf("restored config has a nil map: %v", cfg)
		}
		// What it holds passes the admin API's checks: every key value,
		// plan and id.
		for id, k := range cfg.ApiKeys {
			if !rules.IsID(id) || k.Id != id || rules.KeyValue(k.Value) != nil || rules.ApiKeyFields(k) != nil {
				t.Fatalf("restored an API key the admin API refuses: %q %v", id, k)
			}
		}
		for id, p := range cfg.UsagePlans {
			if !rules.IsID(id) || p.Id != id || (rules.Plan(p) != nil && !(p.IsDefault && p.Name == "")) {
				t.Fatalf("restored a usage plan the admin API refuses: %q %v", id, p)
			}
		}
		// The restored state is a fixed point of snapshot and restore.
		snap := persist(t, g)
		k := NewFSM()
		if err := k.Restore(nopCloser{bytes.NewReader(snap)}); err != nil {
			t.Fatalf("a restored state's own snapshot is refused: %v", err)
		}
		if !proto.Equal(k.Config(), g.Config()) || k.AppliedIndex() != g.AppliedIndex() {
			t.Fatal("a restored state's own snapshot restores differently")
		}
		if again := persist(t, k); !sameSnapshot(t, again, snap) {
			t.Fatal("a restored state's own snapshot snapshots differently")
		}
		// The state machine goes on: configuration and ledger commands
		// apply or are refused, and never panic.
		th := &testFSM{t: t, f: g, index: g.AppliedIndex(), now: t0}
		for _, cmd := range []*pb.Command{
			cmdLedger(&pb.LedgerBatch{NodeId: "n1", Grants: []*pb.GrantRequest{grantReq("p1", "k1", 5)}}),
			cmdLedger(&pb.LedgerBatch{NodeId: "n1", Reports: []*pb.UsageReport{{PlanId: "p1", KeyId: "k1", Day: DayOf(t0.Unix()), Count: 1}}}),
			cmdSetRemaining("p1", "k1", 3),
			cmdKey("kf", "valueXofXkeyXfuzzX000000"),
			cmdAttach("p1", "kf"),
			cmdPlan("p1", false, quota(10, "WEEK", 1), "a1/prod"),
			cmdDetach("p1", "k1"),
			{Body: &pb.Command_DeleteUsagePlan{DeleteUsagePlan: &pb.DeleteUsagePlan{Id: "p1"}}},
			{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "a1"}}},
		} {
			th.apply(cmd)
		}
		_ = persist(t, g)
	})
}
