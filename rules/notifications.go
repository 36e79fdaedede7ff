package rules

import (
	"fmt"
	"net/url"
	"slices"

	pb "github.com/tollgate/tollgate/proto"
)

// Quota notification bounds.
const (
	MaxNotifyThresholds = 10   // thresholds per plan
	MaxNotifyThreshold  = 1000 // percent of the limit
	MaxWebhookURL       = 2048 // bytes
	MaxRecentNotices    = 100  // notices a plan keeps
)

// Notice states.
const (
	NoticePending   = "pending"
	NoticeDelivered = "delivered"
	NoticeFailed    = "failed"
)

// QuotaNotifications checks a plan's quota notification settings: an
// absolute http or https webhook URL without credentials in it, and 1 to
// MaxNotifyThresholds distinct thresholds from 1 to MaxNotifyThreshold
// percent, ascending.
func QuotaNotifications(n *pb.QuotaNotifications) error {
	raw := n.GetWebhookUrl()
	if len(raw) > MaxWebhookURL {
		return Errorf("Invalid quota notification webhook URL: at most %d characters", MaxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return Errorf("Invalid quota notification webhook URL %q: it must be an absolute http or https URL such as https://hooks.example.com/quota", Truncate(raw))
	}
	if u.User != nil {
		return Errorf("Invalid quota notification webhook URL %q: user information is not allowed (put a secret in the path)", Truncate(u.Redacted()))
	}
	th := n.GetThresholds()
	if len(th) == 0 || len(th) > MaxNotifyThresholds {
		return Errorf("Invalid quota notification thresholds: give 1 to %d percents", MaxNotifyThresholds)
	}
	for i, t := range th {
		if t < 1 || t > MaxNotifyThreshold {
			return Errorf("Invalid quota notification threshold %d: a percent from 1 to %d", t, MaxNotifyThreshold)
		}
		if i > 0 && t <= th[i-1] {
			return Errorf("Invalid quota notification thresholds %v: they must be distinct and ascending", th)
		}
	}
	return nil
}

// QuotaNotice checks one recorded notice, as the leader records it.
func QuotaNotice(n *pb.QuotaNotice) error {
	switch {
	case n.GetPlanId() == "" || n.GetKeyId() == "":
		return Errorf("Invalid quota notice: a plan id and a key id are required")
	case n.GetPeriodEnd() <= n.GetPeriodStart():
		return Errorf("Invalid quota notice: its period ends before it starts")
	case n.GetThreshold() < 1 || n.GetThreshold() > MaxNotifyThreshold:
		return Errorf("Invalid quota notice threshold %d", n.GetThreshold())
	case n.GetUsed() < 0 || n.GetLimit() < 0 || n.GetAttempts() < 0:
		return Errorf("Invalid quota notice: negative counts")
	case !slices.Contains([]string{NoticePending, NoticeDelivered, NoticeFailed}, n.GetState()):
		return Errorf("Invalid quota notice state %q", Truncate(n.GetState()))
	case len(n.GetError()) > 1024 || len(n.GetWebhookUrl()) > MaxWebhookURL:
		return Errorf("Invalid quota notice: error or webhook URL too long")
	}
	return nil
}

// NoticeID names a quota notice: one per plan, key, period and threshold.
func NoticeID(n *pb.QuotaNotice) string {
	return fmt.Sprintf("%s/%s/%d/%d", n.GetPlanId(), n.GetKeyId(), n.GetPeriodStart(), n.GetThreshold())
}
