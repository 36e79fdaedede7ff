package main

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/cluster"
	pb "github.com/tollgate/tollgate/proto"
)

// ledgerErrors stands between the quota pool and the ledger and counts the
// batches that did not apply (no leader reached, a timeout, a refusal):
// while they fail, the node spends only what it holds.
type ledgerErrors struct {
	cluster.LedgerClient
	failed atomic.Int64
}

func (l *ledgerErrors) ApplyLedger(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	res, err := l.LedgerClient.ApplyLedger(ctx, cmd)
	if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		l.failed.Add(1)
	}
	return res, err
}

// registerClusterMetrics exposes the node's and the quota pool's counters.
func registerClusterMetrics(reg prometheus.Registerer, node *cluster.Node, pool *cluster.QuotaPool, ledger *ledgerErrors) {
	counter := func(name, help string, f func(cluster.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(node.Stats()) })
	}
	gauge := func(name, help string, f func(cluster.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(node.Stats()) })
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		counter("tollgate_raft_applies_total", "Raft entries this node proposed as leader.", func(s cluster.Stats) float64 { return float64(s.Applies) }),
		counter("tollgate_raft_apply_errors_total", "Raft entries that failed to commit on this node.", func(s cluster.Stats) float64 { return float64(s.ApplyErrors) }),
		counter("tollgate_raft_apply_seconds_total", "Time spent committing and applying Raft entries.", func(s cluster.Stats) float64 { return s.ApplySeconds }),
		counter("tollgate_forwards_total", "Commands forwarded to the leader.", func(s cluster.Stats) float64 { return float64(s.Forwards) }),
		counter("tollgate_forward_errors_total", "Commands forwarded to the leader that failed.", func(s cluster.Stats) float64 { return float64(s.ForwardErrors) }),
		counter("tollgate_ledger_group_commits_total", "Raft entries that carried several nodes' ledger batches.", func(s cluster.Stats) float64 { return float64(s.LedgerGroups) }),
		gauge("tollgate_raft_applied_index", "The last Raft index this node applied.", func(s cluster.Stats) float64 { return float64(s.AppliedIndex) }),
		gauge("tollgate_raft_leader", "1 when this node leads the cluster.", func(s cluster.Stats) float64 { return b2f(s.IsLeader) }),
		gauge("tollgate_live_nodes", "Members gossip sees alive.", func(s cluster.Stats) float64 { return float64(s.LiveNodes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tollgate_quota_batches_total", Help: "Ledger batches (grants and usage reports) this node sent.",
		}, func() float64 { return float64(pool.Batches.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tollgate_quota_batch_errors_total", Help: "Ledger batches this node sent that did not apply (no leader reached, a timeout): each is resent.",
		}, func() float64 { return float64(ledger.failed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_clock_calendar_offset_seconds", Help: "The median of the voters' clocks minus this node's: what this node adds to its clock when it stamps the log as leader.",
		}, func() float64 { return node.CalendarOffset().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_clock_offset_seconds", Help: "The leader's clock minus this node's, as the last ledger batch measured it.",
		}, func() float64 { off, _ := pool.ClockOffset(); return off.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_clock_skewed", Help: "1 when this node's clock differs from the leader's beyond --max-clock-skew.",
		}, func() float64 { _, skewed := pool.ClockOffset(); return b2f(skewed) }),
	)
}
