//go:build race

package sealing

// raceEnabled: under the race detector sync.Pool drops items at random,
// so Lookup allocates now and then.
const raceEnabled = true
