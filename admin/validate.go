package admin

import (
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// Limits on what the API accepts.
const (
	maxRateLimit      = 1e9
	maxNameLen        = 1024
	maxDescriptionLen = 125000
	maxTags           = 50
	maxTagKeyLen      = 128
	maxTagValueLen    = 256
	minKeyValueLen    = 20
	maxKeyValueLen    = 128
	maxStageNameLen   = 128
	maxVariables      = 100
	maxVarNameLen     = 64
	maxVarValueLen    = 512
	maxMethodThrottle = 200 // per-method throttles per stage in one plan
	maxMethodSettings = 200 // method settings per stage
	maxPatchOps       = 500
	maxUsageDays      = 90 // endDate - startDate, in days
	maxQueryLen       = 1024
)

// double is a JSON number that always shows it is a double: 2 is written
// as 2.0, as the original does.
type double float64

func (d double) MarshalJSON() ([]byte, error) {
	f := float64(d)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("0.0"), nil // never stored: validation refuses them
	}
	b := strconv.AppendFloat(nil, f, 'f', -1, 64)
	if math.Abs(f) >= 1e21 {
		b = strconv.AppendFloat(nil, f, 'e', -1, 64)
	}
	if !strings.ContainsAny(string(b), ".e") {
		b = append(b, '.', '0')
	}
	return b, nil
}

// checkThrottle validates a throttle: burst 0..MaxInt32, rate finite in
// 0..1e9, and both above 0 or both 0 (which blocks every request).
func checkThrottle(where string, rate float64, burst int64) *apiError {
	if burst < 0 || burst > math.MaxInt32 {
		return badRequest("Invalid %s: burstLimit must be from 0 to %d, not %d", where, math.MaxInt32, burst)
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0 || rate > maxRateLimit {
		return badRequest("Invalid %s: rateLimit must be from 0 to %g, not %v", where, maxRateLimit, rate)
	}
	if rate > 0 && burst == 0 {
		return badRequest("Invalid %s: rateLimit is %v but burstLimit is 0; a throttle needs a burstLimit above 0 when its rateLimit is above 0 (both 0 blocks every request)", where, rate)
	}
	if burst > 0 && rate == 0 {
		return badRequest("Invalid %s: burstLimit is %d but rateLimit is 0; a throttle needs a rateLimit above 0 when its burstLimit is above 0 (both 0 blocks every request)", where, burst)
	}
	return nil
}

func checkQuota(q *pb.QuotaSettings) *apiError {
	p, err := limiter.ParsePeriod(q.GetPeriod())
	if err != nil {
		return badRequest("Invalid quota: %v", err)
	}
	if err := limiter.ValidateQuota(p, int64(q.GetOffset()), q.GetLimit()); err != nil {
		return badRequest("Invalid quota: %v", err)
	}
	return nil
}

func checkName(what, name string) *apiError {
	if utf8.RuneCountInString(name) > maxNameLen {
		return badRequest("Invalid %s name, can be at most %d characters.", what, maxNameLen)
	}
	if !utf8.ValidString(name) || hasControl(name) {
		return badRequest("Invalid %s name: it must be valid UTF-8 without control characters.", what)
	}
	return nil
}

func checkDescription(what, d string) *apiError {
	if utf8.RuneCountInString(d) > maxDescriptionLen || !utf8.ValidString(d) {
		return badRequest("Invalid %s description specified.", what)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func checkTags(tags map[string]string) *apiError {
	if len(tags) > maxTags {
		return badRequest("Too many tags: at most %d are allowed", maxTags)
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > maxTagKeyLen || !utf8.ValidString(k) || hasControl(k) {
			return badRequest("Invalid tag key %q: it must have 1 to %d characters", k, maxTagKeyLen)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return badRequest("Invalid tag key %q: the prefix aws: is reserved", k)
		}
		if utf8.RuneCountInString(v) > maxTagValueLen || !utf8.ValidString(v) || hasControl(v) {
			return badRequest("Invalid value for tag %q: it must have at most %d characters", k, maxTagValueLen)
		}
	}
	return nil
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// checkKeyValue validates an API key value: 20 to 128 alphanumerics.
func checkKeyValue(v string) *apiError {
	switch {
	case len(v) < minKeyValueLen:
		return badRequest("API Key value should be at least %d characters", minKeyValueLen)
	case len(v) > maxKeyValueLen:
		return badRequest("API Key value exceeds maximum size of %d characters", maxKeyValueLen)
	case !isAlnum(v):
		return badRequest("API Key value must contain only alphanumeric characters")
	}
	return nil
}

func isStageName(s string) bool {
	if s == "" || len(s) > maxStageNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkStageName(s string) *apiError {
	if !isStageName(s) {
		return badRequest("Stage name only allows a-zA-Z0-9_- and at most %d characters", maxStageNameLen)
	}
	return nil
}

// checkVariable validates one stage variable. The variable "url" is the
// upstream base URL: an absolute http or https URL.
func checkVariable(name, value string) *apiError {
	if name == "" || len(name) > maxVarNameLen {
		return badRequest("Invalid stage variable name %q: it must have 1 to %d characters", name, maxVarNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return badRequest("Invalid stage variable name %q: only a-zA-Z0-9_ are allowed", name)
		}
	}
	if len(value) > maxVarValueLen {
		return badRequest("Invalid value for stage variable %q: at most %d characters", name, maxVarValueLen)
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~:/?#&=,%", c) >= 0) {
			return badRequest("Invalid value for stage variable %q: only alphanumerics and -._~:/?#&=,%% are allowed", name)
		}
	}
	if name == "url" {
		u, err := url.Parse(value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.Opaque != "" {
			return badRequest("Invalid value for stage variable \"url\": %q must be an absolute http or https URL such as https://backend.example.com/base", value)
		}
	}
	return nil
}

func checkVariables(vars map[string]string) *apiError {
	if len(vars) > maxVariables {
		return badRequest("Too many stage variables: at most %d are allowed", maxVariables)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if e := checkVariable(k, vars[k]); e != nil {
			return e
		}
	}
	return nil
}

// httpMethods are the methods a method key may name ("*" is any).
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "*": true,
}

// checkResourcePath validates the resource path of a method key: "/" and
// then segments without whitespace or control characters.
func checkResourcePath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > maxNameLen || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '?' || r == '#' {
			return false
		}
	}
	return true
}

// checkPlanMethodKey validates a per-method throttle key of a plan stage:
// "{resourcePath}/{HTTPMETHOD}", such as "/pets/GET" or "//GET".
func checkPlanMethodKey(stage, key string) *apiError {
	i := strings.LastIndexByte(key, '/')
	if i < 0 || !checkResourcePath(key[:i]) || !httpMethods[key[i+1:]] {
		return badRequest("Invalid method %q in the throttle of API Stage %s: a method is \"{resourcePath}/{HTTPMETHOD}\", such as \"/pets/GET\" or \"//GET\" for the root resource", key, stage)
	}
	return nil
}

// checkStageMethodKey validates a method settings key: "*/*" or
// "{resourcePath}/{HTTPMETHOD}".
func checkStageMethodKey(key string) *apiError {
	if key == "*/*" {
		return nil
	}
	i := strings.LastIndexByte(key, '/')
	if i < 0 || !checkResourcePath(key[:i]) || !httpMethods[key[i+1:]] {
		return badRequest("Invalid method setting key %q: it is \"*/*\" or \"{resourcePath}/{HTTPMETHOD}\", such as \"/pets/GET\"", key)
	}
	return nil
}

// parseDate reads a YYYY-MM-DD date as UTC midnight.
func parseDate(name, s string) (time.Time, *apiError) {
	if s == "" {
		return time.Time{}, badRequest("The %s parameter is required (YYYY-MM-DD)", name)
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return time.Time{}, badRequest("Invalid %s %q: want a date as YYYY-MM-DD", name, s)
	}
	return t, nil
}

// checkPathID refuses path identifiers that no object can have, so they
// never reach a lookup (composite keys join ids with "/").
func checkPathID(id string) bool {
	return id != "" && len(id) <= maxQueryLen && !strings.ContainsAny(id, "/\x00")
}
