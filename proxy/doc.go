// Package proxy is Tollgate's data plane: an http.Handler that routes a
// request to an API stage, checks its API key, throttles and meters it, and
// forwards it to the stage's upstream, answering like the original's data
// plane where the original says how. DESIGN.md says why it is shaped so.
//
// The proxy knows the cluster only through the interfaces it declares:
// ConfigSource (the current configuration) and Ledger (quota counters).
// Where it listens, and the server timeouts (ReadHeaderTimeout,
// MaxHeaderBytes ...), are the caller's business.
//
// # Routing
//
// A request reaches API a, stage s in one of two forms:
//
//   - host form: Host a.<anything>, path /s/<path>, tried first when the
//     first label of Host is a known API id (without regard to case);
//   - path form: any Host, path /a/s/<path>.
//
// It is forwarded to the stage variable "url" joined with <path> (one slash
// between them; /a/s alone goes to the url itself), the query string kept
// (after the url's own query, if it has one). API ids and stage names are
// matched as sent: a percent-encoded spelling matches nothing.
//
// A stage whose deployment has resources with methods (routes.go) routes
// within the stage by them instead: the rest of the path goes to the most
// specific resource (a path part matched exactly, then a path parameter
// "{id}", then a greedy "{proxy+}", which does not match the stage root),
// and on it to the request's method, then ANY; when a resource has
// neither, the next candidate is tried. No match answers 403
// {"message":"Missing Authentication Token"} (MissingAuthentication
// TokenException). The method's integration uri, with the stage's
// variables substituted once when the configuration changes, gives the
// upstream; its "{x}" placeholders take the captured path parameter that
// requestParameters maps integration.request.path.x from, else the one
// named x, as sent (escaped). An integration method other than ANY
// replaces the request's. The method's apiKeyRequired replaces the
// stage's api_key_not_required in check 4, and the method key of check 7
// is the resource path and the method's name ("/pets/{id}/GET"). Route
// trees are built with the table; matching allocates nothing.
//
// Before routing, the path is checked as sent (percent-encoded): runs of
// slashes are merged into one, and the request is refused with 400 when
// the path has a segment that is, or decodes once or twice to, "." or "..",
// alone or before ";params" ("%2e%2E", "..;", "..;x", "..%3B",
// "%252e%252e"; Tomcat and Spring read "..;" as ".."), a slash or
// backslash encoded once or twice ("%2F", "%5C", "%252F"), a raw
// backslash, an encoded control character, or a malformed escape. Headers whose names contain
// "_" are refused with 400 too, unless Config.AllowUnderscoreHeaders.
//
// # Checks, in order
//
//  0. the node serves fewer than Config.MaxConcurrent requests (when
//     set); otherwise 503 with Retry-After 1, logged at debug level;
//     the node is ready (Config.Ready): a node that has not caught up with
//     the cluster since it started answers every request 503 with
//     Retry-After 1, since its state may lack keys, plans and stages;
//  1. path and headers (400);
//  2. route: no such API or stage → 403 {"message":"Forbidden"} (the
//     original answers 403 "Missing Authentication Token" for unknown
//     paths; Tollgate gives the same body as a bad key, so that routes
//     cannot be told from keys);
//  3. Content-Length over Config.MaxBodyBytes → 413;
//  4. API key, from the header x-api-key (any case), unless the stage has
//     api_key_not_required: missing, empty, unknown, disabled, in no plan
//     covering the stage, or two x-api-key headers with different values
//     → 403. A key is found by the lookup hash of the value (HMAC-SHA-256
//     under the cluster's keys, Config.Keys: the configuration holds no
//     value), with no allocation; a node that cannot unwrap the cluster's
//     data key answers 503 with Retry-After for a key it does not find.
//     A key is in at most one plan per stage; should the
//     configuration break that rule, the plan with the smaller id applies;
//  5. the stage's upstream: no valid "url" (absolute http or https) → 500,
//     logged at error level;
//     A url whose host is an IP address the Config.Upstreams policy
//     refuses (link-local, cloud metadata, the node's own ports) counts
//     as no valid url;
//  6. protocol upgrades (an Upgrade header): "h2c" is ignored (the header
//     is removed, the request served as HTTP/1.1); "websocket" goes on
//     when the stage variable tollgate_websocket is "true" (the session
//     is metered as one request); anything else → 400 "Upgrade not
//     allowed";
//  7. throttles, every level must admit the request (the strictest wins);
//     a token taken at one level is refunded when a later one refuses:
//     - account: Config.Account.throttle (rate 10000, burst 5000 while
//     none is set), one bucket for the node;
//     - stage method settings: the exact "{resourcePath}/{METHOD}" key if
//     the stage has it, else "*/*"; an unset rate or burst inherits the
//     account's. The resource path is the request path within the stage
//     as sent, without a trailing slash, "/" for the root ("/pets/GET",
//     "//GET"); it is matched literally (no {param} templates). One bucket
//     per stage and setting, shared by all callers;
//     - plan throttle: one bucket per (plan, key), shared by every stage of
//     the plan;
//     - plan per-method throttle (apiStages[].throttle["/pets/GET"]): one
//     bucket per (plan, key, stage, method key).
//     A missing throttle is no throttle. One whose rate and burst are both
//     zero refuses everything it covers, at every level; a rate with burst
//     0 (a rate given alone) gets a burst of one second of the rate,
//     rounded up (limiter.DefaultBurst).
//     Refused → 429 {"message":"Too Many Requests"};
//  8. quota, when the key's plan has one: QuotaCounter.Take, waiting at
//     most Config.QuotaWait for a first grant. Exhausted → 429
//     {"message":"Limit Exceeded"} with Retry-After until the period
//     resets; unavailable (no grant could be had) → 503; unknown (the
//     ledger no longer has the key in the plan) → 403. A refused request
//     gets its throttle tokens back. A plan without a quota counts the
//     request (QuotaCounter.Count). Keyless stages are not metered, and a
//     key sent to them is ignored (but stripped).
//
// Then the request is forwarded with httputil.ReverseProxy (Rewrite):
// hop-by-hop headers dropped, X-Forwarded-For/Host/Proto set (client
// values replaced), X-Real-Ip and x-api-key removed, X-Tollgate-Key-Id
// (the key's id, never its value) and X-Tollgate-Node (Config.NodeID) set
// in place of any copy the client sent, Host set to the upstream's. Upstream failures: 504 when the response headers take longer
// than Config.UpstreamTimeout (or the transport times out), 502 otherwise,
// 413 when a body of unknown length crosses the limit on the way, 500
// (logged at error level, "upstream address refused") when the address
// dialed, after DNS, is one Config.Upstreams refuses.
//
// # The proxy's own answers
//
// Every answer the proxy makes itself has Content-Type application/json, a
// body {"message":"..."}, x-amzn-RequestId (a random UUID) and
// x-amzn-ErrorType:
//
//	400 BadRequestException            Bad Request
//	400 BadRequestException            Upgrade not allowed
//	403 ForbiddenException             Forbidden                   (original)
//	403 MissingAuthenticationToken...  Missing Authentication Token (original)
//	413 RequestTooLargeException       Request Too Long
//	429 TooManyRequestsException       Too Many Requests           (original)
//	429 LimitExceededException         Limit Exceeded              (original)
//	500 InternalServerErrorException   Internal server error
//	502 BadGatewayException            Bad Gateway
//	503 ServiceUnavailableException    Service Unavailable
//	504 GatewayTimeoutException        Endpoint request timed out
//
// 429 and 503 carry Retry-After in whole seconds, rounded up, at least 1.
// Forwarded responses pass through as the upstream sent them, less
// hop-by-hop headers, plus the limit headers below.
//
// # Limit headers
//
// Every response to a request with a valid key whose plan has a throttle or
// a quota (forwarded, 429, 503, 502 ...) carries:
//
//   - RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers, structured
//     field form): the key's policies, which change only with the
//     configuration. "burst";q=B;w=W is the key's token bucket: B its burst
//     and W the seconds it takes to refill (burst/rate, rounded, at least
//     1). "quota";q=L;w=P is the plan quota: L the plan limit and P the
//     nominal length of its period (DAY 86400, WEEK 604800, MONTH 2592000).
//     The bucket shown is the plan's per-method throttle when one applies
//     to the request, else the plan throttle.
//   - RateLimit: the state of the same policies after this request.
//     "burst";r=N;t=S: N whole tokens left in the bucket, S seconds until
//     it is full again. "quota";r=N;t=S: N requests left in the period
//     (cluster-wide, as this node last heard), S seconds until the period
//     resets. The quota item is present when the quota was consulted and
//     answered (not on a 503).
//   - X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset: one
//     policy in the older, widespread form. The quota when the request
//     consulted it (the limit includes extensions granted for the period),
//     else the key's bucket: the limit, what is left, and the seconds (not
//     a timestamp) until the reset.
//
// Stage and account levels are shared by all callers and not shown.
//
// # Metrics
//
// With Config.Metrics: tollgate_proxy_requests_total{api,stage,code},
// tollgate_proxy_throttled_total{api,stage,level},
// tollgate_proxy_quota_exceeded_total{api,stage} and
// tollgate_proxy_upstream_seconds{api,stage}. Requests that match no stage
// are counted with empty api and stage labels.
package proxy
