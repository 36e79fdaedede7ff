package proxy

import (
	"bytes"
	"context"
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

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/limiter"
	tollgatepb "github.com/tollgate/tollgate/proto"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeSource serves a configuration that tests replace.
type fakeSource struct {
	cfg atomic.Pointer[tollgatepb.Config]
}

func (s *fakeSource) Config() *tollgatepb.Config { return s.cfg.Load() }
func (s *fakeSource) Set(cfg *tollgatepb.Config) { s.cfg.Store(cfg) }

// fakeLedger hands out fakeCounters, one per (plan, key).
type fakeLedger struct {
	mu       sync.Mutex
	counters map[string]*fakeCounter
	asked    int // Counter calls
}

func (l *fakeLedger) Counter(planID, keyID string) QuotaCounter {
	return l.counter(planID, keyID)
}

func (l *fakeLedger) counter(planID, keyID string) *fakeCounter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked++
	if l.counters == nil {
		l.counters = make(map[string]*fakeCounter)
	}
	c := l.counters[planID+"/"+keyID]
	if c == nil {
		c = &fakeCounter{}
		l.counters[planID+"/"+keyID] = c
	}
	return c
}

// fakeCounter answers Take with a scripted decision (Allowed by default)
// and counts calls.
type fakeCounter struct {
	takes  atomic.Int64
	counts atomic.Int64

	mu       sync.Mutex
	decision limiter.QuotaDecision
	take     func(ctx context.Context, now time.Time) limiter.QuotaDecision // overrides decision
	lastNow  time.Time
}

func (c *fakeCounter) set(d limiter.QuotaDecision) {
	c.mu.Lock()
	c.decision = d
	c.mu.Unlock()
}

func (c *fakeCounter) Take(ctx context.Context, now time.Time) limiter.QuotaDecision {
	c.takes.Add(1)
	c.mu.Lock()
	c.lastNow = now
	d, f := c.decision, c.take
	c.mu.Unlock()
	if f != nil {
		return f(ctx, now)
	}
	if d.Status == 0 {
		d = limiter.QuotaDecision{Status: limiter.QuotaAllowed, Limit: 1000, Remaining: 999, ResetAt: now.Add(time.Hour)}
	}
	return d
}

func (c *fakeCounter) Count(now time.Time) { c.counts.Add(1) }

// fakeShares holds scripted shares of the cluster-wide throttles: whole
// unless set, or cold from the start for the ids in cold.
type fakeShares struct {
	mu     sync.Mutex
	m      map[string]*limiter.Share
	cold   map[string]bool
	waits  atomic.Int64
	onWait func(id string) // answers a wait on a cold share
	def    limiter.Share
}

func (f *fakeShares) Share(id string) *limiter.Share {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(id)
}

func (f *fakeShares) get(id string) *limiter.Share {
	if f.m == nil {
		f.m = map[string]*limiter.Share{}
	}
	s := f.m[id]
	if s == nil {
		s = &limiter.Share{}
		if !f.cold[id] {
			s.Store(1)
		}
		f.m[id] = s
	}
	return s
}

// Default is the node's default share: cold unless a test stores one.
func (f *fakeShares) Default() *limiter.Share { return &f.def }

func (f *fakeShares) Wait(ctx context.Context, id string) {
	f.waits.Add(1)
	f.mu.Lock()
	on := f.onWait
	f.mu.Unlock()
	if on != nil {
		on(id)
	}
}

// set stores the share of throttle id.
func (f *fakeShares) set(id string, share float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get(id).Store(share)
}

// attempts is the demand counted for throttle id.
func (f *fakeShares) attempts(id string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(id).Attempts()
}

// total is the demand counted over every throttle.
func (f *fakeShares) total() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, s := range f.m {
		n += s.Attempts()
	}
	return n
}

// seen is what the echo upstream reports about a request it received.
type seen struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	RawPath string      `json:"rawPath"`
	Escaped string      `json:"escaped"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
}

// newEcho starts an upstream that answers 200 with a JSON description of
// each request, plus the headers X-Up: yes and a hop-by-hop one.
func newEcho(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Escaped: r.URL.EscapedPath(),
			Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: string(body),
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Up", "yes")
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("X-Ratelimit-Limit", "upstream")
		w.WriteHeader(http.StatusOK)
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Values of the test keys.
const (
	valOne      = "keyOneValue0123456789A"
	valDisabled = "keyDisabledValue012345"
	valNoPlan   = "keyNoPlanValue01234567"
	valFour     = "keyFourValue0123456789"
)

// baseConfig: API api1 with stages prod (keyed, url base/base) and open
// (keyless); API api2 with stage prod; keys k1 (plan p1), k2 (disabled, in
// p1), k3 (no plan), k4 (plan p2); p1 covers api1/prod and api2/prod, p2
// covers api1/prod. Neither plan has a throttle or a quota.
func baseConfig(upstream string) *tollgatepb.Config {
	return &tollgatepb.Config{
		RestApis: map[string]*tollgatepb.RestApi{
			"api1": {Id: "api1"},
			"api2": {Id: "api2"},
		},
		Stages: map[string]*tollgatepb.Stage{
			"api1/prod": {RestApiId: "api1", StageName: "prod", Variables: map[string]string{"url": upstream + "/base"}},
			"api1/open": {RestApiId: "api1", StageName: "open", Variables: map[string]string{"url": upstream}, ApiKeyNotRequired: true},
			"api2/prod": {RestApiId: "api2", StageName: "prod", Variables: map[string]string{"url": upstream + "/two/"}},
		},
		ApiKeys: map[string]*tollgatepb.ApiKey{
			"k1": {Id: "k1", Value: valOne, Enabled: true},
			"k2": {Id: "k2", Value: valDisabled, Enabled: false},
			"k3": {Id: "k3", Value: valNoPlan, Enabled: true},
			"k4": {Id: "k4", Value: valFour, Enabled: true},
		},
		UsagePlans: map[string]*tollgatepb.UsagePlan{
			"p1": {Id: "p1", ApiStages: []*tollgatepb.ApiStage{{ApiId: "api1", Stage: "prod"}, {ApiId: "api2", Stage: "prod"}}},
			"p2": {Id: "p2", ApiStages: []*tollgatepb.ApiStage{{ApiId: "api1", Stage: "prod"}}},
		},
		PlanKeys: map[string]*tollgatepb.PlanKeys{
			"p1": {Keys: map[string]uint64{"k1": 1, "k2": 2}},
			"p2": {Keys: map[string]uint64{"k4": 3}},
		},
	}
}

type harness struct {
	t      *testing.T
	p      *Proxy
	clock  *fakeClock
	src    *fakeSource
	ledger *fakeLedger
	up     *httptest.Server
	cfg    *tollgatepb.Config
	logs   *syncBuffer
	shares *fakeShares
}

// newHarness starts an echo upstream and a proxy over baseConfig, changed
// by edit, with a fake clock and ledger. mod changes the proxy Config.
func newHarness(t *testing.T, edit func(*tollgatepb.Config), mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), src: &fakeSource{}, ledger: &fakeLedger{}, up: newEcho(t), logs: &syncBuffer{}, shares: &fakeShares{}}
	h.cfg = baseConfig(h.up.URL)
	if edit != nil {
		edit(h.cfg)
	}
	h.src.Set(h.cfg)
	c := Config{
		Source: h.src, Ledger: h.ledger, Clock: h.clock, Shares: h.shares,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&c)
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h.p = p
	return h
}

// update applies edit to a copy of the current configuration and publishes
// it as a new pointer.
func (h *harness) update(edit func(*tollgatepb.Config)) {
	h.t.Helper()
	cfg := cloneConfig(h.cfg)
	edit(cfg)
	h.cfg = cfg
	h.src.Set(cfg)
}

func cloneConfig(c *tollgatepb.Config) *tollgatepb.Config {
	return proto.Clone(c).(*tollgatepb.Config)
}

// do sends a request straight to the proxy's ServeHTTP.
func (h *harness) do(method, target, key string, hdr ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("X-Api-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "host") {
			r.Host = hdr[i+1]
			continue
		}
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.p.ServeHTTP(w, r)
	return w
}

// seenBy decodes the echo upstream's report from a forwarded response.
func seenBy(t *testing.T, w *httptest.ResponseRecorder) seen {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, body %s; want 200 from the upstream", w.Code, w.Body)
	}
	var s seen
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("upstream report: %v: %s", err, w.Body)
	}
	return s
}

// expectAnswer checks one of the proxy's own answers.
func expectAnswer(t *testing.T, w *httptest.ResponseRecorder, status int, errType, message string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, body %s; want %d", w.Code, w.Body, status)
	}
	want := `{"message":"` + message + `"}`
	if got := w.Body.String(); got != want {
		t.Errorf("body %s; want %s", got, want)
	}
	if got := w.Header().Get("x-amzn-ErrorType"); got != errType {
		t.Errorf("x-amzn-ErrorType %q; want %q", got, errType)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q; want application/json", got)
	}
	if got := w.Header().Get("x-amzn-RequestId"); len(got) != 36 {
		t.Errorf("x-amzn-RequestId %q; want a UUID", got)
	}
	if got := w.Header().Get("Content-Length"); got != itoa(len(want)) {
		t.Errorf("Content-Length %q; want %d", got, len(want))
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
