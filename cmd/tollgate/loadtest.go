package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/loadtest"
)

// loadtestCmd is "tollgate loadtest": its flags fill loadtest.Options.
func loadtestCmd() *cobra.Command {
	o := &loadtest.Options{}
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
			if err := o.ParseSpread(spread); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			// The first signal stops sending and reports what was sent;
			// a second one ends the process as usual.
			sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { <-sigCtx.Done(); stop() }()

			var plan *loadtest.UsagePlan
			if o.Plan != "" {
				p, err := loadtest.FetchPlan(cmd.Context(), o.Admin, o.Plan, o.Timeout)
				if err != nil {
					return err
				}
				plan = p
			}
			var progress io.Writer
			if !o.JSON {
				progress = cmd.ErrOrStderr()
			}
			rep := loadtest.Run(sigCtx, o, progress)
			if plan != nil {
				rep.ComparePlan(plan)
			}
			if o.JSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
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
