//go:build !faults

package main

import (
	"log/slog"
	"time"
)

// faultClock is the node's clock: the system clock. Binaries built with
// the faults tag may skew it (clock_faults.go), for tests only.
func faultClock(*slog.Logger) func() time.Time { return time.Now }
