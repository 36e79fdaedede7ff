package cluster

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

func cmdNotices(ns ...*pb.QuotaNotice) *pb.Command {
	return &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: ns}}}
}

// notice is a pending notice of p1/k1 in the day of t0.
func notice(threshold int32) *pb.QuotaNotice {
	start := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC).Unix()
	return &pb.QuotaNotice{PlanId: "p1", KeyId: "k1", PeriodStart: start, PeriodEnd: start + 86400,
		Threshold: threshold, Used: 8, Limit: 10, State: "pending", Sender: "n1", WebhookUrl: "http://127.0.0.1:1/hook"}
}

// TestFSMQuotaNoticesFireOnce: a threshold of a key is recorded once per
// period, whoever proposes it again; its outcome updates it; a new period
// fires again; a malformed notice changes nothing; the notices survive a
// snapshot and go with their plan.
func TestFSMQuotaNoticesFireOnce(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(10, "DAY", 0))
	if res := h.ok(cmdNotices(notice(80))); !slices.Equal(res.Ids, []string{rules.NoticeID(notice(80))}) {
		t.Fatalf("first record: ids %v", res.Ids)
	}
	// Another leader (or a retry with a new request id) proposes it again,
	// with 100 reached too: only 100 is new.
	if res := h.ok(cmdNotices(notice(80), notice(100))); !slices.Equal(res.Ids, []string{rules.NoticeID(notice(100))}) {
		t.Fatalf("second record: ids %v", res.Ids)
	}
	out := notice(80)
	out.State, out.Attempts = "delivered", 2
	h.ok(cmdNotices(out))
	pn := h.f.Config().QuotaNotices["p1"]
	if len(pn.Recent) != 2 || pn.Recent[0].State != "delivered" || pn.Recent[0].Attempts != 2 || pn.Recent[1].State != "pending" ||
		pn.Recent[0].TimeUnix != t0.Unix() || !slices.Equal(pn.Fired["k1"].Thresholds, []int32{80, 100}) {
		t.Fatalf("notices: %v", pn)
	}

	// Refused: a malformed notice, and the whole command with it.
	before := h.f.Config()
	bad := notice(0)
	if res := h.apply(cmdNotices(notice(50), bad)); res.Code != pb.ErrorCode_ERROR_CODE_BAD_REQUEST || !strings.Contains(res.Message, "threshold 0") {
		t.Fatalf("a threshold of 0: %v", res)
	}
	odd := notice(50)
	odd.State = "sent twice"
	if res := h.apply(cmdNotices(odd)); res.Code != pb.ErrorCode_ERROR_CODE_BAD_REQUEST {
		t.Fatalf("an unknown state: %v", res)
	}
	if h.f.Config() != before {
		t.Fatal("a refused command changed the configuration")
	}
	// Skipped: an unknown plan, a period that is over.
	other := notice(50)
	other.PlanId = "nope"
	over := notice(50)
	over.PeriodStart, over.PeriodEnd = over.PeriodStart-86400, over.PeriodStart
	if res := h.ok(cmdNotices(other, over)); len(res.Ids) != 0 {
		t.Fatalf("recorded %v", res.Ids)
	}

	// A snapshot keeps them (Restore checks them).
	data := persist(t, h.f)
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.Config().QuotaNotices["p1"], h.f.Config().QuotaNotices["p1"]) {
		t.Fatal("notices differ after a snapshot round trip")
	}

	// The next day is a new period: 80 fires again, and the old period's
	// record is forgotten.
	h.now = t0.Add(24 * time.Hour)
	next := notice(80)
	next.PeriodStart, next.PeriodEnd = next.PeriodStart+86400, next.PeriodEnd+86400
	if res := h.ok(cmdNotices(next)); len(res.Ids) != 1 {
		t.Fatalf("a new period: ids %v", res.Ids)
	}
	if f := h.f.Config().QuotaNotices["p1"].Fired["k1"]; f.PeriodStart != next.PeriodStart || !slices.Equal(f.Thresholds, []int32{80}) {
		t.Fatalf("fired: %v", f)
	}
	h.ok(&pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: &pb.UsagePlan{Id: "p1", Name: "p1", Quota: quota(10, "DAY", 0)}}}})
	h.ok(&pb.Command{Body: &pb.Command_DeleteUsagePlan{DeleteUsagePlan: &pb.DeleteUsagePlan{Id: "p1"}}})
	if _, ok := h.f.Config().QuotaNotices["p1"]; ok {
		t.Fatal("a deleted plan's notices were kept")
	}
}

// TestFSMRefusesBadQuotaNotifications: a plan's webhook and thresholds are
// checked by the FSM as by the admin API, and a snapshot's notices on
// Restore.
func TestFSMRefusesBadQuotaNotifications(t *testing.T) {
	h := newTestFSM(t, t0)
	h.setup(quota(10, "DAY", 0))
	for _, tc := range []struct {
		n    *pb.QuotaNotifications
		want string
	}{
		{&pb.QuotaNotifications{WebhookUrl: "ftp://x/y", Thresholds: []int32{80}}, "absolute http or https URL"},
		{&pb.QuotaNotifications{WebhookUrl: "/hook", Thresholds: []int32{80}}, "absolute http or https URL"},
		{&pb.QuotaNotifications{WebhookUrl: "https://u:p@x/y", Thresholds: []int32{80}}, "user information"},
		{&pb.QuotaNotifications{WebhookUrl: "https://x/y"}, "give 1 to 10"},
		{&pb.QuotaNotifications{WebhookUrl: "https://x/y", Thresholds: []int32{100, 80}}, "distinct and ascending"},
		{&pb.QuotaNotifications{WebhookUrl: "https://x/y", Thresholds: []int32{0}}, "from 1 to 1000"},
	} {
		before := h.f.Config()
		res := h.apply(&pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: &pb.UsagePlan{
			Id: "p1", Name: "p1", Quota: quota(10, "DAY", 0), ApiStages: apiStages("a1/prod"), QuotaNotifications: tc.n,
		}}}})
		if res.Code != pb.ErrorCode_ERROR_CODE_BAD_REQUEST || !strings.Contains(res.Message, tc.want) {
			t.Errorf("%v: %v, want %q", tc.n, res, tc.want)
		}
		if h.f.Config() != before {
			t.Errorf("%v: a refused plan changed the configuration", tc.n)
		}
	}
	h.ok(cmdNotices(notice(80)))
	base := persist(t, h.f)
	for name, change := range map[string]func(s *pb.Snapshot){
		"notices of no plan": func(s *pb.Snapshot) { s.Config.QuotaNotices["p9"] = s.Config.QuotaNotices["p1"] },
		"a notice state":     func(s *pb.Snapshot) { s.Config.QuotaNotices["p1"].Recent[0].State = "lost" },
		"a fired threshold":  func(s *pb.Snapshot) { s.Config.QuotaNotices["p1"].Fired["k1"].Thresholds = []int32{80, 80} },
	} {
		s := decodeSnapshot(t, base)
		change(s)
		g := NewFSM()
		if err := g.Restore(nopCloser{bytes.NewReader(encodeSnapshot(t, s))}); err == nil || !strings.Contains(err.Error(), "quota notices") {
			t.Errorf("%s: Restore: %v", name, err)
		}
	}
}
