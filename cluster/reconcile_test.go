package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var rt0 = date(2025, 3, 1, 12, 0, 0)

func voter(id string) raft.Server {
	return raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":1"), Suffrage: raft.Voter}
}

func nonvoter(id string) raft.Server {
	return raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":1"), Suffrage: raft.Nonvoter}
}

// member is an alive member at the address voter and nonvoter use.
func member(id string) Member {
	return Member{ID: id, RaftAddr: id + ":1", GRPCAddr: id + ":2", State: "alive", Since: rt0.Add(-time.Hour), DataID: "dir-" + id}
}

func with(m Member, change func(*Member)) Member { change(&m); return m }

func membersOf(ms ...Member) map[string]Member {
	out := map[string]Member{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

// acts renders a plan's actions as "kind id" for comparison.
func acts(p reconcilePlan) []string {
	out := []string{}
	for _, a := range p.Actions {
		s := a.Kind.String() + " " + a.ID
		if a.Kind == actMove {
			s += fmt.Sprintf(" %s voter=%v", a.Addr, a.Voter)
		}
		out = append(out, s)
	}
	return out
}

func TestDecide(t *testing.T) {
	dead := func(since time.Duration) func(*Member) {
		return func(m *Member) { m.State, m.Since = "dead", rt0.Add(-since) }
	}
	cases := []struct {
		name    string
		in      reconcileInput
		want    []string
		missing map[string]time.Time
		seats   map[string]string
	}{
		{
			name: "a new member alive joins as a non-voter; dead, addressless and the leader itself do not",
			in: reconcileInput{
				Servers: []raft.Server{voter("a")},
				Members: membersOf(member("a"), member("b"), with(member("c"), dead(time.Second)), with(member("d"), func(m *Member) { m.RaftAddr = "" })),
			},
			want:  []string{"add b"},
			seats: map[string]string{"a": "dir-a"},
		},
		{
			name: "a non-voter the leader replicated to within 1000 entries of its commit index is promoted; one 1001 behind, one the leader has no acknowledgement from, and a fresh one are not",
			in: reconcileInput{
				Servers:     []raft.Server{voter("a"), nonvoter("b"), nonvoter("c"), nonvoter("d"), nonvoter("e")},
				Members:     membersOf(member("a"), member("b"), member("c"), member("d"), with(member("e"), func(m *Member) { m.Fresh = true })),
				Progress:    map[string]uint64{"b": 4000, "c": 3999, "e": 5000},
				LeaderIndex: 5000,
			},
			want:  []string{"promote b"},
			seats: map[string]string{"a": "dir-a", "b": "dir-b", "c": "dir-c", "d": "dir-d"},
		},
		{
			name: "address changes are followed, the leader's own too, keeping suffrage",
			in: reconcileInput{
				Servers: []raft.Server{voter("a"), voter("b"), nonvoter("c")},
				Members: membersOf(
					with(member("a"), func(m *Member) { m.RaftAddr = "a:9" }),
					with(member("b"), func(m *Member) { m.RaftAddr = "b:9" }),
					with(member("c"), func(m *Member) { m.RaftAddr = "c:9" }),
				),
			},
			want: []string{"move a a:9 voter=true", "move b b:9 voter=true", "move c c:9 voter=false"},
		},
		{
			name: "a member that left is reaped at once; a dead one after ReapAfter, not before; a suspect one never",
			in: reconcileInput{
				ReapAfter: time.Minute,
				Servers:   []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e"), voter("f"), voter("g")},
				Members: membersOf(member("a"), member("b"), member("c"),
					with(member("d"), func(m *Member) { m.State = "left" }),
					with(member("e"), dead(time.Minute)),
					with(member("f"), dead(time.Minute-time.Second)),
					with(member("g"), func(m *Member) { m.State, m.Since = "suspect", rt0.Add(-time.Hour) })),
			},
			want: []string{"reap d", "reap e"},
		},
		{
			name: "a server unknown to gossip is reaped ReapAfter after it was first missed",
			in: reconcileInput{
				ReapAfter:    time.Minute,
				Servers:      []raft.Server{voter("a"), nonvoter("x"), nonvoter("y")},
				Members:      membersOf(member("a")),
				MissingSince: map[string]time.Time{"x": rt0.Add(-time.Minute)},
			},
			want:    []string{"reap x"},
			missing: map[string]time.Time{"x": rt0.Add(-time.Minute), "y": rt0},
		},
		{
			name: "quorum cap: with two of three voters dead, neither is reaped",
			in: reconcileInput{
				ReapAfter: time.Second,
				Servers:   []raft.Server{voter("a"), voter("b"), voter("c")},
				Members:   membersOf(member("a"), with(member("b"), dead(time.Hour)), with(member("c"), dead(time.Hour))),
			},
			want: []string{},
		},
		{
			name: "quorum cap: two of five dead are both reaped; non-voters are reaped whatever the count",
			in: reconcileInput{
				ReapAfter: time.Second,
				Servers:   []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e"), nonvoter("f")},
				Members: membersOf(member("a"), member("b"), member("c"),
					with(member("d"), dead(time.Hour)), with(member("e"), dead(time.Hour)), with(member("f"), dead(time.Hour))),
			},
			want: []string{"reap d", "reap e", "reap f"},
		},
		{
			name: "quorum cap: three of five dead, none is reaped",
			in: reconcileInput{
				ReapAfter: time.Second,
				Servers:   []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e")},
				Members: membersOf(member("a"), member("b"),
					with(member("c"), dead(time.Hour)), with(member("d"), dead(time.Hour)), with(member("e"), dead(time.Hour))),
			},
			want: []string{},
		},
		{
			name: "item 14: a voter back on a fresh data dir gets a new non-voter seat; a fresh non-voter waits for its seat",
			in: reconcileInput{
				Servers: []raft.Server{voter("a"), voter("b"), voter("c"), nonvoter("d")},
				Members: membersOf(member("a"), member("b"),
					with(member("c"), func(m *Member) { m.Fresh, m.DataID = true, "dir-c2" }),
					with(member("d"), func(m *Member) { m.Fresh = true })),
			},
			want:  []string{"replace c"},
			seats: map[string]string{"a": "dir-a", "b": "dir-b"},
		},
		{
			name: "item 14: a member whose data dir differs from the one recorded for its seat is replaced, voter or not",
			in: reconcileInput{
				Servers: []raft.Server{voter("a"), voter("b"), voter("c"), nonvoter("d")},
				Members: membersOf(member("a"), member("b"), member("c"), member("d")),
				Seats:   map[string]string{"c": "dir-old", "d": "dir-old"},
			},
			want:  []string{"replace c", "replace d"},
			seats: map[string]string{"a": "dir-a", "b": "dir-b", "c": "dir-old", "d": "dir-old"},
		},
		{
			name: "item 14: a fresh voter that agreed to the leader's own bootstrap keeps its seat",
			in: reconcileInput{
				SelfBoot: "view1",
				Servers:  []raft.Server{voter("a"), voter("b"), voter("c")},
				Members: membersOf(member("a"), member("b"),
					with(member("c"), func(m *Member) { m.Fresh, m.Boot = true, "view1" })),
			},
			want:  []string{},
			seats: map[string]string{"a": "dir-a", "b": "dir-b"},
		},
		{
			name: "item 14 and the quorum cap: a stale voter is not removed when the voters holding their seats would fall below quorum",
			in: reconcileInput{
				ReapAfter: time.Hour,
				Servers:   []raft.Server{voter("a"), voter("b"), voter("c")},
				Members: membersOf(member("a"), with(member("b"), dead(time.Second)),
					with(member("c"), func(m *Member) { m.Fresh = true })),
			},
			want: []string{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Self, c.in.Now = "a", rt0
			p := decide(c.in)
			if got := acts(p); !slices.Equal(got, c.want) {
				t.Fatalf("actions %q, want %q", got, c.want)
			}
			if c.missing == nil {
				c.missing = map[string]time.Time{}
			}
			if fmt.Sprint(p.MissingSince) != fmt.Sprint(c.missing) {
				t.Fatalf("missing since %v, want %v", p.MissingSince, c.missing)
			}
			if c.seats != nil && fmt.Sprint(p.Seats) != fmt.Sprint(c.seats) {
				t.Fatalf("seats %v, want %v", p.Seats, c.seats)
			}
		})
	}
}

// TestItem14BootstrapOnlyOnAgreement: two nodes that see different
// members would each have bootstrapped the lowest ids they saw, two
// different configurations; now neither bootstraps until every server of
// one view publishes that same view.
func TestItem14BootstrapOnlyOnAgreement(t *testing.T) {
	a, b, c, d := member("a"), member("b"), member("c"), member("d")
	// b does not see a yet; c sees everyone.
	viewB, digestB := bootstrapView("b", 3, []Member{b, c, d})
	viewC, digestC := bootstrapView("c", 3, []Member{a, b, c, d})
	if digestB == "" || digestC == "" || digestB == digestC {
		t.Fatalf("views %v (%s) and %v (%s): want two different views", viewB, digestB, viewC, digestC)
	}
	publish := func(digests map[string]string) map[string]Member {
		ms := membersOf(a, b, c, d)
		for id, dg := range digests {
			m := ms[id]
			m.Boot = dg
			ms[id] = m
		}
		return ms
	}
	split := publish(map[string]string{"b": digestB, "c": digestC, "d": digestB, "a": digestC})
	if bootstrapAgreed(viewB, digestB, split) || bootstrapAgreed(viewC, digestC, split) {
		t.Fatal("a node bootstrapped a view the others of it do not publish")
	}
	// Once b sees a too, every node computes and publishes one view.
	viewB, digestB = bootstrapView("b", 3, []Member{a, b, c, d})
	if digestB != digestC || !slices.Equal(viewB, viewC) {
		t.Fatalf("same members, different views: %v %v", viewB, viewC)
	}
	agreed := publish(map[string]string{"a": digestC, "b": digestC, "c": digestC})
	if !bootstrapAgreed(viewC, digestC, agreed) {
		t.Fatal("every server of the view publishes it, yet no agreement")
	}
	// A server of the view that is not alive, or has Raft state, breaks it.
	for _, change := range []func(*Member){
		func(m *Member) { m.State = "dead" },
		func(m *Member) { m.Stateful = true },
		func(m *Member) { m.Boot = "" },
	} {
		ms := publish(map[string]string{"a": digestC, "b": digestC, "c": digestC})
		ms["b"] = with(ms["b"], change)
		if bootstrapAgreed(viewC, digestC, ms) {
			t.Fatalf("agreement with b = %+v", ms["b"])
		}
	}
}

func TestItem14NoBootstrapNextToRaftState(t *testing.T) {
	a, b, c := member("a"), member("b"), member("c")
	// A member with Raft state: a cluster exists, its leader adds us.
	if v, _ := bootstrapView("a", 3, []Member{a, with(b, func(m *Member) { m.Stateful = true }), c}); v != nil {
		t.Fatalf("bootstrap next to a node with raft state: %v", v)
	}
	// Not among the lowest ids: wait to be added.
	if v, _ := bootstrapView("c", 2, []Member{a, b, c}); v != nil {
		t.Fatalf("bootstrap a view without this node: %v", v)
	}
	// Too few members alive.
	if v, _ := bootstrapView("a", 3, []Member{a, b, with(c, func(m *Member) { m.State = "dead" })}); v != nil {
		t.Fatalf("bootstrap with a dead member: %v", v)
	}
}
