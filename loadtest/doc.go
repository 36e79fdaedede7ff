// Package loadtest is "tollgate loadtest": it drives a running cluster's
// data plane and counts what it admits, throttles and refuses, per node.
// It is the tool users run to check that a plan's quota and throttle hold
// across their own cluster, so its numbers must be honest: rates use the
// measured duration, an open-loop run says how far behind its schedule it
// fell, and every answer is counted in exactly one column.
//
// Options are validated, Run sends the load and returns a Report, which
// ComparePlan sets against a usage plan read by FetchPlan and WriteText
// prints as a table (or encoding/json as it is).
package loadtest
