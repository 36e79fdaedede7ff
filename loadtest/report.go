package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run found; --json prints it as it is.
type Report struct {
	Mode        string  `json:"mode"` // "rate" (open loop) or "max" (closed loop)
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency"`
	Method      string  `json:"method"`
	Path        string  `json:"path"`
	Keys        int     `json:"keys"` // distinct keys sent
	// KeysRefused counts the keys answered 403 and nothing else but
	// transport errors (not in the plan, disabled or unknown).
	KeysRefused int `json:"keysRefused,omitempty"`
	// DurationSeconds is measured: from the first request sent to the last
	// answer received. Every rate below divides by it.
	DurationSeconds float64        `json:"durationSeconds"`
	Interrupted     bool           `json:"interrupted,omitempty"` // stopped early by a signal
	OfferedRate     float64        `json:"offeredRate"`           // requests sent per second
	AdmittedRate    float64        `json:"admittedRate"`          // 2xx answers per second
	Targets         []targetReport `json:"targets"`
	Total           targetReport   `json:"total"`
	Schedule        *scheduleStats `json:"schedule,omitempty"` // open loop only
	Plan            *planReport    `json:"plan,omitempty"`
}

type targetReport struct {
	URL          string           `json:"url,omitempty"`
	Share        float64          `json:"share"` // of the requests, from --spread
	Sent         int64            `json:"sent"`
	OK           int64            `json:"ok"`            // 2xx
	Forbidden    int64            `json:"forbidden"`     // 403
	Throttled    int64            `json:"throttled"`     // 429 Too Many Requests
	QuotaExceed  int64            `json:"quotaExceeded"` // 429 Limit Exceeded
	Unavailable  int64            `json:"unavailable"`   // 503
	Other        int64            `json:"other"`         // any other status
	Errors       int64            `json:"errors"`        // transport errors and timeouts
	Statuses     map[string]int64 `json:"statuses"`
	LatencyP50Ms float64          `json:"latencyP50Ms"` // admitted requests
	LatencyP99Ms float64          `json:"latencyP99Ms"`
	FirstError   string           `json:"firstError,omitempty"`
}

// scheduleStats says how an open-loop run kept to its schedule. A request
// starts late when every worker is busy (or the machine is); due requests
// not sent when the run ended are missed.
type scheduleStats struct {
	Due      int64   `json:"due"` // requests whose time came before the run ended
	Sent     int64   `json:"sent"`
	Missed   int64   `json:"missed"`
	LagP50Ms float64 `json:"lagP50Ms"`
	LagP99Ms float64 `json:"lagP99Ms"`
	LagMaxMs float64 `json:"lagMaxMs"`
}

// planReport compares the run with the plan.
type planReport struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Quota    *planQuota    `json:"quota,omitempty"`
	Throttle *planThrottle `json:"throttle,omitempty"`
	Keys     int           `json:"keys"` // keys counted: all but KeysRefused
	Admitted int64         `json:"admitted"`
	// QuotaAllows is keys × the quota limit.
	QuotaAllows *int64 `json:"quotaAllows,omitempty"`
	// ThrottleAllows is keys × (rate × durationSeconds + burst).
	ThrottleAllows *float64 `json:"throttleAllows,omitempty"`
	// Expected is the least of the requests sent and the two above.
	Expected float64 `json:"expected"`
	// ErrorPct is (admitted − expected) / expected × 100.
	ErrorPct float64 `json:"errorPct"`
	// AdmittedRate and PlanRate (keys × the plan's rate), per second.
	AdmittedRate float64 `json:"admittedRate"`
	PlanRate     float64 `json:"planRate,omitempty"`
}

// UsagePlan is the part of GetUsagePlan the report uses.
type UsagePlan struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Quota    *planQuota    `json:"quota"`
	Throttle *planThrottle `json:"throttle"`
}

type planQuota struct {
	Limit  int64  `json:"limit"`
	Period string `json:"period"`
	Offset int    `json:"offset"`
}

type planThrottle struct {
	RateLimit  float64 `json:"rateLimit"`
	BurstLimit int64   `json:"burstLimit"`
}

func FetchPlan(ctx context.Context, admin, id string, timeout time.Duration) (*UsagePlan, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil}}
	u := strings.TrimRight(admin, "/") + "/usageplans/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read usage plan %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read usage plan %s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
	var p UsagePlan
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("read usage plan %s: %w", id, err)
	}
	return &p, nil
}

// planFigures compares what was admitted with what the plan allows keys
// keys over the run's measured duration.
func planFigures(p *UsagePlan, rep *Report, keys int) *planReport {
	keys = max(keys, 1) // no key: nothing is in a plan, but keep the arithmetic sane
	pr := &planReport{ID: p.ID, Name: p.Name, Quota: p.Quota, Throttle: p.Throttle, Keys: keys,
		Admitted: rep.Total.OK, AdmittedRate: rep.AdmittedRate}
	pr.Expected = float64(rep.Total.Sent)
	if q := p.Quota; q != nil {
		allows := int64(keys) * q.Limit
		pr.QuotaAllows = &allows
		pr.Expected = math.Min(pr.Expected, float64(allows))
	}
	if t := p.Throttle; t != nil && (t.RateLimit > 0 || t.BurstLimit > 0) {
		allows := float64(keys) * (t.RateLimit*rep.DurationSeconds + float64(t.BurstLimit))
		pr.ThrottleAllows = &allows
		pr.PlanRate = float64(keys) * t.RateLimit
		pr.Expected = math.Min(pr.Expected, allows)
	}
	if pr.Expected > 0 {
		pr.ErrorPct = (float64(pr.Admitted) - pr.Expected) / pr.Expected * 100
	}
	return pr
}

func (s *targetStats) report() targetReport {
	r := targetReport{
		OK:          s.counts[outOK].Load(),
		Forbidden:   s.counts[outForbidden].Load(),
		Throttled:   s.counts[outThrottled].Load(),
		QuotaExceed: s.counts[outQuota].Load(),
		Unavailable: s.counts[outUnavailable].Load(),
		Other:       s.counts[outOther].Load(),
		Errors:      s.counts[outError].Load(),
		Statuses:    map[string]int64{},
	}
	for c := range s.statuses {
		if n := s.statuses[c].Load(); n > 0 {
			r.Statuses[strconv.Itoa(c)] = n
		}
	}
	r.Sent = r.OK + r.Forbidden + r.Throttled + r.QuotaExceed + r.Unavailable + r.Other + r.Errors
	r.LatencyP50Ms, r.LatencyP99Ms = ms(s.latency.quantile(0.50)), ms(s.latency.quantile(0.99))
	s.errMu.Lock()
	r.FirstError = s.firstErr
	s.errMu.Unlock()
	return r
}

func (r *targetReport) add(o targetReport) {
	r.Sent += o.Sent
	r.OK += o.OK
	r.Forbidden += o.Forbidden
	r.Throttled += o.Throttled
	r.QuotaExceed += o.QuotaExceed
	r.Unavailable += o.Unavailable
	r.Other += o.Other
	r.Errors += o.Errors
	for k, v := range o.Statuses {
		r.Statuses[k] += v
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// WriteText prints the table and the summary lines.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tshare\tsent\t2xx\t403\t429 throttled\t429 quota\t503\tother\terrors\tp50 ms\tp99 ms\t")
	row := func(name, share string, t targetReport) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t\n", name, share,
			t.Sent, t.OK, t.Forbidden, t.Throttled, t.QuotaExceed, t.Unavailable, t.Other, t.Errors, t.LatencyP50Ms, t.LatencyP99Ms)
	}
	for _, t := range r.Targets {
		row(t.URL, fmt.Sprintf("%.1f%%", t.Share*100), t)
	}
	row("total", "", r.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	how := fmt.Sprintf("as fast as possible with %d workers", r.Concurrency)
	if r.Mode == "rate" {
		how = fmt.Sprintf("at %g/s scheduled, at most %d in flight", r.Rate, r.Concurrency)
	}
	fmt.Fprintf(w, "%s %s, %d keys, %s\n", r.Method, r.Path, r.Keys, how)
	if r.KeysRefused > 0 {
		fmt.Fprintf(w, "%d of the keys got only 403 answers: they are left out of the plan figures\n", r.KeysRefused)
	}
	fmt.Fprintf(w, "%d requests in %.3fs (measured): %.1f/s offered, %d admitted (%.1f/s)\n",
		r.Total.Sent, r.DurationSeconds, r.OfferedRate, r.Total.OK, r.AdmittedRate)
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the run stopped early")
	}
	if s := r.Schedule; s != nil {
		fmt.Fprintf(w, "schedule: %d due, %d sent, %d missed; started late by %.2fms p50, %.2fms p99, %.2fms max\n",
			s.Due, s.Sent, s.Missed, s.LagP50Ms, s.LagP99Ms, s.LagMaxMs)
	}
	if p := r.Plan; p != nil {
		name := p.ID
		if p.Name != "" {
			name = fmt.Sprintf("%s (%s)", p.ID, p.Name)
		}
		if p.QuotaAllows != nil {
			fmt.Fprintf(w, "plan %s: quota %d per %s × %d keys allows %d; admitted %d (%+d)\n",
				name, p.Quota.Limit, p.Quota.Period, p.Keys, *p.QuotaAllows, p.Admitted, p.Admitted-*p.QuotaAllows)
		}
		if p.ThrottleAllows != nil {
			fmt.Fprintf(w, "plan %s: throttle %g/s burst %d × %d keys allows ≈ %g/s × %.3fs + %d = %.0f; admitted %d (%.1f/s against %g/s)\n",
				name, p.Throttle.RateLimit, p.Throttle.BurstLimit, p.Keys, p.Throttle.RateLimit*float64(p.Keys), r.DurationSeconds,
				p.Throttle.BurstLimit*int64(p.Keys), *p.ThrottleAllows, p.Admitted, p.AdmittedRate, p.PlanRate)
		}
		if p.QuotaAllows == nil && p.ThrottleAllows == nil {
			fmt.Fprintf(w, "plan %s has neither a quota nor a throttle: every request may pass\n", name)
		}
		fmt.Fprintf(w, "plan %s: expected %.0f admitted, got %d: %+.1f%%\n", name, p.Expected, p.Admitted, p.ErrorPct)
	}
	var errs []string
	for _, t := range r.Targets {
		if t.FirstError != "" {
			errs = append(errs, fmt.Sprintf("first error from %s: %s", t.URL, t.FirstError))
		}
	}
	sort.Strings(errs)
	for _, e := range errs {
		fmt.Fprintln(w, e)
	}
	return nil
}

// ComparePlan adds to the report how what was admitted compares with what
// plan p allows the keys that were not refused.
func (r *Report) ComparePlan(p *UsagePlan) {
	r.Plan = planFigures(p, r, r.Keys-r.KeysRefused)
}
