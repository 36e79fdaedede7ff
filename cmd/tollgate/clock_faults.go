//go:build faults

package main

import (
	"log/slog"
	"os"
	"time"
)

// faultClock is the node's clock, shifted by TOLLGATE_FAULT_CLOCK_OFFSET
// (a Go duration, e.g. "1h" or "-2s"). Only binaries built with the
// faults tag read it: the tests that skew a node's clock build one.
func faultClock(log *slog.Logger) func() time.Time {
	v := os.Getenv("TOLLGATE_FAULT_CLOCK_OFFSET")
	if v == "" {
		return time.Now
	}
	off, err := time.ParseDuration(v)
	if err != nil {
		log.Error("TOLLGATE_FAULT_CLOCK_OFFSET is not a duration; the clock is not skewed", "value", v, "err", err)
		return time.Now
	}
	log.Warn("this node's clock is skewed for a test", "offset", off)
	return func() time.Time { return time.Now().Add(off) }
}
