package cluster

import "sync/atomic"

// stats are the node's running counts; Stats reads them for metrics.
type stats struct {
	applies       atomic.Int64
	applyNanos    atomic.Int64
	applyErrors   atomic.Int64
	forwards      atomic.Int64
	forwardErrors atomic.Int64
}

// Stats is a reading of a node's counters, all since it started.
type Stats struct {
	// Applies are the Raft entries this node proposed as leader, and the
	// time they took to commit and apply, in seconds.
	Applies, ApplyErrors int64
	ApplySeconds         float64
	// Forwards are the commands this node sent to the leader.
	Forwards, ForwardErrors int64
	// LedgerGroups are group commits that carried several ledger batches.
	LedgerGroups int64
	// AppliedIndex is the last command applied here.
	AppliedIndex uint64
	// IsLeader tells whether this node leads.
	IsLeader bool
	// LiveNodes is the number of members gossip sees alive.
	LiveNodes int
}

// Stats reads the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		Applies:       n.stats.applies.Load(),
		ApplyErrors:   n.stats.applyErrors.Load(),
		ApplySeconds:  float64(n.stats.applyNanos.Load()) / 1e9,
		Forwards:      n.stats.forwards.Load(),
		ForwardErrors: n.stats.forwardErrors.Load(),
		LedgerGroups:  n.groups.Load(),
		AppliedIndex:  n.AppliedIndex(),
		IsLeader:      n.IsLeader(),
		LiveNodes:     n.LiveNodes(),
	}
}
