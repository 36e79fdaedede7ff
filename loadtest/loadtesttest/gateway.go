// Package loadtesttest serves the tests of the load tool and its command:
// a stand-in gateway that answers by key.
package loadtesttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// FakeGateway answers by x-api-key as the gateway would: "ok" 200,
// "throttled" 429 TooManyRequestsException, "quota" 429 "Limit Exceeded"
// (no error type header), "down" 503, "teapot" 418, anything else 403.
// hits counts its requests.
func FakeGateway(t testing.TB, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		answer := func(status int, errType, msg string) {
			if errType != "" {
				w.Header().Set("x-amzn-ErrorType", errType)
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"message":%q}`, msg)
		}
		switch r.Header.Get("x-api-key") {
		case "ok":
			_, _ = w.Write([]byte(`{"pets":[]}`))
		case "throttled":
			answer(429, "TooManyRequestsException", "Too Many Requests")
		case "quota":
			answer(429, "", "Limit Exceeded") // no header: told apart by the body
		case "down":
			answer(503, "ServiceUnavailableException", "Service Unavailable")
		case "teapot":
			answer(418, "", "I'm a teapot")
		default:
			answer(403, "ForbiddenException", "Forbidden")
		}
	}))
	t.Cleanup(s.Close)
	return s
}
