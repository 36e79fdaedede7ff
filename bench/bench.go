package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Caps: a benchmark that can be told to run forever will be.
const (
	maxKeys        = 10_000_000
	maxConcurrency = 1024
	maxPhase       = 10 * time.Minute
	maxImportBatch = 100_000
)

// Options is what one run measures.
type Options struct {
	Exe         string        // the tollgate binary to start (serve)
	Keys        int           // keys imported into the plan
	Active      int           // keys that see traffic in the spread phase
	Zipf        bool          // spread requests by a zipf law (s = 1.1) instead of uniformly
	Duration    time.Duration // length of each traffic phase
	Concurrency int           // requests in flight
	DataDir     string        // the node's data dir; empty: a temporary one, removed after
	ImportBatch int           // keys per ImportApiKeys call
}

// Validate checks the options and fills defaults.
func (o *Options) Validate() error {
	if o.Exe == "" {
		return errors.New("bench: no binary to start")
	}
	if o.Keys < 1 || o.Keys > maxKeys {
		return fmt.Errorf("--keys must be from 1 to %d", maxKeys)
	}
	if o.Active < 1 || o.Active > o.Keys {
		return fmt.Errorf("--active must be from 1 to --keys (%d)", o.Keys)
	}
	if o.Duration <= 0 || o.Duration > maxPhase {
		return fmt.Errorf("--duration must be positive and at most %s", maxPhase)
	}
	if o.ImportBatch < 1 || o.ImportBatch > maxImportBatch {
		return fmt.Errorf("--import-batch must be from 1 to %d", maxImportBatch)
	}
	if o.Concurrency < 1 || o.Concurrency > maxConcurrency {
		return fmt.Errorf("--concurrency must be from 1 to %d", maxConcurrency)
	}
	return nil
}

// Report is what a run measured.
type Report struct {
	Keys, Active        int
	ImportBatch         int
	Spread              string
	Import              time.Duration // all keys, in ImportBatch-key calls
	FirstPage           time.Duration // GetApiKeys, limit 500
	RSSBase, RSSIdle    int64         // before the import, after it
	HeapBase, HeapIdle  int64
	RSSActive, HeapAct  int64 // after the spread phase
	One, Spread2        phase
	LogBytes            int64 // raft.db growth over both phases
	DataDir             int64 // bytes, after the traffic
	SnapshotTook        time.Duration
	SnapshotBytes       int64
	Restart             time.Duration // SIGTERM sent to the first admitted request of the new process
	RestartStop         time.Duration // of which the old process's stop
	RestartKeysAdmitted int           // of a sample of keys, admitted after the restart
	RestartSample       int
}

type phase struct {
	Sent, Admitted int64
	Other          map[int]int64
	Errors         int64
	Took           time.Duration
	P50, P99       time.Duration
}

func (p phase) rate() float64 { return float64(p.Admitted) / p.Took.Seconds() }

func keyValue(i int) string { return fmt.Sprintf("benchkey%012dv%08x", i, uint32(i)*2654435761) }

// Run measures one node as Options say and writes progress to progress.
func Run(ctx context.Context, o Options, progress io.Writer) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir := o.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "tollgate-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	up, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()

	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	r := &Report{Keys: o.Keys, Active: o.Active, ImportBatch: o.ImportBatch, Spread: "uniform"}
	if o.Zipf {
		r.Spread = "zipf(1.1)"
	}
	n, err := startNode(ctx, o.Exe, dir, time.Minute)
	if err != nil {
		return nil, err
	}
	defer func() {
		if n != nil {
			n.kill()
		}
	}()
	path, planID, err := setup(ctx, n, "http://"+up.Addr().String())
	if err != nil {
		return nil, err
	}
	r.RSSBase, r.HeapBase = n.rss(), n.heap(ctx)

	say("importing %d keys in calls of %d", o.Keys, o.ImportBatch)
	start := time.Now()
	for lo := 0; lo < o.Keys; lo += o.ImportBatch {
		hi := min(lo+o.ImportBatch, o.Keys)
		var b strings.Builder
		b.WriteString("name,key,enabled,usageplanIds\n")
		for i := lo; i < hi; i++ {
			fmt.Fprintf(&b, "k%d,%s,true,%s\n", i, keyValue(i), planID)
		}
		if err := n.call(ctx, "POST", "/apikeys?mode=import&format=csv&failonwarnings=true", "text/csv", []byte(b.String()), 201, nil); err != nil {
			return nil, fmt.Errorf("import keys %d..%d: %w", lo, hi, err)
		}
		if (hi/o.ImportBatch)%10 == 0 {
			say("  %d keys, %s", hi, time.Since(start).Round(time.Millisecond))
		}
	}
	r.Import = time.Since(start)
	settle(ctx, n)
	r.RSSIdle, r.HeapIdle = n.rss(), n.heap(ctx)

	start = time.Now()
	if err := n.call(ctx, "GET", "/apikeys?limit=500", "", nil, 200, nil); err != nil {
		return nil, err
	}
	r.FirstPage = time.Since(start)
	// The second call shows the steady cost (the first may build an index).
	start = time.Now()
	if err := n.call(ctx, "GET", "/apikeys?limit=500", "", nil, 200, nil); err != nil {
		return nil, err
	}
	r.FirstPage = min(r.FirstPage, time.Since(start))

	db := filepath.Join(dir, "raft.db")
	logBefore := fileSize(db)
	url := n.data + path
	say("traffic on one key for %s", o.Duration)
	r.One = drive(ctx, url, 1, false, o)
	say("traffic over %d keys (%s) for %s", o.Active, r.Spread, o.Duration)
	r.Spread2 = drive(ctx, url, o.Active, o.Zipf, o)
	settle(ctx, n)
	r.RSSActive, r.HeapAct = n.rss(), n.heap(ctx)
	r.LogBytes = fileSize(db) - logBefore
	r.DataDir = dirSize(dir)

	say("restarting")
	start = time.Now()
	if err := n.stop(time.Minute); err != nil {
		return nil, err
	}
	r.RestartStop = time.Since(start)
	r.SnapshotTook, r.SnapshotBytes = n.snapshot, n.snapSize
	n = nil
	n2, err := startNode(ctx, o.Exe, dir, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	n = n2
	c := client(1)
	if err := poll(ctx, 5*time.Minute, func() bool { return get(ctx, c, n.data+path, keyValue(0)) == 200 }, n.exited); err != nil {
		return nil, fmt.Errorf("no request admitted after the restart: %w", err)
	}
	r.Restart = time.Since(start)
	rng := rand.New(rand.NewPCG(7, 11))
	r.RestartSample = min(200, o.Keys)
	for range r.RestartSample {
		if get(ctx, c, n.data+path, keyValue(rng.IntN(o.Keys))) == 200 {
			r.RestartKeysAdmitted++
		}
	}
	return r, nil
}

// settle gives the node's garbage collector a moment so that resident
// memory reflects live state: two /metrics reads a second apart.
func settle(ctx context.Context, n *node) {
	for range 2 {
		n.heap(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second): // a pause for the node's GC, not a synchronisation
		}
	}
}

// setup creates an API, a stage in front of the upstream, and a plan with
// a throttle and a daily quota far above what the run sends.
func setup(ctx context.Context, n *node, upstream string) (path, planID string, err error) {
	var api struct{ ID string }
	if err = n.json(ctx, "POST", "/restapis", map[string]any{"name": "bench"}, 201, &api); err != nil {
		return
	}
	if err = n.json(ctx, "POST", "/restapis/"+api.ID+"/deployments", map[string]any{
		"stageName": "prod", "variables": map[string]string{"url": upstream},
	}, 201, nil); err != nil {
		return
	}
	if err = n.json(ctx, "PATCH", "/account", map[string]any{"patchOperations": []map[string]string{
		{"op": "replace", "path": "/throttle/rateLimit", "value": "1000000"},
		{"op": "replace", "path": "/throttle/burstLimit", "value": "1000000"},
	}}, 200, nil); err != nil {
		return
	}
	var plan struct{ ID string }
	if err = n.json(ctx, "POST", "/usageplans", map[string]any{
		"name":      "bench",
		"apiStages": []map[string]any{{"apiId": api.ID, "stage": "prod"}},
		"throttle":  map[string]any{"rateLimit": 100000, "burstLimit": 100000},
		"quota":     map[string]any{"limit": 1_000_000_000, "period": "DAY"},
	}, 201, &plan); err != nil {
		return
	}
	return "/" + api.ID + "/prod/bench", plan.ID, nil
}

func client(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true,
	}}
}

func get(ctx context.Context, c *http.Client, url, key string) int {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("x-api-key", key)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// drive sends requests from o.Concurrency workers for o.Duration, each on
// one of the first keys keys, uniformly or by a zipf law.
func drive(ctx context.Context, url string, keys int, zipf bool, o Options) phase {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	c := client(o.Concurrency)
	defer c.CloseIdleConnections()
	var sent, admitted, errs atomic.Int64
	var mu sync.Mutex
	other := map[int]int64{}
	hist := make([]int64, histBuckets)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var z *rand.Zipf
			if zipf && keys > 1 {
				z = rand.NewZipf(rng, 1.1, 1, uint64(keys-1))
			}
			local := make([]int64, histBuckets)
			for ctx.Err() == nil {
				k := 0
				switch {
				case z != nil:
					k = int(z.Uint64())
				case keys > 1:
					k = rng.IntN(keys)
				}
				t0 := time.Now()
				st := get(ctx, c, url, keyValue(k))
				if ctx.Err() != nil {
					break
				}
				sent.Add(1)
				switch st {
				case 200:
					admitted.Add(1)
					local[bucketOf(time.Since(t0))]++
				case 0:
					errs.Add(1)
				default:
					mu.Lock()
					other[st]++
					mu.Unlock()
				}
			}
			mu.Lock()
			for i, v := range local {
				hist[i] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return phase{Sent: sent.Load(), Admitted: admitted.Load(), Other: other, Errors: errs.Load(),
		Took: time.Since(start), P50: quantile(hist, 0.5), P99: quantile(hist, 0.99)}
}

// Latency histogram: buckets 2% wide from 1µs up to about 100s.
const histBuckets = 1000

func bucketOf(d time.Duration) int {
	us := float64(d) / 1e3
	if us <= 1 {
		return 0
	}
	return min(int(math.Log(us)/math.Log(1.02)), histBuckets-1)
}

func quantile(hist []int64, q float64) time.Duration {
	var total int64
	for _, v := range hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, v := range hist {
		if seen += v; seen >= want {
			return time.Duration(math.Pow(1.02, float64(i+1)) * 1e3)
		}
	}
	return 0
}

// startUpstream serves 200 "ok" on a loopback port.
func startUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln, nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}
