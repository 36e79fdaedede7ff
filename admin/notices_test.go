package admin

import (
	"strings"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
)

// TestPlanQuotaNotifications: a plan's webhook and thresholds through
// CreateUsagePlan, GetUsagePlan and UpdateUsagePlan's paths; bad ones are
// 400 and change nothing.
func TestPlanQuotaNotifications(t *testing.T) {
	e := newEnv(t)
	id := e.plan(map[string]any{"name": "gold", "quota": map[string]any{"limit": 10, "period": "DAY"},
		"quotaNotifications": map[string]any{"webhookUrl": "https://hooks.example.com/q", "thresholds": []int{80, 100}}})
	got := e.must("GET", "/usageplans/"+id, nil, 200)["quotaNotifications"].(map[string]any)
	if got["webhookUrl"] != "https://hooks.example.com/q" || len(got["thresholds"].([]any)) != 2 {
		t.Fatalf("quotaNotifications: %v", got)
	}
	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"webhookUrl": "file:///etc/passwd", "thresholds": []int{80}}, "must be an absolute http or https URL"},
		{map[string]any{"webhookUrl": "https://x/y", "thresholds": []int{80, 80}}, "distinct and ascending"},
		{map[string]any{"webhookUrl": "https://x/y", "thresholds": []int{5000}}, "a percent from 1 to 1000"},
		{map[string]any{"webhookUrl": "https://x/y"}, "give 1 to 10 percents"},
	} {
		r := e.do("POST", "/usageplans", map[string]any{"name": "bad", "quotaNotifications": c.body})
		if r.code != 400 || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("%v: %d %s, want 400 %q", c.body, r.code, r.body, c.msg)
		}
	}
	if n := len(e.store.Config().GetUsagePlans()); n != 1 {
		t.Fatalf("refused creates made plans: %d", n)
	}

	e.must("PATCH", "/usageplans/"+id, patch(op("replace", "/quotaNotifications/thresholds", "50, 90"),
		op("replace", "/quotaNotifications/webhookUrl", "http://127.0.0.1:3000/hook")), 200)
	n := e.store.Config().GetUsagePlans()[id].GetQuotaNotifications()
	if n.GetWebhookUrl() != "http://127.0.0.1:3000/hook" || len(n.GetThresholds()) != 2 || n.GetThresholds()[0] != 50 {
		t.Fatalf("after PATCH: %v", n)
	}
	before := e.store.Config()
	wantError(t, e.do("PATCH", "/usageplans/"+id, patch(op("replace", "/quotaNotifications/thresholds", "x"))), 400, "BadRequestException",
		`Invalid quota notification thresholds "x": percents from 1 to 1000 separated by commas, such as 80,100`)
	wantError(t, e.do("PATCH", "/usageplans/"+id, patch(op("replace", "/quotaNotifications/webhookUrl", "http://[::1"))), 400, "BadRequestException",
		`Invalid quota notification webhook URL "http://[::1": it must be an absolute http or https URL such as https://hooks.example.com/quota`)
	if e.store.Config() != before {
		t.Fatal("a refused PATCH changed the configuration")
	}
	e.must("PATCH", "/usageplans/"+id, patch(op("remove", "/quotaNotifications", "")), 200)
	if e.store.Config().GetUsagePlans()[id].GetQuotaNotifications() != nil {
		t.Fatal("remove /quotaNotifications left them")
	}
	// A plan without a webhook gets one with thresholds in one PATCH.
	e.must("PATCH", "/usageplans/"+id, patch(op("add", "/quotaNotifications/webhookUrl", "https://x/y"), op("add", "/quotaNotifications/thresholds", "100")), 200)
}

// TestListQuotaNotices: GET /usageplans/{id}/notifications lists what the
// leader recorded, newest first.
func TestListQuotaNotices(t *testing.T) {
	e := newEnv(t)
	id := e.plan(map[string]any{"name": "gold", "quota": map[string]any{"limit": 10, "period": "DAY"}})
	if items := e.must("GET", "/usageplans/"+id+"/notifications", nil, 200)["item"].([]any); len(items) != 0 {
		t.Fatalf("items: %v", items)
	}
	start := testNow.Truncate(24 * 3600e9).Unix()
	n := func(th int32, state string) *pb.QuotaNotice {
		return &pb.QuotaNotice{PlanId: id, KeyId: "k1", PeriodStart: start, PeriodEnd: start + 86400, Threshold: th, Used: int64(th) / 10, Limit: 10, State: state, Sender: "n1"}
	}
	for _, ns := range [][]*pb.QuotaNotice{{n(80, "pending")}, {n(100, "pending")}, {n(80, "delivered")}} {
		res, err := e.store.Apply(t.Context(), &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: ns}}})
		if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("record: %v %v", err, res)
		}
	}
	items := e.must("GET", "/usageplans/"+id+"/notifications", nil, 200)["item"].([]any)
	if len(items) != 2 {
		t.Fatalf("items: %v", items)
	}
	first, second := items[0].(map[string]any), items[1].(map[string]any)
	if first["threshold"] != 100.0 || first["state"] != "pending" || second["threshold"] != 80.0 || second["state"] != "delivered" ||
		second["keyId"] != "k1" || second["periodStart"] != testNow.Truncate(24*3600e9).UTC().Format("2006-01-02T15:04:05Z") {
		t.Fatalf("items: %v", items)
	}
	wantError(t, e.do("GET", "/usageplans/nope00/notifications", nil), 404, "NotFoundException", msgPlanNotFound)
}
