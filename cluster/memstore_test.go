package cluster

import "github.com/tollgate/tollgate/cluster/clustertest"

// MemStore is clustertest's in-memory store on this package's FSM, for the
// internal tests (quota pool tests use it as their ledger).
type MemStore = clustertest.MemStore[*FSM]

// NewMemStore returns an in-memory store on a new FSM and the wall clock.
func NewMemStore() *MemStore { return clustertest.NewMemStore(NewFSM()) }
