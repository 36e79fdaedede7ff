package limiter

import "time"

// QuotaStatus is the outcome of spending one unit of a key's quota.
type QuotaStatus uint8

const (
	// QuotaAllowed: a unit was spent; the request may go on.
	QuotaAllowed QuotaStatus = iota + 1
	// QuotaExhausted: the key has used its quota for the period (429 Limit Exceeded).
	QuotaExhausted
	// QuotaUnavailable: no unit is held and the ledger cannot hand one out now
	// (no leader, no quorum, timeout). The caller is not over its quota (503).
	QuotaUnavailable
	// QuotaUnknown: the key is not in the plan (any more), or the plan is gone.
	QuotaUnknown
)

// QuotaDecision is what spending one unit of quota answers.
type QuotaDecision struct {
	Status QuotaStatus
	// Limit is the effective limit of the period (plan limit plus extension).
	Limit int64
	// Remaining is the cluster-wide remaining quota as last known by this node.
	Remaining int64
	// ResetAt is the start of the next period.
	ResetAt time.Time
	// RetryAfter is set for QuotaUnavailable and QuotaExhausted.
	RetryAfter time.Duration
}
