package rules

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// Limits on what the configuration may hold.
const (
	MaxRateLimit      = 1e9
	MaxNameLen        = 1024
	MaxDescriptionLen = 125000
	MaxTags           = 50
	MaxTagKeyLen      = 128
	MaxTagValueLen    = 256
	MinKeyValueLen    = 20
	MaxKeyValueLen    = 128
	MaxStageNameLen   = 128
	MaxVariables      = 100
	MaxVarNameLen     = 64
	MaxVarValueLen    = 512
	MaxMethodThrottle = 200 // per-method throttles per stage in one plan
	MaxMethodSettings = 200 // method settings per stage
	MaxIDLen          = 1024
	MaxPlanIDLen      = 64 // a usage plan id named in an import
	// MaxImportKeys bounds one import: the admin API reads at most 1 MiB of
	// CSV, and a row holds a key value of at least 20 characters and a
	// line end, so an import through it never holds more.
	MaxImportKeys = 50000
)

// The account throttle in force while none was set, as the original's
// defaults per account and region.
const (
	DefaultAccountRate  = 10000
	DefaultAccountBurst = 5000
)

// ErrInvalid is matched by every error this package returns.
var ErrInvalid = errors.New("invalid configuration")

type invalid struct{ msg string }

func (e *invalid) Error() string        { return e.msg }
func (e *invalid) Is(target error) bool { return target == ErrInvalid }

// Errorf returns an error matching ErrInvalid with a formatted message.
func Errorf(format string, args ...any) error {
	return &invalid{msg: fmt.Sprintf(format, args...)}
}

// Truncate shortens a value quoted back in a message to 64 bytes.
func Truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// AccountThrottle returns the account throttle of a configuration, or the
// default one.
func AccountThrottle(c *pb.Config) *pb.ThrottleSettings {
	if t := c.GetAccount().GetThrottle(); t != nil {
		return t
	}
	return &pb.ThrottleSettings{RateLimit: DefaultAccountRate, BurstLimit: DefaultAccountBurst}
}

// Throttle checks a throttle: burst 0..MaxInt32, rate finite in 0..1e9,
// and a rate above 0 when the burst is. Both 0 blocks every request; a
// rate with burst 0 (a rate given alone) gets limiter.DefaultBurst.
func Throttle(where string, rate float64, burst int64) error {
	if burst < 0 || burst > math.MaxInt32 {
		return Errorf("Invalid %s: burstLimit must be from 0 to %d, not %d", where, math.MaxInt32, burst)
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0 || rate > MaxRateLimit {
		return Errorf("Invalid %s: rateLimit must be from 0 to %g, not %v", where, float64(MaxRateLimit), rate)
	}
	if burst > 0 && rate == 0 {
		return Errorf("Invalid %s: burstLimit is %d but rateLimit is 0; a throttle needs a rateLimit above 0 when its burstLimit is above 0 (both 0 blocks every request)", where, burst)
	}
	return nil
}

// Quota checks a plan's quota settings (limiter.ParseQuota).
func Quota(q *pb.QuotaSettings) error {
	if _, err := limiter.ParseQuota(q.GetPeriod(), int64(q.GetOffset()), q.GetLimit()); err != nil {
		return Errorf("Invalid quota: %v", err)
	}
	return nil
}

// Remaining checks a key's remaining quota as UpdateUsage sets it.
func Remaining(n int64) error {
	if n < 0 || n > limiter.MaxQuotaLimit {
		return Errorf("Invalid value %q for /remaining: want an integer from %d to %d", fmt.Sprint(n), 0, limiter.MaxQuotaLimit)
	}
	return nil
}

// Name checks an object's name (what: "API Key", "Usage Plan"...). An
// empty name passes: callers that need one say so.
func Name(what, name string) error {
	if utf8.RuneCountInString(name) > MaxNameLen {
		return Errorf("Invalid %s name, can be at most %d characters.", what, MaxNameLen)
	}
	if !utf8.ValidString(name) || HasControl(name) {
		return Errorf("Invalid %s name: it must be valid UTF-8 without control characters.", what)
	}
	return nil
}

// Description checks an object's description.
func Description(what, d string) error {
	if utf8.RuneCountInString(d) > MaxDescriptionLen || !utf8.ValidString(d) {
		return Errorf("Invalid %s description specified.", what)
	}
	return nil
}

// HasControl tells whether s holds an ASCII control character.
func HasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// Tags checks an object's tags.
func Tags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return Errorf("Too many tags: at most %d are allowed", MaxTags)
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		v := tags[k]
		if k == "" || utf8.RuneCountInString(k) > MaxTagKeyLen || !utf8.ValidString(k) || HasControl(k) {
			return Errorf("Invalid tag key %q: it must have 1 to %d characters", k, MaxTagKeyLen)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return Errorf("Invalid tag key %q: the prefix aws: is reserved", k)
		}
		if utf8.RuneCountInString(v) > MaxTagValueLen || !utf8.ValidString(v) || HasControl(v) {
			return Errorf("Invalid value for tag %q: it must have at most %d characters", k, MaxTagValueLen)
		}
	}
	return nil
}

// IsAlnum tells whether s holds only ASCII letters and digits.
func IsAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// KeyValue checks an API key value: 20 to 128 alphanumerics.
func KeyValue(v string) error {
	switch {
	case len(v) < MinKeyValueLen:
		return Errorf("API Key value should be at least %d characters", MinKeyValueLen)
	case len(v) > MaxKeyValueLen:
		return Errorf("API Key value exceeds maximum size of %d characters", MaxKeyValueLen)
	case !IsAlnum(v):
		return Errorf("API Key value must contain only alphanumeric characters")
	}
	return nil
}

// CustomerID checks an API key's customer id.
func CustomerID(c string) error {
	if len(c) > MaxNameLen || HasControl(c) {
		return Errorf("Invalid customerId: at most %d characters without control characters", MaxNameLen)
	}
	return nil
}

// ProductCode checks a usage plan's product code.
func ProductCode(c string) error {
	if len(c) > MaxNameLen || HasControl(c) {
		return Errorf("Invalid product code: at most %d characters without control characters", MaxNameLen)
	}
	return nil
}

// IsID tells whether id can name an object: not empty, at most 1024
// bytes, without "/" (composite keys join ids with it) or NUL.
func IsID(id string) bool {
	return id != "" && len(id) <= MaxIDLen && !strings.ContainsAny(id, "/\x00")
}

// IsPlanID tells whether id is a usage plan id an import may name:
// at most 64 of a-zA-Z0-9_-.
func IsPlanID(id string) bool {
	return IsID(id) && len(id) <= MaxPlanIDLen && IsAlnum(strings.ReplaceAll(strings.ReplaceAll(id, "-", ""), "_", ""))
}

// IsStageName tells whether s is a stage name: 1 to 128 of a-zA-Z0-9_-.
func IsStageName(s string) bool {
	if s == "" || len(s) > MaxStageNameLen {
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

// StageName checks a stage name.
func StageName(s string) error {
	if !IsStageName(s) {
		return Errorf("Stage name only allows a-zA-Z0-9_- and at most %d characters", MaxStageNameLen)
	}
	return nil
}

// Variable checks one stage variable. The variable "url" is the upstream
// base URL: an absolute http or https URL.
func Variable(name, value string) error {
	if name == "" || len(name) > MaxVarNameLen {
		return Errorf("Invalid stage variable name %q: it must have 1 to %d characters", name, MaxVarNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return Errorf("Invalid stage variable name %q: only a-zA-Z0-9_ are allowed", name)
		}
	}
	if len(value) > MaxVarValueLen {
		return Errorf("Invalid value for stage variable %q: at most %d characters", name, MaxVarValueLen)
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~:/?#&=,%", c) >= 0) {
			return Errorf("Invalid value for stage variable %q: only alphanumerics and -._~:/?#&=,%% are allowed", name)
		}
	}
	if name == "url" {
		u, err := url.Parse(value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.Opaque != "" {
			return Errorf("Invalid value for stage variable \"url\": %q must be an absolute http or https URL such as https://backend.example.com/base", value)
		}
	}
	return nil
}

// Variables checks a stage's variables, in name order.
func Variables(vars map[string]string) error {
	if len(vars) > MaxVariables {
		return Errorf("Too many stage variables: at most %d are allowed", MaxVariables)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if err := Variable(k, vars[k]); err != nil {
			return err
		}
	}
	return nil
}

// httpMethods are the methods a method key may name ("*" is any).
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"}

// ResourcePath tells whether p is the resource path of a method key: "/"
// and then segments without whitespace or control characters.
func ResourcePath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > MaxNameLen || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '?' || r == '#' {
			return false
		}
	}
	return true
}

func isMethodKey(key string) bool {
	i := strings.LastIndexByte(key, '/')
	return i >= 0 && ResourcePath(key[:i]) && slices.Contains(httpMethods, key[i+1:])
}

// PlanMethodKey checks a per-method throttle key of a plan stage:
// "{resourcePath}/{HTTPMETHOD}", such as "/pets/GET" or "//GET".
func PlanMethodKey(stage, key string) error {
	if !isMethodKey(key) {
		return Errorf("Invalid method %q in the throttle of API Stage %s: a method is \"{resourcePath}/{HTTPMETHOD}\", such as \"/pets/GET\" or \"//GET\" for the root resource", key, stage)
	}
	return nil
}

// StageMethodKey checks a method settings key: "*/*" or
// "{resourcePath}/{HTTPMETHOD}".
func StageMethodKey(key string) error {
	if key != "*/*" && !isMethodKey(key) {
		return Errorf("Invalid method setting key %q: it is \"*/*\" or \"{resourcePath}/{HTTPMETHOD}\", such as \"/pets/GET\"", key)
	}
	return nil
}
