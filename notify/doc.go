// Package notify sends quota notices: a usage plan may name a webhook and
// thresholds (percents of its quota, Config.QuotaNotifications), and when
// a key's use in a quota period reaches a threshold, the leader POSTs
//
//	{"id": "planId/keyId/periodStart/threshold", "planId": …, "keyId": …,
//	 "period": {"start": RFC 3339, "end": RFC 3339}, "threshold": 80,
//	 "used": 800, "limit": 1000, "time": RFC 3339}
//
// to it, once per key, period and threshold.
//
// # Once, through the log
//
// Only the leader looks (every Interval) at the ledgers of plans with
// notifications. Before it sends anything it records the notice through
// Raft in state "pending" (cluster.RecordQuotaNotices); the state machine
// records a threshold only once per key and period, whoever proposes it,
// and answers which notices are new. Only those are sent. So a new leader,
// which sees the same ledgers, never fires a threshold again: the decision
// to fire is made once, in the log.
//
// Delivery is at least once: the sender records the outcome ("delivered"
// after a 2xx, "failed" after Attempts tries, waiting Backoff, doubled,
// between them) through Raft too, and a leader resends every notice still
// "pending" that it is not sending itself (a leader that died or lost its
// office between recording a notice and recording its outcome). Such a
// notice may reach the webhook twice, when the old leader had delivered it
// but not yet recorded that; the "id" field (and the Tollgate-Notice-Id
// header) is the same on every try, so a receiver can drop repeats. We
// chose at least once over at most once because a notice that is lost
// silently (a quota used up that nobody hears of) costs more than one that
// arrives twice with the same id; the window for a repeat is one Raft
// round trip after a webhook answer, at a leader change.
//
// A sender that is no longer the leader stops trying (the new leader
// resends). Webhook addresses obey the data plane's upstream policy
// (no link-local or cloud metadata addresses, not the node's own ports
// unless --allow-upstream allows them), checked on the address dialed;
// redirects are not followed.
package notify
