// Package limiter holds the arithmetic of Tollgate's limits: the token
// bucket that throttles requests, the quota periods, the sizing of quota
// grants and the division of a throttle into per-node shares.
//
// It is pure: time is always an input (a now in nanoseconds on the caller's
// monotonic clock for buckets, a time.Time for periods and demand), it does
// no I/O, reads no clock and starts no goroutine. It imports the standard
// library only. DESIGN.md says why it is shaped so.
//
// # Buckets
//
// A Bucket is a token bucket (burst = size, rate = refill per second)
// enforced with GCRA on a single atomic word, lock-free and without
// allocation on the request path. A new bucket is full. A rate <= 0 or a
// burst <= 0 denies every request with a retry hint of one second
// (DenyRetryAfter). Rates above one token per nanosecond (MaxRate) are
// enforced as MaxRate; the emission interval is a whole number of
// nanoseconds (rounded), which keeps the enforced rate within 1% of the
// configured one up to 2e7 tokens per second. burst/rate is capped to MaxSpan (about 146 years), so a bucket
// such as rate 0.001, burst 2e9 holds at most MaxSpan*rate tokens. SetLimit
// keeps the tokens a bucket holds and takes effect at the next call that
// passes a time.
//
// # Quota periods
//
// Periods are DAY, WEEK and MONTH (ParsePeriod takes exactly these
// spellings) and are computed in UTC whatever the location of the time
// given. The offset is the day the period starts on:
//
//   - DAY: 00:00 UTC every day; the offset must be 0.
//   - WEEK: 00:00 UTC on Sunday + offset days: 0 = Sunday, 1 = Monday …
//     6 = Saturday.
//   - MONTH: 00:00 UTC on day 1 + offset of the month: 0 = the 1st …
//     27 = the 28th, so every month has that day.
//
// # Grants and shares
//
// GrantSize and LowWatermark size the quota grants a node asks the ledger
// for; a DemandMeter estimates the rate they follow. Shares (the one home of
// the share formula) and ShareLimit divide a cluster-wide throttle between
// nodes; Share is the word the request path reads a node's share from.
package limiter
