package notify

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/proxy"
)

var now = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// leaderStore is the state machine in memory, leading or not.
type leaderStore struct {
	*clustertest.MemStore[*cluster.FSM]
	leader atomic.Bool
}

func (s *leaderStore) IsLeader() bool { return s.leader.Load() }

// hook is a webhook that fails its first fail answers and keeps what it got.
type hook struct {
	*httptest.Server
	mu   sync.Mutex
	got  []payload
	ids  []string
	fail int
}

func newHook(t *testing.T, fail int) *hook {
	h := &hook{fail: fail}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail > 0 {
			h.fail--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var p payload
		if err := json.Unmarshal(b, &p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		h.got = append(h.got, p)
		h.ids = append(h.ids, r.Header.Get("Tollgate-Notice-Id"))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) received() []payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]payload(nil), h.got...)
}

func setup(t *testing.T, webhook string) *leaderStore {
	t.Helper()
	s := &leaderStore{MemStore: clustertest.NewMemStore(cluster.NewFSM())}
	s.SetClock(func() time.Time { return now })
	s.leader.Store(true)
	for _, cmd := range []*pb.Command{
		{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Create: true, Key: &pb.ApiKey{Id: "k1", Name: "k1", Enabled: true, Value: strings.Repeat("v", 30)}}}},
		{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Create: true, Plan: &pb.UsagePlan{Id: "p1", Name: "p1",
			Quota:              &pb.QuotaSettings{Limit: 10, Period: "DAY"},
			QuotaNotifications: &pb.QuotaNotifications{WebhookUrl: webhook, Thresholds: []int32{50, 100}}}}}},
		{Body: &pb.Command_CreateUsagePlanKey{CreateUsagePlanKey: &pb.CreateUsagePlanKey{PlanId: "p1", KeyId: "k1"}}},
	} {
		if res, err := s.Apply(t.Context(), cmd); err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("%T: %v %v", cmd.Body, err, res)
		}
	}
	return s
}

func report(t *testing.T, s *leaderStore, n int64) {
	t.Helper()
	res, err := s.Apply(t.Context(), &pb.Command{Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{NodeId: "n1",
		Reports: []*pb.UsageReport{{PlanId: "p1", KeyId: "k1", Day: limiter.DayOf(now.Unix()), Count: n}}}}})
	if err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("report: %v %v", err, res)
	}
}

func newNotifier(t *testing.T, s Cluster, control *proxy.UpstreamPolicy) *Notifier {
	t.Helper()
	cfg := Config{NodeID: "n1", Cluster: s, Now: func() time.Time { return now }, Backoff: time.Millisecond, Attempts: 4,
		Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if control != nil {
		cfg.Control = control.DialControl
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// waitState polls, with a deadline, until the plan's notice of threshold
// th is in state want, and returns it.
func waitState(t *testing.T, s *leaderStore, th int32, want string) *pb.QuotaNotice {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range s.Config().GetQuotaNotices()["p1"].GetRecent() {
			if r.Threshold == th && r.State == want {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notice of %d%% in state %s: %v", th, want, s.Config().GetQuotaNotices()["p1"])
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestNotifierFiresEachThresholdOnce: 5 of 10 fires 50% once, delivered
// after two failed tries; looking again sends nothing; 10 of 10 fires
// 100% alone.
func TestNotifierFiresEachThresholdOnce(t *testing.T) {
	h := newHook(t, 2)
	s := setup(t, h.URL+"/q")
	n := newNotifier(t, s, nil)
	report(t, s, 4)
	n.Tick(t.Context())
	if s.Config().GetQuotaNotices()["p1"] != nil {
		t.Fatal("4 of 10 fired 50%")
	}
	report(t, s, 1)
	n.Tick(t.Context())
	rec := waitState(t, s, 50, "delivered")
	if rec.Attempts != 3 || rec.Used != 5 || rec.Limit != 10 || rec.Sender != "n1" {
		t.Fatalf("notice: %v", rec)
	}
	n.Tick(t.Context())
	report(t, s, 5)
	n.Tick(t.Context())
	waitState(t, s, 100, "delivered")
	got := h.received()
	if len(got) != 2 || got[0].Threshold != 50 || got[1].Threshold != 100 || got[0].PlanID != "p1" || got[0].KeyID != "k1" ||
		got[0].Period.Start != "2026-03-15T00:00:00Z" || got[0].Period.End != "2026-03-16T00:00:00Z" || got[1].Used != 10 ||
		got[0].ID != "p1/k1/"+itoa(now.Truncate(24*time.Hour).Unix())+"/50" || h.ids[0] != got[0].ID {
		t.Fatalf("webhook got %+v %v", got, h.ids)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestNotifierFailsAfterAttemptsAndObeysThePolicy: a webhook that always
// fails is tried Attempts times and recorded failed; one on a link-local
// address is refused at the dial, never reached.
func TestNotifierFailsAfterAttemptsAndObeysThePolicy(t *testing.T) {
	h := newHook(t, 1000)
	s := setup(t, h.URL)
	n := newNotifier(t, s, nil)
	report(t, s, 5)
	n.Tick(t.Context())
	if rec := waitState(t, s, 50, "failed"); rec.Attempts != 4 || !strings.Contains(rec.Error, "503") {
		t.Fatalf("notice: %v", rec)
	}

	s2 := setup(t, "http://169.254.169.254/latest/meta-data")
	n2 := newNotifier(t, s2, &proxy.UpstreamPolicy{})
	report(t, s2, 5)
	n2.Tick(t.Context())
	if rec := waitState(t, s2, 50, "failed"); !strings.Contains(rec.Error, "link-local") {
		t.Fatalf("notice: %v", rec)
	}
}

// TestNotifierResendsAPendingNoticeAndStopsWhenNotLeading: a notice
// another leader recorded and never finished is sent by the next one; a
// node that does not lead records and sends nothing.
func TestNotifierResendsAPendingNoticeAndStopsWhenNotLeading(t *testing.T) {
	h := newHook(t, 0)
	s := setup(t, h.URL)
	start := now.Truncate(24 * time.Hour).Unix()
	res, err := s.Apply(t.Context(), &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: []*pb.QuotaNotice{{
		PlanId: "p1", KeyId: "k1", PeriodStart: start, PeriodEnd: start + 86400, Threshold: 50, Used: 5, Limit: 10,
		State: "pending", Sender: "n0", WebhookUrl: h.URL}}}}})
	if err != nil || len(res.Ids) != 1 {
		t.Fatalf("record: %v %v", err, res)
	}
	report(t, s, 5)
	n := newNotifier(t, s, nil)
	n.Tick(t.Context())
	waitState(t, s, 50, "delivered")
	if got := h.received(); len(got) != 1 {
		t.Fatalf("webhook got %d notices, want 1: %+v", len(got), got)
	}

	s2 := setup(t, h.URL)
	s2.leader.Store(false)
	n2 := newNotifier(t, s2, nil)
	report(t, s2, 10)
	res, err = s2.Apply(t.Context(), &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: []*pb.QuotaNotice{{
		PlanId: "p1", KeyId: "k1", PeriodStart: start, PeriodEnd: start + 86400, Threshold: 100, Used: 10, Limit: 10,
		State: "pending", Sender: "n0", WebhookUrl: h.URL}}}}})
	if err != nil || len(res.Ids) != 1 {
		t.Fatalf("record: %v %v", err, res)
	}
	n2.deliver("p1/k1/x/100", s2.Config().GetQuotaNotices()["p1"].GetRecent()[0])
	if got := h.received(); len(got) != 1 {
		t.Fatalf("a node that does not lead sent a notice: %+v", got)
	}
	if r := s2.Config().GetQuotaNotices()["p1"].GetRecent()[0]; r.State != "pending" {
		t.Fatalf("a node that does not lead recorded an outcome: %v", r)
	}
}
