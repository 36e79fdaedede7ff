package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

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

// latencyHist records durations in an HDR histogram, in microseconds from
// 1µs to maxLoadTimeout with three significant digits (a relative error of
// at most 0.1%); longer ones count as maxLoadTimeout. A mutex lets the
// workers share one per target.
type latencyHist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencyHist() *latencyHist {
	return &latencyHist{h: hdrhistogram.New(1, maxLoadTimeout.Microseconds(), 3)}
}

func (h *latencyHist) add(d time.Duration) {
	us := min(max(d.Microseconds(), 0), maxLoadTimeout.Microseconds())
	h.mu.Lock()
	_ = h.h.RecordValue(us) // within the range: cannot fail
	h.mu.Unlock()
}

// merge adds o's samples to h.
func (h *latencyHist) merge(o *latencyHist) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.h.Merge(o.h)
}

// quantile returns the q-quantile (0 < q ≤ 1), or 0 without samples.
func (h *latencyHist) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// targetStats counts one target's answers; workers share it.
type targetStats struct {
	counts   [numOutcomes]atomic.Int64
	statuses [600]atomic.Int64
	latency  *latencyHist // admitted requests only
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

// Run sends the load and reports. Progress lines go to progress, when
// not nil, every 5 seconds. Cancelling ctx stops sending; requests in
// flight finish (within --timeout) and are counted.
func Run(ctx context.Context, o *Options, progress io.Writer) *Report {
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
		stats[i] = &targetStats{latency: newLatencyHist()}
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

	rep := &Report{
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
	all := newLatencyHist()
	for i, s := range stats {
		tr := s.report()
		tr.URL, tr.Share = o.Targets[i], float64(o.Spread[i])/float64(weightSum)
		rep.Targets = append(rep.Targets, tr)
		total.add(tr)
		all.merge(s.latency)
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
func runOpenLoop(ctx context.Context, o *Options, start time.Time, send func(int64)) *scheduleStats {
	type job struct {
		i   int64
		due time.Time
	}
	jobs := make(chan job)
	lags := newLatencyHist()
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
