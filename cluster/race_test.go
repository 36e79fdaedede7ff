//go:build race

package cluster

// raceEnabled: the race detector slows the simulation about tenfold, so it
// runs fewer seeds under it.
const raceEnabled = true
