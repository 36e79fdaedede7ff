// Package cluster is Tollgate's replicated core: a hashicorp/raft node with a
// bolt log and file snapshots in the data dir, the FSM that holds every piece
// of configuration and the quota ledger, gossip membership (memberlist) with a
// leader-only reconcile loop that turns it into Raft configuration, the gRPC
// service nodes use to forward writes to the leader, the QuotaPool through
// which a node spends quota grants on its request path, and the ShareBook that
// holds its shares of the cluster-wide throttles.
//
// The files follow the package's seams:
//
//   - the state machine, with no sockets: fsm.go (apply, snapshots),
//     fsm_config.go (configuration commands), fsm_ledger.go (the quota
//     ledger), fsm_validate.go (every command checked),
//     fsm_snapshot_check.go (the same checks on a snapshot Restore reads),
//     fsm_keys.go (key values sealed, unique by lookup hash),
//     fsm_secrets.go (the data key), fsm_credentials.go (admin credentials),
//     fsm_resources.go (resources, methods and integrations; the trees
//     deployments snapshot);
//   - the node's side of quotas and throttles: quota.go (QuotaPool,
//     Counter), shares.go (ShareBook and the leader's division);
//   - the Raft node: node.go (open, apply, forward, close), leader.go (the
//     group commit), calendar.go (the voters' median clock the leader
//     stamps), catchup.go, datadir.go and perms.go (the data dir),
//     datakey.go and keytend.go (the data key made, rewrapped under the
//     key-encryption key and tended, plain values sealed);
//   - membership and transport: gossip.go, reconcile.go (the pure
//     membership decision), membership.go (its executor, bootstrap,
//     seats), progress.go (how far the leader has replicated to each
//     follower, which promotion follows), grpc.go, stream.go; tls.go (mutual TLS on Raft and gRPC,
//     certificates read again when their files change, refusals logged
//     once per address) and gossipkey.go (the gossip keyring from its
//     file).
//
// Read DESIGN.md for the invariants and why the package is shaped so.
package cluster
