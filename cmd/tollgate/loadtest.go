package main

// `tollgate loadtest` drives a running cluster's data plane and counts what
// it admits, throttles and refuses, per node. It is the tool users run to
// check that a plan's quota and throttle hold across their own cluster, so
// its numbers must be honest: rates use the measured duration, an open-loop
// run says how far behind its schedule it fell, and every answer is counted
// in exactly one column.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Caps on a run: a load tool that can be told to run forever will be.
const (
	maxLoadDuration    = time.Hour
	maxLoadRequests    = 100_000_000
	maxLoadRate        = 1e6
	maxLoadConcurrency = 10_000
	maxSpreadShare     = 10_000
	maxLoadTimeout     = 10 * time.Minute
)

// loadOptions is everything `tollgate loadtest` reads from its flags.
type loadOptions struct {
	Targets     []string      // data-plane base URLs, one per node
	Spread      []int         // share of requests per target (weights)
	Path        string        // request path, /apiId/stage/resource[?query]
	Method      string        // HTTP method
	Keys        []string      // API key values, cycled; none sends no key
	Rate        float64       // requests per second (open loop); 0: as fast as possible
	Concurrency int           // workers (closed loop) or the most requests in flight (open loop)
	Duration    time.Duration // stop after this long (0: the 1h cap)
	Requests    int64         // stop after this many requests (0: no count limit)
	Admin       string        // admin API base URL (with Plan)
	Plan        string        // usage plan id to compare against
	Timeout     time.Duration // per request
	JSON        bool          // one JSON object instead of the table

	// Filled by validate.
	urls    []string // target base URL + path
	table   []int    // target index for each slot of one spread cycle
	keySlot []int    // for each of Keys, the index of its value among the distinct values
	nKeys   int      // distinct key values
}

func loadtestCmd() *cobra.Command {
	o := &loadOptions{}
	var spread []string
	cmd := &cobra.Command{
		Use:   "loadtest --targets URL[,URL...] --path /apiId/stage/resource [flags]",
		Short: "Drive a running cluster and count what it admits, throttles and refuses, per node",
		Long: `loadtest sends requests to the data plane of one or more nodes (spread as
--spread says) and counts, per node: 2xx answers (admitted), 403, 429 Too Many
Requests (throttled), 429 Limit Exceeded (quota used up), 503, other statuses
and transport errors, with the p50 and p99 latency of admitted requests.

With --rate N requests are sent at fixed times (open loop) whatever the
latency, and the report says how far behind that schedule the run fell; with
--rate 0 --concurrency workers send as fast as the cluster answers (closed
loop). The run stops after --duration or --requests, whichever comes first.

With --admin and --plan it reads the usage plan and compares: admitted
requests against the plan's quota, and the admitted rate against the plan's
throttle (about rate × duration + burst), for every key that got an answer
other than 403 (a key answered only 403 is not in the plan, and is left out).
Both figures assume that each key starts with a full bucket and an unused
quota.
Rates are computed over the measured duration of the run.

The spread is exact over every cycle of its shares reduced by their common
divisor (10 requests for 80,10,10); keys take turns once per such cycle, so
every key sees the same spread across nodes.`,
		Example: `  tollgate loadtest --targets http://10.0.0.1:8080,http://10.0.0.2:8080,http://10.0.0.3:8080 \
    --spread 80,10,10 --path /a1b2c3d4e5/prod/pets --key $KEY --rate 600 --duration 10s \
    --admin http://10.0.0.1:9090 --plan $PLAN`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.parseSpread(spread); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			// The first signal stops sending and reports what was sent;
			// a second one ends the process as usual.
			sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { <-sigCtx.Done(); stop() }()

			var plan *usagePlan
			if o.Plan != "" {
				p, err := fetchPlan(cmd.Context(), o.Admin, o.Plan, o.Timeout)
				if err != nil {
					return err
				}
				plan = p
			}
			var progress io.Writer
			if !o.JSON {
				progress = cmd.ErrOrStderr()
			}
			rep := runLoad(sigCtx, o, progress)
			if plan != nil {
				rep.Plan = planFigures(plan, rep, rep.Keys-rep.KeysRefused)
			}
			if o.JSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.writeText(cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.Targets, "targets", nil, "data-plane base URLs, one per node, comma-separated (required), e.g. http://10.0.0.1:8080,http://10.0.0.2:8080")
	fs.StringSliceVar(&spread, "spread", nil, "share of requests per target, positive integers in --targets order, e.g. 80,10,10 (normalised; at most 10000 each) [even]")
	fs.StringVar(&o.Path, "path", "", "request path, /apiId/stage/resource, optionally with ?query (required)")
	fs.StringVar(&o.Method, "method", http.MethodGet, "HTTP method")
	fs.StringSliceVar(&o.Keys, "key", nil, "API key value sent as x-api-key; repeat the flag or give a comma list to rotate through several [no key]")
	fs.Float64Var(&o.Rate, "rate", 0, "requests per second, sent on a fixed schedule whatever the latency (open loop); 0 sends as fast as possible with --concurrency workers (closed loop)")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "workers with --rate 0; with --rate N, the most requests in flight at once (when all are busy, requests start late and the report says by how much)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop sending after this long, at most 1h (at least one of --duration and --requests is required)")
	fs.Int64Var(&o.Requests, "requests", 0, "stop after sending this many requests, at most 100000000")
	fs.StringVar(&o.Admin, "admin", "", "admin API base URL of any node, e.g. http://10.0.0.1:9090 (with --plan)")
	fs.StringVar(&o.Plan, "plan", "", "usage plan id: compare admitted requests with its quota and throttle (needs --admin)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per request, from dialling to the end of the body; a request over it counts as a transport error")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object (per-target counts, totals, durations, plan figures) instead of the table")
	return cmd
}

var (
	methodPattern = regexp.MustCompile(`^[A-Za-z]{1,20}$`)
	sharePattern  = regexp.MustCompile(`^[0-9]+$`)
)

// parseSpread reads --spread; validate checks it against --targets.
func (o *loadOptions) parseSpread(in []string) error {
	o.Spread = nil
	for _, s := range in {
		s = strings.TrimSpace(s)
		n, err := strconv.Atoi(s)
		if !sharePattern.MatchString(s) || err != nil || n < 1 || n > maxSpreadShare {
			return fmt.Errorf("--spread %q: each share must be a whole number from 1 to %d", strings.Join(in, ","), maxSpreadShare)
		}
		o.Spread = append(o.Spread, n)
	}
	return nil
}

// validate checks the options, fills defaults and derives the request URLs
// and the spread table.
func (o *loadOptions) validate() error {
	var errs []error
	o.Targets = splitList(o.Targets)
	o.Keys = splitList(o.Keys)
	if len(o.Targets) == 0 {
		errs = append(errs, errors.New("--targets is required: the data-plane base URL of each node, e.g. http://127.0.0.1:8080"))
	}
	for _, t := range o.Targets {
		if err := checkBaseURL(t); err != nil {
			errs = append(errs, fmt.Errorf("--targets %q: %w", t, err))
		}
	}
	switch {
	case len(o.Spread) == 0:
		o.Spread = make([]int, len(o.Targets))
		for i := range o.Spread {
			o.Spread[i] = 1
		}
	case len(o.Spread) != len(o.Targets):
		errs = append(errs, fmt.Errorf("--spread has %d shares for %d targets: give one share per target", len(o.Spread), len(o.Targets)))
	}
	switch {
	case o.Path == "":
		errs = append(errs, errors.New("--path is required, e.g. /a1b2c3d4e5/prod/pets"))
	case !strings.HasPrefix(o.Path, "/"):
		errs = append(errs, fmt.Errorf("--path %q must start with /", o.Path))
	}
	if !methodPattern.MatchString(o.Method) {
		errs = append(errs, fmt.Errorf("--method %q: want a method name such as GET or POST", o.Method))
	}
	o.Method = strings.ToUpper(o.Method)
	if math.IsNaN(o.Rate) || o.Rate < 0 || o.Rate > maxLoadRate {
		errs = append(errs, fmt.Errorf("--rate %v: want 0 (as fast as possible) to %.0f requests per second", o.Rate, float64(maxLoadRate)))
	}
	if o.Concurrency < 1 || o.Concurrency > maxLoadConcurrency {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 1 to %d", o.Concurrency, maxLoadConcurrency))
	}
	if o.Duration < 0 || o.Duration > maxLoadDuration {
		errs = append(errs, fmt.Errorf("--duration %s: want at most %s", o.Duration, maxLoadDuration))
	}
	if o.Requests < 0 || o.Requests > maxLoadRequests {
		errs = append(errs, fmt.Errorf("--requests %d: want at most %d", o.Requests, maxLoadRequests))
	}
	if o.Duration == 0 && o.Requests == 0 {
		errs = append(errs, errors.New("give --duration, --requests or both: the run stops at whichever comes first"))
	}
	if o.Timeout <= 0 || o.Timeout > maxLoadTimeout {
		errs = append(errs, fmt.Errorf("--timeout %s: want more than 0 and at most %s", o.Timeout, maxLoadTimeout))
	}
	switch {
	case o.Plan != "" && o.Admin == "":
		errs = append(errs, errors.New("--plan needs --admin, the admin API to read the plan from"))
	case o.Admin != "" && o.Plan == "":
		errs = append(errs, errors.New("--admin is only used with --plan: give the usage plan id to compare against"))
	case o.Admin != "":
		if err := checkBaseURL(o.Admin); err != nil {
			errs = append(errs, fmt.Errorf("--admin %q: %w", o.Admin, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	o.urls = make([]string, len(o.Targets))
	for i, t := range o.Targets {
		o.urls[i] = strings.TrimRight(t, "/") + o.Path
		if _, err := url.ParseRequestURI(o.urls[i]); err != nil {
			return fmt.Errorf("--path %q: %w", o.Path, err)
		}
	}
	if o.Duration == 0 {
		o.Duration = maxLoadDuration
	}
	o.table = spreadTable(o.Spread)
	slots := map[string]int{}
	o.keySlot = make([]int, len(o.Keys))
	for i, k := range o.Keys {
		if _, ok := slots[k]; !ok {
			slots[k] = len(slots)
		}
		o.keySlot[i] = slots[k]
	}
	o.nKeys = len(slots)
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http:// or https:// URL")
	case u.Host == "":
		return errors.New("the URL has no host")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("a base URL takes no query or fragment (put them in --path)")
	}
	return nil
}

// spreadTable returns one cycle of target indexes in which target i appears
// in proportion to weights[i], interleaved as evenly as possible (smooth
// weighted round robin), after dividing the weights by their common divisor:
// 80,10,10 gives a cycle of 10 slots, 8 of them target 0.
func spreadTable(weights []int) []int {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	w := make([]int, len(weights))
	for i, x := range weights {
		w[i] = x / g
		total += w[i]
	}
	table := make([]int, 0, total)
	current := make([]int, len(w))
	for range total {
		best := 0
		for i := range w {
			current[i] += w[i]
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		table = append(table, best)
	}
	return table
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick says where request i goes: the spread cycles fastest, so every
// cycle of its table (10 requests for 80,10,10) has the exact split, and the
// key moves on once per cycle, so every key sees the whole spread. key is
// an index into Keys, -1 without keys.
func (o *loadOptions) pick(i int64) (target, key int) {
	n := int64(len(o.table))
	target, key = o.table[i%n], -1
	if k := int64(len(o.Keys)); k > 0 {
		key = int((i / n) % k)
	}
	return target, key
}

// outcome is the column an answer is counted in.
type outcome int

const (
	outOK          outcome = iota // 2xx: admitted
	outForbidden                  // 403
	outThrottled                  // 429 Too Many Requests
	outQuota                      // 429 Limit Exceeded
	outUnavailable                // 503
	outOther                      // any other status
	outError                      // no answer: dial, reset, timeout
	numOutcomes
)

// classify tells the gateway's two 429s apart by x-amzn-ErrorType (the
// part before any ':', as the AWS SDKs read it) or, without that header,
// by the body's message.
func classify(status int, errorType string, body []byte) outcome {
	switch {
	case status >= 200 && status < 300:
		return outOK
	case status == http.StatusForbidden:
		return outForbidden
	case status == http.StatusServiceUnavailable:
		return outUnavailable
	case status != http.StatusTooManyRequests:
		return outOther
	}
	if t, _, _ := strings.Cut(errorType, ":"); t != "" {
		switch strings.TrimSpace(t) {
		case "TooManyRequestsException":
			return outThrottled
		case "LimitExceededException":
			return outQuota
		}
	}
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &msg) == nil {
		switch msg.Message {
		case "Too Many Requests":
			return outThrottled
		case "Limit Exceeded":
			return outQuota
		}
	}
	return outOther
}

// latencyHist is a log-linear histogram of durations in nanoseconds: 64
// linear buckets, then 32 per power of two (at most 1/32 relative error).
// Adds are atomic, so workers share one per target.
type latencyHist struct {
	buckets [histBuckets]atomic.Int64
	count   atomic.Int64
}

const histBuckets = 64 + 58*32

func histIndex(v int64) int {
	if v < 64 {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 6
	return 64 + (shift-1)*32 + int(v>>shift) - 32
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	shift := (i-64)/32 + 1
	low := int64((i-64)%32+32) << shift
	return low + (int64(1)<<shift)/2
}

func (h *latencyHist) add(d time.Duration) {
	h.buckets[histIndex(int64(d))].Add(1)
	h.count.Add(1)
}

// quantile returns the q-quantile (0 < q ≤ 1), or 0 without samples.
func (h *latencyHist) quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			return time.Duration(histValue(i))
		}
	}
	return time.Duration(histValue(histBuckets - 1))
}

// targetStats counts one target's answers; workers share it.
type targetStats struct {
	counts   [numOutcomes]atomic.Int64
	statuses [600]atomic.Int64
	latency  latencyHist // admitted requests only
	errMu    sync.Mutex
	firstErr string
}

func (s *targetStats) record(out outcome, status int, took time.Duration, err error) {
	s.counts[out].Add(1)
	if status >= 100 && status < len(s.statuses) {
		s.statuses[status].Add(1)
	}
	if out == outOK {
		s.latency.add(took)
	}
	if err != nil {
		s.errMu.Lock()
		if s.firstErr == "" {
			s.firstErr = err.Error()
		}
		s.errMu.Unlock()
	}
}

// loadReport is what a run found; --json prints it as it is.
type loadReport struct {
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

// usagePlan is the part of GetUsagePlan the report uses.
type usagePlan struct {
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

func fetchPlan(ctx context.Context, admin, id string, timeout time.Duration) (*usagePlan, error) {
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
	var p usagePlan
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("read usage plan %s: %w", id, err)
	}
	return &p, nil
}

// planFigures compares what was admitted with what the plan allows keys
// keys over the run's measured duration.
func planFigures(p *usagePlan, rep *loadReport, keys int) *planReport {
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

// runLoad sends the load and reports. Progress lines go to progress, when
// not nil, every 5 seconds. Cancelling ctx stops sending; requests in
// flight finish (within --timeout) and are counted.
func runLoad(ctx context.Context, o *loadOptions, progress io.Writer) *loadReport {
	tr := &http.Transport{
		Proxy:                 nil, // straight to the nodes, whatever the environment says
		DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   o.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	stats := make([]*targetStats, len(o.Targets))
	for i := range stats {
		stats[i] = &targetStats{}
	}
	// Per distinct key: answers 403, and answers other than 403 (transport
	// errors are neither: they say nothing about the key).
	keyForbidden, keyOther := make([]atomic.Int64, o.nKeys), make([]atomic.Int64, o.nKeys)
	var sent atomic.Int64
	send := func(i int64) {
		t, k := o.pick(i)
		key := ""
		if k >= 0 {
			key = o.Keys[k]
		}
		sent.Add(1)
		out, status, took, err := doRequest(client, o.Method, o.urls[t], key)
		stats[t].record(out, status, took, err)
		switch {
		case k < 0 || out == outError:
		case out == outForbidden:
			keyForbidden[o.keySlot[k]].Add(1)
		default:
			keyOther[o.keySlot[k]].Add(1)
		}
	}

	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(o.Duration))
	defer cancel()
	stopProgress := startProgress(progress, start, &sent, stats)

	var sched *scheduleStats
	var wg sync.WaitGroup
	if o.Rate > 0 {
		sched = runOpenLoop(runCtx, o, start, send)
	} else {
		var next atomic.Int64
		for range o.Concurrency {
			wg.Go(func() {
				for runCtx.Err() == nil {
					i := next.Add(1) - 1
					if o.Requests > 0 && i >= o.Requests {
						return
					}
					send(i)
				}
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	stopProgress()

	rep := &loadReport{
		Mode: "max", Concurrency: o.Concurrency, Method: o.Method, Path: o.Path,
		Keys: o.nKeys, DurationSeconds: elapsed.Seconds(),
		Interrupted: ctx.Err() != nil, Schedule: sched,
	}
	if o.Rate > 0 {
		rep.Mode, rep.Rate = "rate", o.Rate
	}
	for k := range keyForbidden {
		if keyForbidden[k].Load() > 0 && keyOther[k].Load() == 0 {
			rep.KeysRefused++
		}
	}
	weightSum := 0
	for _, w := range o.Spread {
		weightSum += w
	}
	total := targetReport{Statuses: map[string]int64{}, Share: 1}
	all := &latencyHist{}
	for i, s := range stats {
		tr := s.report()
		tr.URL, tr.Share = o.Targets[i], float64(o.Spread[i])/float64(weightSum)
		rep.Targets = append(rep.Targets, tr)
		total.add(tr)
		for b := range s.latency.buckets {
			if n := s.latency.buckets[b].Load(); n > 0 {
				all.buckets[b].Add(n)
				all.count.Add(n)
			}
		}
		if total.FirstError == "" {
			total.FirstError = tr.FirstError
		}
	}
	total.LatencyP50Ms, total.LatencyP99Ms = ms(all.quantile(0.50)), ms(all.quantile(0.99))
	rep.Total = total
	if elapsed > 0 {
		rep.OfferedRate = float64(total.Sent) / elapsed.Seconds()
		rep.AdmittedRate = float64(total.OK) / elapsed.Seconds()
	}
	return rep
}

// runOpenLoop sends request i at start + i/rate, through at most
// --concurrency requests in flight, until the run's deadline or --requests.
func runOpenLoop(ctx context.Context, o *loadOptions, start time.Time, send func(int64)) *scheduleStats {
	type job struct {
		i   int64
		due time.Time
	}
	jobs := make(chan job)
	lags := &latencyHist{}
	var maxLag atomic.Int64
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				lag := time.Since(j.due)
				lags.add(lag)
				for {
					m := maxLag.Load()
					if int64(lag) <= m || maxLag.CompareAndSwap(m, int64(lag)) {
						break
					}
				}
				send(j.i)
			}
		})
	}
	deadline, _ := ctx.Deadline()
	due := func(i int64) time.Time {
		return start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var i int64
	var st scheduleStats
dispatch:
	for ; o.Requests == 0 || i < o.Requests; i++ {
		at := due(i)
		if !at.Before(deadline) {
			break
		}
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break dispatch
			}
		}
		select {
		case jobs <- job{i, at}:
			st.Sent++
		case <-ctx.Done():
			break dispatch
		}
	}
	// Due: every request whose time came before sending stopped, sent or
	// not: request n is due when n < elapsed × rate.
	stopped := time.Now()
	if stopped.After(deadline) {
		stopped = deadline
	}
	close(jobs)
	wg.Wait()
	st.Due = max(st.Sent, int64(math.Ceil(stopped.Sub(start).Seconds()*o.Rate)))
	if o.Requests > 0 {
		st.Due = min(st.Due, o.Requests)
	}
	st.Missed = st.Due - st.Sent
	st.LagP50Ms, st.LagP99Ms, st.LagMaxMs = ms(lags.quantile(0.50)), ms(lags.quantile(0.99)), ms(time.Duration(maxLag.Load()))
	return &st
}

// doRequest sends one request and classifies the answer. The body is read
// to the end (up to 1 MiB) so that the connection is reused.
func doRequest(c *http.Client, method, u, key string) (outcome, int, time.Duration, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return outError, 0, 0, err
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return outError, 0, time.Since(t0), err
	}
	var body []byte
	if resp.StatusCode == http.StatusTooManyRequests {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	}
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	}
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		return outError, 0, took, fmt.Errorf("read the answer's body: %w", err)
	}
	return classify(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body), resp.StatusCode, took, nil
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

// startProgress prints a line every 5 seconds until the returned func is
// called (which waits for the printer to end).
func startProgress(w io.Writer, start time.Time, sent *atomic.Int64, stats []*targetStats) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ok int64
				for _, s := range stats {
					ok += s.counts[outOK].Load()
				}
				fmt.Fprintf(w, "%5.0fs  %d sent, %d admitted\n", time.Since(start).Seconds(), sent.Load(), ok)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// writeText prints the table and the summary lines.
func (r *loadReport) writeText(w io.Writer) error {
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
