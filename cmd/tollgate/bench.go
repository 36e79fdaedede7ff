package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/bench"
)

// benchCmd is "tollgate bench": its flags fill bench.Options.
func benchCmd() *cobra.Command {
	o := bench.Options{}
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Measure a node as keys grow: memory per key, req/s, latency, log and data dir, snapshot and restart",
		Long: `bench starts a node of this binary (serve, every listener on loopback, a
temporary data dir) and an upstream, imports --keys keys into one plan in
calls of --import-batch, sends traffic on one key and then over --active keys
(uniform, or --zipf), stops the node and starts it again, and prints: memory
per key idle and active (resident and heap), GetApiKeys' first page, req/s
and p50/p99 for one key and for many, log bytes per admitted request, the
data dir's size, the snapshot written on stop and the time from the stop to
the first admitted request of the new process. It prints figures; it passes
or fails nothing.`,
		Example: `  tollgate bench --keys 1000000 --active 10000 --duration 20s`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Exe = exe
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := bench.Run(ctx, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return r.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Keys, "keys", 100_000, "keys to import into the plan")
	f.IntVar(&o.Active, "active", 10_000, "keys that see traffic in the second phase")
	f.BoolVar(&o.Zipf, "zipf", false, "spread requests over the active keys by a zipf law (s = 1.1) instead of uniformly")
	f.DurationVar(&o.Duration, "duration", 15*time.Second, "length of each traffic phase")
	f.IntVar(&o.ImportBatch, "import-batch", 10_000, "keys per ImportApiKeys call")
	f.IntVar(&o.Concurrency, "concurrency", 64, "requests in flight")
	f.StringVar(&o.DataDir, "data-dir", "", "the node's data dir (kept) [a temporary one, removed after]")
	return cmd
}
