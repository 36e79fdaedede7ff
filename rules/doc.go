// Package rules holds the checks every piece of configuration must pass:
// lengths, alphabets, ranges and sizes of names, ids, API key values,
// throttles, quotas, tags and stage variables.
//
// Each rule has this one home. The admin API calls it to answer a request
// (400 with the message as it is), and the state machine in cluster calls
// it again in Apply, so a command that did not come through the admin API
// (a forged or buggy one) is refused the same way and never applied.
//
// The checks are pure functions of their arguments: rules imports only the
// standard library, limiter (quota periods) and proto, so both cluster and
// admin may import it (see the import rules in the design). A failed check
// returns an error that matches ErrInvalid and whose message is the one
// the admin API answers.
package rules
