// Package bench measures what a node costs as keys grow: it starts a node
// (this binary's serve command) and an upstream on loopback, imports N keys
// into one plan, drives traffic over one key and then over K keys, stops
// and restarts the node, and prints memory per key idle and active,
// requests per second, latency, log bytes per request, the data dir's size,
// snapshot and restart times. It prints figures; it passes or fails
// nothing.
package bench
