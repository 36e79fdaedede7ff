// Package cluster is Tollgate's replicated core: a hashicorp/raft node with a
// bolt log and file snapshots in the data dir, the FSM that holds every piece
// of configuration and the quota ledger, gossip membership (memberlist) with a
// leader-only reconcile loop that turns it into Raft configuration, the gRPC
// service nodes use to forward writes to the leader, and the QuotaPool through
// which a node spends quota grants on its request path.
//
// Read DESIGN.md for the invariants and why the package is shaped so.
package cluster
