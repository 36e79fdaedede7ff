package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// Cluster is what the notifier needs from the cluster.
type Cluster interface {
	// IsLeader tells whether this node leads now.
	IsLeader() bool
	// Config is the current configuration (immutable).
	Config() *pb.Config
	// KeyLedgers returns copies of the quota ledgers of a plan's keys.
	KeyLedgers(planID string) []*pb.KeyLedger
	// Apply proposes a command through Raft.
	Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error)
}

// Config configures a Notifier.
type Config struct {
	// NodeID names this node as the sender of the notices it records. Required.
	NodeID string
	// Cluster is the cluster's state. Required.
	Cluster Cluster
	// Now is the ledger's clock: the leader's, corrected to the voters'
	// (quota periods are decided on it). Default time.Now.
	Now func() time.Time
	// Interval is how often the leader looks for thresholds reached.
	// Default 1s.
	Interval time.Duration
	// Attempts is how many times a notice is tried. Default 5.
	Attempts int
	// Backoff is the wait before the second try, doubled before each
	// next one. Default 1s.
	Backoff time.Duration
	// Timeout bounds each try. Default 10s.
	Timeout time.Duration
	// Control checks each address dialed (proxy.UpstreamPolicy.DialControl).
	// Default: none.
	Control func(network, address string, c syscall.RawConn) error
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives tollgate_quota_notices_total. Default: none.
	Registerer prometheus.Registerer
}

// Validate reports whether the configuration can build a Notifier.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("notify: Config.NodeID is required")
	case c.Cluster == nil:
		return errors.New("notify: Config.Cluster is required")
	case c.Interval < 0 || c.Attempts < 0 || c.Backoff < 0 || c.Timeout < 0:
		return errors.New("notify: Config durations and Attempts must not be negative")
	}
	return nil
}

// maxSending bounds the notices sent at once.
const maxSending = 8

// Notifier is the leader's quota notice sender. Start runs it; Close stops it.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	sent   *prometheus.CounterVec

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{}

	mu      sync.Mutex
	sending map[string]bool // notice ids this process is sending
}

// New builds a Notifier from a validated Config.
func New(cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, maxSending), sending: map[string]bool{}}
	n.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_quota_notices_total",
		Help: "Quota notices this node sent as leader, by outcome (delivered, failed, or abandoned when it stopped leading).",
	}, []string{"outcome"})
	for _, o := range []string{"delivered", "failed", "abandoned"} {
		n.sent.WithLabelValues(o)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(n.sent); err != nil {
			return nil, err
		}
	}
	d := &net.Dialer{Timeout: cfg.Timeout, Control: cfg.Control}
	n.client = &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute},
		// A redirect is an answer, not a delivery.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Start runs the loop until Close.
func (n *Notifier) Start() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(n.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
				if n.cfg.Cluster.IsLeader() {
					n.Tick(n.ctx)
				}
			}
		}
	}()
}

// Close stops the loop and the sends in flight, and waits for them.
func (n *Notifier) Close() {
	n.cancel()
	n.wg.Wait()
	n.client.CloseIdleConnections()
}

// Tick records the thresholds reached since the last look and starts
// sending every notice still pending that this process is not sending.
func (n *Notifier) Tick(ctx context.Context) {
	if due := n.due(); len(due) > 0 {
		ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
		res, err := n.cfg.Cluster.Apply(ctx, &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: due}}})
		cancel()
		if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
			n.log.Warn("could not record quota notices; trying again", "err", err, "result", res.GetMessage())
			return
		}
	}
	cfg := n.cfg.Cluster.Config()
	for _, planID := range slices.Sorted(maps.Keys(cfg.GetQuotaNotices())) {
		for _, rec := range cfg.GetQuotaNotices()[planID].GetRecent() {
			if rec.GetState() == rules.NoticePending {
				n.send(rec)
			}
		}
	}
}

// due lists, as pending notices, the thresholds keys reached in their
// current period that the configuration does not record as reached.
func (n *Notifier) due() []*pb.QuotaNotice {
	cfg := n.cfg.Cluster.Config()
	now := n.cfg.Now().Unix()
	var out []*pb.QuotaNotice
	for _, planID := range slices.Sorted(maps.Keys(cfg.GetUsagePlans())) {
		p := cfg.GetUsagePlans()[planID]
		nc := p.GetQuotaNotifications()
		q := p.GetQuota()
		if nc == nil || q == nil {
			continue
		}
		quota, err := limiter.ParseQuota(q.GetPeriod(), int64(q.GetOffset()), q.GetLimit())
		if err != nil {
			continue
		}
		start, end := quota.Bounds(now)
		fired := cfg.GetQuotaNotices()[planID].GetFired()
		for _, l := range n.cfg.Cluster.KeyLedgers(planID) {
			limit := quota.Limit + l.GetPeriodExtra()[start]
			if limit <= 0 {
				continue
			}
			used := consumed(l, start, end)
			var reached []int32
			if f := fired[l.GetKeyId()]; f.GetPeriodStart() == start {
				reached = f.GetThresholds()
			}
			for _, t := range nc.GetThresholds() {
				if used*100 >= int64(t)*limit && !slices.Contains(reached, t) {
					out = append(out, &pb.QuotaNotice{PlanId: planID, KeyId: l.GetKeyId(), PeriodStart: start, PeriodEnd: end,
						Threshold: t, Used: used, Limit: limit, State: rules.NoticePending, Sender: n.cfg.NodeID, WebhookUrl: nc.GetWebhookUrl()})
				}
			}
		}
	}
	return out
}

// consumed is what the ledger counts as used in the period [start, end):
// the requests reported on its days and the settled units of grants whose
// period overlaps it (cluster/DESIGN.md, "The quota ledger").
func consumed(l *pb.KeyLedger, start, end int64) int64 {
	var sum int64
	period := limiter.Span{Start: start, End: end}
	for _, g := range l.GetSettled() {
		if period.Overlaps(limiter.Span{Start: g.GetStart(), End: g.GetEnd()}) {
			sum += g.GetUnits()
		}
	}
	for d := limiter.DayOf(start); d < limiter.DayOf(end-1)+1; d++ {
		sum += l.GetDaily()[d]
	}
	return sum
}

// send starts sending a recorded notice, unless this process already is.
func (n *Notifier) send(rec *pb.QuotaNotice) {
	id := rules.NoticeID(rec)
	n.mu.Lock()
	if n.sending[id] {
		n.mu.Unlock()
		return
	}
	n.sending[id] = true
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.sending, id)
			n.mu.Unlock()
		}()
		select {
		case n.slots <- struct{}{}:
		case <-n.ctx.Done():
			return
		}
		defer func() { <-n.slots }()
		n.deliver(id, rec)
	}()
}

// payload is the JSON body a webhook receives.
type payload struct {
	ID     string `json:"id"`
	PlanID string `json:"planId"`
	KeyID  string `json:"keyId"`
	Period struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"period"`
	Threshold int32  `json:"threshold"`
	Used      int64  `json:"used"`
	Limit     int64  `json:"limit"`
	Time      string `json:"time"`
}

// deliver tries a notice up to Attempts times, then records the outcome.
func (n *Notifier) deliver(id string, rec *pb.QuotaNotice) {
	p := payload{ID: id, PlanID: rec.GetPlanId(), KeyID: rec.GetKeyId(), Threshold: rec.GetThreshold(),
		Used: rec.GetUsed(), Limit: rec.GetLimit(), Time: time.Unix(rec.GetTimeUnix(), 0).UTC().Format(time.RFC3339)}
	p.Period.Start = time.Unix(rec.GetPeriodStart(), 0).UTC().Format(time.RFC3339)
	p.Period.End = time.Unix(rec.GetPeriodEnd(), 0).UTC().Format(time.RFC3339)
	body, _ := json.Marshal(p) // plain strings and numbers: never fails
	wait := n.cfg.Backoff
	var lastErr error
	attempts := 0
	for attempts < n.cfg.Attempts {
		if attempts > 0 {
			t := time.NewTimer(wait)
			select {
			case <-n.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait *= 2
		}
		if !n.cfg.Cluster.IsLeader() {
			// The next leader resends it: it is still pending in the log.
			n.sent.WithLabelValues("abandoned").Inc()
			return
		}
		attempts++
		if lastErr = n.post(rec.GetWebhookUrl(), id, body); lastErr == nil {
			break
		}
		n.log.Info("quota notice not delivered", "notice", id, "attempt", attempts, "err", lastErr)
	}
	out := &pb.QuotaNotice{PlanId: rec.GetPlanId(), KeyId: rec.GetKeyId(), PeriodStart: rec.GetPeriodStart(), PeriodEnd: rec.GetPeriodEnd(),
		Threshold: rec.GetThreshold(), Used: rec.GetUsed(), Limit: rec.GetLimit(), Sender: n.cfg.NodeID, WebhookUrl: rec.GetWebhookUrl(),
		State: rules.NoticeDelivered, Attempts: int32(attempts)}
	outcome := "delivered"
	if lastErr != nil {
		out.State, outcome = rules.NoticeFailed, "failed"
		out.Error = truncate(lastErr.Error(), 1024)
		n.log.Warn("quota notice failed", "notice", id, "attempts", attempts, "err", lastErr)
	}
	n.sent.WithLabelValues(outcome).Inc()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeout)
	defer cancel()
	res, err := n.cfg.Cluster.Apply(ctx, &pb.Command{Body: &pb.Command_RecordQuotaNotices{RecordQuotaNotices: &pb.RecordQuotaNotices{Notices: []*pb.QuotaNotice{out}}}})
	if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		n.log.Warn("could not record a quota notice's outcome; the next leader sends it again", "notice", id, "err", err, "result", res.GetMessage())
	}
}

// post makes one try.
func (n *Notifier) post(url, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tollgate")
	req.Header.Set("Tollgate-Notice-Id", id)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
