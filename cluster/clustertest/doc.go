// Package clustertest helps tests that need the cluster's state machine but
// no cluster: MemStore applies commands to an FSM in order, in memory.
//
// It imports nothing from package cluster, so that cluster's own (internal)
// tests can use it too: the FSM comes in as a type parameter,
// clustertest.NewMemStore(cluster.NewFSM()).
package clustertest
