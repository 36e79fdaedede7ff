package loadtest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/loadtest/loadtesttest"
)

func validOptions() Options {
	return Options{
		Targets: []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082/"}, Path: "/api/prod/pets",
		Method: "get", Concurrency: 64, Requests: 100, Timeout: 10 * time.Second,
	}
}

func TestLoadOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(o *Options)
		spread []string
		want   string // a part of the error; "" means valid
	}{
		{"valid", func(*Options) {}, nil, ""},
		{"valid with everything", func(o *Options) {
			o.Rate, o.Duration, o.Admin, o.Plan, o.Keys = 600, 10*time.Second, "http://127.0.0.1:9090", "p1", []string{"a,b", "c"}
		}, []string{"80", "20"}, ""},
		{"no targets", func(o *Options) { o.Targets = nil }, nil, "--targets is required"},
		{"target not http", func(o *Options) { o.Targets = []string{"ftp://x"} }, nil, "want an http:// or https:// URL"},
		{"target without host", func(o *Options) { o.Targets = []string{"http://"} }, nil, "has no host"},
		{"target with query", func(o *Options) { o.Targets = []string{"http://h?x=1"} }, nil, "no query"},
		{"spread count", func(*Options) {}, []string{"80", "10", "10"}, "--spread has 3 shares for 2 targets"},
		{"spread zero", func(*Options) {}, []string{"0", "1"}, "whole number from 1"},
		{"spread negative", func(*Options) {}, []string{"-1", "1"}, "whole number from 1"},
		{"spread fraction", func(*Options) {}, []string{"0.5", "1"}, "whole number from 1"},
		{"spread too big", func(*Options) {}, []string{"10001", "1"}, "whole number from 1"},
		{"no path", func(o *Options) { o.Path = "" }, nil, "--path is required"},
		{"relative path", func(o *Options) { o.Path = "api/prod" }, nil, "must start with /"},
		{"bad method", func(o *Options) { o.Method = "GE T" }, nil, "--method"},
		{"negative rate", func(o *Options) { o.Rate = -1 }, nil, "--rate"},
		{"huge rate", func(o *Options) { o.Rate = 2e6 }, nil, "--rate"},
		{"no concurrency", func(o *Options) { o.Concurrency = 0 }, nil, "--concurrency 0"},
		{"no stop", func(o *Options) { o.Requests = 0 }, nil, "give --duration, --requests or both"},
		{"long duration", func(o *Options) { o.Duration = 2 * time.Hour }, nil, "--duration 2h0m0s: want at most 1h0m0s"},
		{"negative duration", func(o *Options) { o.Duration = -time.Second }, nil, "--duration"},
		{"many requests", func(o *Options) { o.Requests = 100_000_001 }, nil, "--requests 100000001"},
		{"no timeout", func(o *Options) { o.Timeout = 0 }, nil, "--timeout"},
		{"plan without admin", func(o *Options) { o.Plan = "p1" }, nil, "--plan needs --admin"},
		{"admin without plan", func(o *Options) { o.Admin = "http://127.0.0.1:9090" }, nil, "--admin is only used with --plan"},
		{"bad admin", func(o *Options) { o.Admin, o.Plan = "127.0.0.1:9090", "p1" }, nil, "--admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			err := o.ParseSpread(tt.spread)
			if err == nil {
				err = o.Validate()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid options refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestLoadOptionsNormalise(t *testing.T) {
	o := validOptions()
	o.Keys = []string{"k1,k2", " k3 "}
	if err := o.ParseSpread([]string{"80", " 20"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Method != "GET" {
		t.Errorf("method %q, want GET", o.Method)
	}
	if got := strings.Join(o.Keys, "|"); got != "k1|k2|k3" {
		t.Errorf("keys %q", got)
	}
	if o.urls[1] != "http://127.0.0.1:8082/api/prod/pets" {
		t.Errorf("url %q: the base's trailing slash should go", o.urls[1])
	}
	if o.Duration != time.Hour {
		t.Errorf("duration without --duration = %s, want the 1h cap", o.Duration)
	}
	if len(o.table) != 5 {
		t.Errorf("80,20 should reduce to a cycle of 5 slots, got %v", o.table)
	}
}

func TestSpreadSplit(t *testing.T) {
	tests := []struct {
		weights []int
		keys    []string
		n       int64
		want    []int64 // requests per target
	}{
		{[]int{1, 1, 1}, nil, 3000, []int64{1000, 1000, 1000}},
		{[]int{80, 10, 10}, nil, 3000, []int64{2400, 300, 300}},
		{[]int{80, 10, 10}, []string{"a", "b", "c"}, 3000, []int64{2400, 300, 300}},
		{[]int{3, 1}, []string{"a", "b"}, 800, []int64{600, 200}},
		{[]int{1}, []string{"a"}, 7, []int64{7}},
		{[]int{2, 3, 5}, nil, 1000, []int64{200, 300, 500}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights, len(tt.keys)), func(t *testing.T) {
			o := Options{Keys: tt.keys, table: spreadTable(tt.weights)}
			got := make([]int64, len(tt.weights))
			perKey := map[string][]int64{}
			for i := range tt.n {
				target, k := o.pick(i)
				key := ""
				if k >= 0 {
					key = tt.keys[k]
				}
				got[target]++
				if perKey[key] == nil {
					perKey[key] = make([]int64, len(tt.weights))
				}
				perKey[key][target]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("split %v, want %v", got, tt.want)
			}
			// Every key sees the same spread.
			for key, split := range perKey {
				for i, n := range split {
					if n*int64(len(perKey)) != tt.want[i] {
						t.Errorf("key %q split %v: not its share of %v", key, split, tt.want)
					}
				}
			}
		})
	}
}

func TestSpreadTableInterleaves(t *testing.T) {
	// Even weights alternate: never the same target twice in a row.
	table := spreadTable([]int{5, 5, 5})
	if len(table) != 3 {
		t.Fatalf("5,5,5 should reduce to 1,1,1: %v", table)
	}
	// 80,10,10: the small targets are not bunched at the end of a cycle.
	table = spreadTable([]int{80, 10, 10})
	if table[len(table)-1] != 0 && table[len(table)-2] != 0 {
		t.Fatalf("table %v bunches the small targets", table)
	}
	var run, longest int
	for i, x := range table {
		if i > 0 && x == table[i-1] {
			run++
		} else {
			run = 1
		}
		longest = max(longest, run)
	}
	if longest > 5 {
		t.Fatalf("table %v has a run of %d", table, longest)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status  int
		errType string
		body    string
		want    outcome
	}{
		{200, "", "{}", outOK},
		{204, "", "", outOK},
		{403, "ForbiddenException", `{"message":"Forbidden"}`, outForbidden},
		{429, "TooManyRequestsException", `{"message":"Too Many Requests"}`, outThrottled},
		{429, "LimitExceededException", `{"message":"Limit Exceeded"}`, outQuota},
		{429, "LimitExceededException:http://internal.amazon.com/coral/", "", outQuota},
		{429, "", `{"message":"Too Many Requests"}`, outThrottled},
		{429, "", `{"message":"Limit Exceeded"}`, outQuota},
		{429, "", `slow down`, outOther},
		{503, "ServiceUnavailableException", `{"message":"Service Unavailable"}`, outUnavailable},
		{502, "BadGatewayException", "", outOther},
		{418, "", "", outOther},
		{301, "", "", outOther},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.errType, []byte(tt.body)); got != tt.want {
			t.Errorf("classify(%d, %q, %q) = %d, want %d", tt.status, tt.errType, tt.body, got, tt.want)
		}
	}
}

func TestLatencyHist(t *testing.T) {
	h := newLatencyHist()
	if h.quantile(0.5) != 0 {
		t.Fatal("an empty histogram has no median")
	}
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	check := func(h *latencyHist, q float64, want time.Duration) {
		t.Helper()
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff < -0.002 || diff > 0.002 {
			t.Errorf("q%.2f = %s, want %s ±0.2%%", q, got, want)
		}
	}
	check(h, 0.5, 500*time.Microsecond)
	check(h, 0.99, 990*time.Microsecond)
	check(h, 1, time.Millisecond)

	// Merged: the other's samples count; past the range they count as
	// the longest a request may take.
	o := newLatencyHist()
	for range 3000 {
		o.add(2 * maxLoadTimeout)
	}
	h.merge(o)
	check(h, 0.25, time.Millisecond)
	check(h, 0.26, maxLoadTimeout)
	if o.quantile(0.5) != h.quantile(1) {
		t.Errorf("merge changed the merged histogram: %s", o.quantile(0.5))
	}
}

// deadTarget is an address that refuses connections.
func deadTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestRunLoadCounts(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	a, b := loadtesttest.FakeGateway(t, &hitsA), loadtesttest.FakeGateway(t, &hitsB)
	o := &Options{
		Targets: []string{a.URL, b.URL, deadTarget(t)}, Path: "/api/prod/pets", Method: "GET",
		Keys:        []string{"ok", "throttled", "quota", "down", "teapot", "nobody"},
		Concurrency: 8, Requests: 1080, Timeout: 5 * time.Second,
	}
	if err := o.ParseSpread([]string{"3", "2", "1"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), o, nil)
	// 1080 requests, 3:2:1 → 540, 360, 180; each of the 6 keys gets a sixth
	// of each (1080 is 30 rounds of 6 keys × a cycle of 6).
	want := []targetReport{
		{Sent: 540, OK: 90, Throttled: 90, QuotaExceed: 90, Unavailable: 90, Other: 90, Forbidden: 90},
		{Sent: 360, OK: 60, Throttled: 60, QuotaExceed: 60, Unavailable: 60, Other: 60, Forbidden: 60},
		{Sent: 180, Errors: 180},
	}
	for i, w := range want {
		g := rep.Targets[i]
		g.URL, g.Share, g.Statuses, g.LatencyP50Ms, g.LatencyP99Ms, g.FirstError = "", 0, nil, 0, 0, ""
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Errorf("target %d: %+v, want %+v", i, g, w)
		}
	}
	if hitsA.Load() != 540 || hitsB.Load() != 360 {
		t.Errorf("servers saw %d and %d requests, want 540 and 360", hitsA.Load(), hitsB.Load())
	}
	if rep.Total.Sent != 1080 || rep.Total.OK != rep.Targets[0].OK+rep.Targets[1].OK {
		t.Errorf("total %+v does not add up", rep.Total)
	}
	if rep.Total.Statuses["418"] != rep.Total.Other || rep.Total.Statuses["429"] != rep.Total.Throttled+rep.Total.QuotaExceed {
		t.Errorf("statuses %v do not match the columns", rep.Total.Statuses)
	}
	if rep.Targets[2].FirstError == "" || rep.Total.FirstError == "" {
		t.Error("the dead target's error is not reported")
	}
	if rep.Targets[0].LatencyP50Ms <= 0 || rep.Targets[0].LatencyP99Ms < rep.Targets[0].LatencyP50Ms {
		t.Errorf("latency p50 %v p99 %v", rep.Targets[0].LatencyP50Ms, rep.Targets[0].LatencyP99Ms)
	}
	if rep.Mode != "max" || rep.Schedule != nil || rep.DurationSeconds <= 0 {
		t.Errorf("closed loop report: mode %q schedule %v duration %v", rep.Mode, rep.Schedule, rep.DurationSeconds)
	}
	if rep.Keys != 6 || rep.KeysRefused != 1 {
		t.Errorf("keys %d, refused %d: want 6 keys, 1 of them answered only 403", rep.Keys, rep.KeysRefused)
	}
	if s := rep.Targets[0].Share; s != 0.5 {
		t.Errorf("share of 3 in 3:2:1 = %v", s)
	}
}

func TestRunLoadOpenLoop(t *testing.T) {
	var hits atomic.Int64
	s := loadtesttest.FakeGateway(t, &hits)
	o := &Options{
		Targets: []string{s.URL}, Path: "/x", Method: "GET", Keys: []string{"ok"},
		Rate: 200, Duration: 500 * time.Millisecond, Concurrency: 16, Timeout: 5 * time.Second,
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), o, nil)
	sc := rep.Schedule
	if sc == nil || rep.Mode != "rate" {
		t.Fatalf("open loop report without a schedule: %+v", rep)
	}
	// Request i is due at i × 5ms: 0 … 495ms, so 100 are due.
	if sc.Due != 100 || sc.Sent+sc.Missed != sc.Due {
		t.Fatalf("schedule %+v: want 100 due, sent + missed = due", sc)
	}
	if sc.Sent < 90 || rep.Total.Sent != sc.Sent || hits.Load() != sc.Sent {
		t.Fatalf("sent %d (report %d, server %d) of 100 due", sc.Sent, rep.Total.Sent, hits.Load())
	}
	if rep.DurationSeconds < 0.49 || rep.DurationSeconds > 5 {
		t.Fatalf("measured duration %.3fs for a 500ms schedule", rep.DurationSeconds)
	}
	if sc.LagMaxMs < sc.LagP50Ms {
		t.Fatalf("lag max %v below p50 %v", sc.LagMaxMs, sc.LagP50Ms)
	}

	// --requests stops a rated run before --duration.
	o.Requests, o.Rate, o.Duration = 50, 1000, 10*time.Second
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep = Run(context.Background(), o, nil)
	if rep.Total.Sent != 50 || rep.Schedule.Due != 50 || time.Since(start) > 5*time.Second {
		t.Fatalf("sent %d, due %d in %s; want 50 in about 50ms", rep.Total.Sent, rep.Schedule.Due, time.Since(start))
	}
}

func TestRunLoadStopsOnCancel(t *testing.T) {
	var hits atomic.Int64
	s := loadtesttest.FakeGateway(t, &hits)
	o := &Options{Targets: []string{s.URL}, Path: "/x", Method: "GET", Keys: []string{"ok"},
		Duration: time.Hour, Concurrency: 4, Timeout: 5 * time.Second}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for hits.Load() < 100 {
			time.Sleep(time.Millisecond) // polling the server's count
		}
		cancel()
	}()
	done := make(chan *Report)
	go func() { done <- Run(ctx, o, nil) }()
	select {
	case rep := <-done:
		if !rep.Interrupted || rep.Total.Sent < 100 || rep.Total.Sent != rep.Total.OK {
			t.Fatalf("interrupted run: %+v", rep.Total)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop when cancelled")
	}
}

func TestPlanFigures(t *testing.T) {
	rep := &Report{DurationSeconds: 10, Total: targetReport{Sent: 6000, OK: 1210}, AdmittedRate: 121}
	p := planFigures(&UsagePlan{ID: "p1", Throttle: &planThrottle{RateLimit: 100, BurstLimit: 100}}, rep, 1)
	if p.ThrottleAllows == nil || *p.ThrottleAllows != 1100 || p.Expected != 1100 || p.QuotaAllows != nil {
		t.Fatalf("throttle figures %+v", p)
	}
	if p.ErrorPct < 9.99 || p.ErrorPct > 10.01 || p.PlanRate != 100 {
		t.Fatalf("error %v%%, plan rate %v", p.ErrorPct, p.PlanRate)
	}
	// Two keys: twice the allowance; the quota is the lower bound.
	p = planFigures(&UsagePlan{ID: "p1", Throttle: &planThrottle{RateLimit: 100, BurstLimit: 100},
		Quota: &planQuota{Limit: 500, Period: "DAY"}}, rep, 2)
	if *p.ThrottleAllows != 2200 || *p.QuotaAllows != 1000 || p.Expected != 1000 {
		t.Fatalf("two keys: %+v", p)
	}
	// Fewer sent than the plan allows: all of them are expected.
	rep.Total.Sent = 300
	p = planFigures(&UsagePlan{ID: "p1", Quota: &planQuota{Limit: 1000, Period: "DAY"}}, rep, 1)
	if p.Expected != 300 {
		t.Fatalf("expected %v with 300 sent", p.Expected)
	}
}
