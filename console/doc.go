// Package console is Tollgate's web console: server-rendered pages
// (html/template, a little plain JavaScript, charts drawn as SVG from the
// data) served by every node on the admin listener under /console/, with
// its templates and static files embedded in the binary.
//
// The console holds no state of the cluster and no rule of its own: every
// page reads, and every form changes, through the admin API's handler,
// called in process with the browser's request context (its Host, peer and
// listener) and its credential. So a page is refused exactly as the admin
// API would refuse the caller, and a form's bad input answers the admin
// API's own error message and changes nothing.
//
// # Signing in
//
// A browser cannot sign requests, so the login form takes a bearer token
// (<id>.<secret>, see the admin API's "Authentication") and keeps it in the
// cookie tollgate_token: HttpOnly, SameSite=Strict, Path=/console/, Secure
// when the request came over TLS. Each admin call of a page carries it as
// "Authorization: Bearer <token>", checked exactly as that header is. While
// the cluster has no credential, callers on the node's own host need none,
// as for the admin API.
//
// # Forms
//
// The admin API's browser guards (Host names, JSON-only writes) stay as
// they are: the console's forms post to console handlers, never to the API.
// Each form carries the session's CSRF token, the value of the cookie
// tollgate_csrf (random, made on the first page and again at each login
// and logout, HttpOnly, SameSite=Strict); a POST whose field does not match
// it, or whose Origin names another host, is refused 403 and nothing runs.
// Pages are sent with a Content-Security-Policy that allows scripts and
// styles from the console's own static files only, and may not be framed.
//
// # Requests per second
//
// The overview's chart of the last hour comes from the node's own
// Prometheus registry, sampled every Config.SampleEvery into a ring: the
// data plane's answers (tollgate_proxy_requests_total), of which those
// refused by a throttle or a quota (tollgate_proxy_throttled_total,
// tollgate_proxy_quota_exceeded_total) are "refused" and the rest
// "admitted".
package console
