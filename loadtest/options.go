package loadtest

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
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

// Options is everything `tollgate loadtest` reads from its flags.
type Options struct {
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

	// Filled by Validate.
	urls    []string // target base URL + path
	table   []int    // target index for each slot of one spread cycle
	keySlot []int    // for each of Keys, the index of its value among the distinct values
	nKeys   int      // distinct key values
}

var (
	methodPattern = regexp.MustCompile(`^[A-Za-z]{1,20}$`)
	sharePattern  = regexp.MustCompile(`^[0-9]+$`)
)

// ParseSpread reads --spread; Validate checks it against --targets.
func (o *Options) ParseSpread(in []string) error {
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

// Validate checks the options, fills defaults and derives the request URLs
// and the spread table.
func (o *Options) Validate() error {
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
func (o *Options) pick(i int64) (target, key int) {
	n := int64(len(o.table))
	target, key = o.table[i%n], -1
	if k := int64(len(o.Keys)); k > 0 {
		key = int((i / n) % k)
	}
	return target, key
}

// splitList splits comma-separated flag values and drops empty items.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
