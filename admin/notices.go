package admin

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// Quota notifications, a Tollgate extension: a plan names a webhook and
// thresholds (percents of its quota), and the leader sends a notice as
// each key reaches each of them in a period (package notify).

type quotaNotificationsIn struct {
	WebhookURL string  `json:"webhookUrl"`
	Thresholds []int64 `json:"thresholds"`
}

type quotaNotificationsView struct {
	WebhookURL string  `json:"webhookUrl"`
	Thresholds []int32 `json:"thresholds"`
}

func notificationsView(n *pb.QuotaNotifications) *quotaNotificationsView {
	if n == nil {
		return nil
	}
	return &quotaNotificationsView{WebhookURL: n.GetWebhookUrl(), Thresholds: append([]int32{}, n.GetThresholds()...)}
}

func notificationsOf(p *pb.UsagePlan) *pb.QuotaNotifications {
	if p.QuotaNotifications == nil {
		p.QuotaNotifications = &pb.QuotaNotifications{}
	}
	return p.QuotaNotifications
}

// parseThresholds reads a PATCH value of thresholds: percents separated by
// commas, "80,100".
func parseThresholds(v string) ([]int32, *apiError) {
	var out []int32
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || n < 1 || n > rules.MaxNotifyThreshold {
			return nil, badRequest("Invalid quota notification thresholds %q: percents from 1 to %d separated by commas, such as 80,100", truncate(v), rules.MaxNotifyThreshold)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

// noticeView is one quota notice as GET /usageplans/{id}/notifications
// shows it.
type noticeView struct {
	KeyID       string `json:"keyId"`
	PeriodStart string `json:"periodStart"`
	PeriodEnd   string `json:"periodEnd"`
	Threshold   int32  `json:"threshold"`
	Used        int64  `json:"used"`
	Limit       int64  `json:"limit"`
	Time        int64  `json:"time"`
	State       string `json:"state"`
	Attempts    int32  `json:"attempts"`
	Error       string `json:"error,omitempty"`
	Sender      string `json:"sender"`
}

// listNotices is GET /usageplans/{id}/notifications: the plan's latest
// quota notices, newest first (at most rules.MaxRecentNotices).
func (s *Server) listNotices(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("usageplan_id")
	cfg := s.store.Config()
	if cfg.GetUsagePlans()[id] == nil {
		return notFound(msgPlanNotFound)
	}
	recent := cfg.GetQuotaNotices()[id].GetRecent()
	items := make([]noticeView, 0, len(recent))
	for _, n := range slices.Backward(recent) {
		items = append(items, noticeView{
			KeyID:       n.GetKeyId(),
			PeriodStart: time.Unix(n.GetPeriodStart(), 0).UTC().Format(time.RFC3339),
			PeriodEnd:   time.Unix(n.GetPeriodEnd(), 0).UTC().Format(time.RFC3339),
			Threshold:   n.GetThreshold(),
			Used:        n.GetUsed(),
			Limit:       n.GetLimit(),
			Time:        n.GetTimeUnix(),
			State:       n.GetState(),
			Attempts:    n.GetAttempts(),
			Error:       n.GetError(),
			Sender:      n.GetSender(),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": items})
	return nil
}
