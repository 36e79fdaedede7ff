package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// answer is a response the proxy makes itself. Its header values are
// shared by every response that uses it and never modified.
type answer struct {
	status  int
	errType []string
	body    []byte
	length  []string
}

func newAnswer(status int, errType, message string) answer {
	body := []byte(`{"message":` + strconv.Quote(message) + `}`)
	return answer{
		status:  status,
		errType: []string{errType},
		body:    body,
		length:  []string{strconv.Itoa(len(body))},
	}
}

// The proxy's own answers. The first three rows are the original's data
// plane responses; the others are Tollgate's (see doc.go).
var (
	ansForbidden     = newAnswer(http.StatusForbidden, "ForbiddenException", "Forbidden")
	ansMissingToken  = newAnswer(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	ansThrottled     = newAnswer(http.StatusTooManyRequests, "TooManyRequestsException", "Too Many Requests")
	ansLimitExceeded = newAnswer(http.StatusTooManyRequests, "LimitExceededException", "Limit Exceeded")
	ansBadRequest    = newAnswer(http.StatusBadRequest, "BadRequestException", "Bad Request")
	ansUpgrade       = newAnswer(http.StatusBadRequest, "BadRequestException", "Upgrade not allowed")
	ansTooLarge      = newAnswer(http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request Too Long")
	ansInternal      = newAnswer(http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
	ansBadGateway    = newAnswer(http.StatusBadGateway, "BadGatewayException", "Bad Gateway")
	ansUnavailable   = newAnswer(http.StatusServiceUnavailable, "ServiceUnavailableException", "Service Unavailable")
	// ansOverloaded is ansUnavailable for a node at its request cap: the
	// same answer, logged at debug level (an overload must not flood the log).
	ansOverloaded = ansUnavailable
	ansTimeout    = newAnswer(http.StatusGatewayTimeout, "GatewayTimeoutException", "Endpoint request timed out")

	jsonType = []string{"application/json"}
)

// Header names, canonical.
const (
	hdrRequestID     = "X-Amzn-Requestid"
	hdrErrorType     = "X-Amzn-Errortype"
	hdrRetryAfter    = "Retry-After"
	hdrPolicy        = "Ratelimit-Policy"
	hdrRateLimit     = "Ratelimit"
	hdrXLimit        = "X-Ratelimit-Limit"
	hdrXRemaining    = "X-Ratelimit-Remaining"
	hdrXReset        = "X-Ratelimit-Reset"
	hdrAPIKey        = "X-Api-Key"
	hdrRealIP        = "X-Real-Ip"
	hdrContentType   = "Content-Type"
	hdrContentLength = "Content-Length"
)

// reply writes answer a with the request id id.
func (ex *exchange) reply(w http.ResponseWriter, a *answer, id string) {
	h := w.Header()
	h[hdrContentType] = jsonType[:1:1]
	h[hdrContentLength] = a.length[:1:1]
	h[hdrRequestID] = []string{id}
	h[hdrErrorType] = a.errType[:1:1]
	if ex.retry > 0 || a == &ansThrottled || a == &ansLimitExceeded || a == &ansUnavailable || a == &ansOverloaded {
		h[hdrRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(int64(ex.retry)), 1), 10)}
	}
	ex.limitHeaders(h)
	ex.status = a.status
	w.WriteHeader(a.status)
	w.Write(a.body) //nolint:errcheck // the client went away: nothing to do
}

// newRequestID returns a random UUID (version 4) for x-amzn-RequestId.
func newRequestID() string { return uuid.NewString() }

// ceilSeconds rounds nanoseconds up to whole seconds; negative gives 0.
func ceilSeconds(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return ns/int64(time.Second) + min(ns%int64(time.Second), 1)
}

// limitHeaders sets the limit headers of a keyed request (see doc.go):
// RateLimit-Policy, RateLimit and X-RateLimit-Limit/Remaining/Reset.
// It sets nothing when the key's plan has neither a throttle nor a quota
// this request learnt about.
func (ex *exchange) limitHeaders(h http.Header) {
	if ex.bind == nil || (ex.keyBucket == nil && !ex.quotaShown) {
		return
	}
	var buf [128]byte
	b := buf[:0]
	var rem, reset int64
	if bk := ex.keyBucket; bk != nil {
		rem, reset = bk.Tokens(ex.mono), ceilSeconds(bk.ResetAfter(ex.mono))
		b = append(b, `"burst";r=`...)
		b = strconv.AppendInt(b, rem, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, reset, 10)
	}
	if ex.quotaShown {
		rem = max(ex.quota.Remaining, 0)
		reset = ceilSeconds(int64(ex.quota.ResetAt.Sub(ex.now)))
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `"quota";r=`...)
		b = strconv.AppendInt(b, rem, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, reset, 10)
	}
	i := len(b)
	b = strconv.AppendInt(b, rem, 10)
	j := len(b)
	b = strconv.AppendInt(b, reset, 10)
	k := len(b)
	if ex.quotaShown {
		// The effective limit: the plan's, plus any extension.
		limit := ex.quota.Limit
		if limit <= 0 {
			limit = ex.bind.plan.quotaLimit
		}
		b = strconv.AppendInt(b, max(limit, 0), 10)
	}
	s := string(b)
	v := make([]string, 5)
	v[0], v[1], v[2], v[3], v[4] = ex.policy, s[:i], ex.xLimit, s[i:j], s[j:k]
	if k < len(s) {
		v[2] = s[k:]
	}
	h[hdrPolicy] = v[0:1:1]
	h[hdrRateLimit] = v[1:2:2]
	h[hdrXLimit] = v[2:3:3]
	h[hdrXRemaining] = v[3:4:4]
	h[hdrXReset] = v[4:5:5]
}
