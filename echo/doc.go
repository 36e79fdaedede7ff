// Package echo is a demo upstream for trying Tollgate out and for testing
// it: every request is answered 200 with a JSON description of what
// arrived, and counted, so that a test can compare what clients were let
// through with what the upstream received.
//
// It answers any method and path, except GET /_upstream/requests, which
// returns the counts (see Counts) and is not itself counted. The answer
// names the method, path, query, the request id the client sent (the
// gateway passes request headers through), the X-Forwarded-For the
// gateway set, the address of the peer that forwarded the request (a
// gateway node), and the API key id and node id the gateway set
// (X-Tollgate-Key-Id, X-Tollgate-Node); requests are counted by each of
// those too, so a test can compare, per key and per node, what the
// gateway admitted with what arrived. It never echoes request headers wholesale, so an API key
// that reached it would not be repeated.
package echo
