package rules

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	pb "github.com/tollgate/tollgate/proto"
)

// LoggingLevels are the logging levels a method setting may name.
var LoggingLevels = []string{"OFF", "ERROR", "INFO"}

// RestApi checks a REST API as created or updated: a name, its lengths,
// tags and the key source (HEADER).
func RestApi(a *pb.RestApi) error {
	if a.GetName() == "" {
		return Errorf("Invalid REST API name specified: a name is required")
	}
	if err := Name("REST API", a.GetName()); err != nil {
		return err
	}
	if err := Description("REST API", a.GetDescription()); err != nil {
		return err
	}
	if err := Name("REST API version", a.GetVersion()); err != nil {
		return err
	}
	if err := Tags(a.GetTags()); err != nil {
		return err
	}
	if s := a.GetApiKeySource(); s != "" && s != "HEADER" {
		return Errorf("Invalid apiKeySource %q: only HEADER is supported", Truncate(s))
	}
	if len(a.GetEndpointTypes()) > 1 {
		return Errorf("Invalid endpointConfiguration: at most one type is allowed")
	}
	for _, t := range a.GetEndpointTypes() {
		if !slices.Contains(EndpointTypes, t) {
			return Errorf("Invalid endpoint type %q: want EDGE, REGIONAL or PRIVATE", Truncate(t))
		}
	}
	return nil
}

// Plan checks a whole usage plan, as created or as patched.
func Plan(p *pb.UsagePlan) error {
	if p.GetName() == "" {
		return Errorf("Invalid usage plan name specified: a name is required")
	}
	if err := Name("Usage Plan", p.GetName()); err != nil {
		return err
	}
	if err := Description("Usage Plan", p.GetDescription()); err != nil {
		return err
	}
	if err := ProductCode(p.GetProductCode()); err != nil {
		return err
	}
	if t := p.GetThrottle(); t != nil {
		if err := Throttle("throttle", t.RateLimit, int64(t.BurstLimit)); err != nil {
			return err
		}
	}
	if q := p.GetQuota(); q != nil {
		if err := Quota(q); err != nil {
			return err
		}
	}
	if n := p.GetQuotaNotifications(); n != nil {
		if err := QuotaNotifications(n); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, s := range p.GetApiStages() {
		if s.ApiId == "" || s.Stage == "" || strings.Contains(s.ApiId, "/") || !IsStageName(s.Stage) {
			return Errorf("Invalid API Stage {api: %s, stage: %s} specified for usageplan %s", Truncate(s.ApiId), Truncate(s.Stage), p.GetId())
		}
		ref := s.ApiId + ":" + s.Stage
		if seen[ref] {
			return Errorf("API Stage %s is listed twice in usage plan %s", ref, p.GetId())
		}
		seen[ref] = true
		if len(s.Throttle) > MaxMethodThrottle {
			return Errorf("Too many method throttles for API Stage %s: at most %d are allowed", ref, MaxMethodThrottle)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Throttle)) {
			if err := PlanMethodKey(ref, k); err != nil {
				return err
			}
			t := s.Throttle[k]
			if err := Throttle("throttle for "+k+" in API Stage "+ref, t.GetRateLimit(), int64(t.GetBurstLimit())); err != nil {
				return err
			}
		}
	}
	return Tags(p.GetTags())
}

// Stage checks a whole stage, as created or as patched. acct is the
// account throttle that unset method throttles inherit.
func Stage(st *pb.Stage, acct *pb.ThrottleSettings) error {
	if err := StageName(st.GetStageName()); err != nil {
		return err
	}
	if err := Description("Stage", st.GetDescription()); err != nil {
		return err
	}
	if err := Variables(st.GetVariables()); err != nil {
		return err
	}
	if err := Tags(st.GetTags()); err != nil {
		return err
	}
	if err := stageExtras(st); err != nil {
		return err
	}
	if len(st.GetMethodSettings()) > MaxMethodSettings {
		return Errorf("Too many method settings: at most %d are allowed", MaxMethodSettings)
	}
	for _, k := range slices.Sorted(maps.Keys(st.GetMethodSettings())) {
		if err := StageMethodKey(k); err != nil {
			return err
		}
		m := st.MethodSettings[k]
		if m.GetLoggingLevel() != "" && !slices.Contains(LoggingLevels, m.GetLoggingLevel()) {
			return Errorf("Invalid logging level %q for method %s: want OFF, ERROR or INFO", Truncate(m.GetLoggingLevel()), k)
		}
		if m.ThrottlingRateLimit == nil && m.ThrottlingBurstLimit == nil {
			continue
		}
		rate, burst := acct.GetRateLimit(), acct.GetBurstLimit()
		if m.ThrottlingRateLimit != nil {
			rate = m.GetThrottlingRateLimit()
		}
		if m.ThrottlingBurstLimit != nil {
			burst = m.GetThrottlingBurstLimit()
		}
		if err := Throttle("throttling of method "+k+" (unset values inherit the account's)", rate, int64(burst)); err != nil {
			return err
		}
	}
	return nil
}

// ApiKeyFields checks what an API key holds besides its value: name,
// description, customer id, tags and stage keys ("restApiId/stageName").
func ApiKeyFields(k *pb.ApiKey) error {
	if err := Name("API Key", k.GetName()); err != nil {
		return err
	}
	if err := Description("API Key", k.GetDescription()); err != nil {
		return err
	}
	if err := CustomerID(k.GetCustomerId()); err != nil {
		return err
	}
	if err := Tags(k.GetTags()); err != nil {
		return err
	}
	for _, ref := range k.GetStageKeys() {
		api, stage, ok := strings.Cut(ref, "/")
		if !ok || !IsID(api) || !IsStageName(stage) {
			return Errorf("Invalid stage key specified: %s", Truncate(ref))
		}
	}
	return nil
}

// EndpointTypes are the endpoint types a REST API may name; they are
// stored and shown, and change nothing.
var EndpointTypes = []string{"EDGE", "REGIONAL", "PRIVATE"}

// CacheClusterSizes are the cache cluster sizes a stage may name (stored
// and shown; Tollgate has no response cache).
var CacheClusterSizes = []string{"0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"}

// CacheControlStrategies are the values of a method setting's
// unauthorizedCacheControlHeaderStrategy.
var CacheControlStrategies = []string{"FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER"}

// MaxAccessLogFormatLen bounds a stage's access log format.
const MaxAccessLogFormatLen = 4096

// MaxCacheTTL is the longest cache TTL a method setting may name, as the
// original's.
const MaxCacheTTL = 3600

// ARN checks an ARN-shaped setting (an access log destination, the
// account's CloudWatch role): at most 1024 characters, no whitespace or
// control characters. Empty passes: it unsets the setting.
func ARN(what, v string) error {
	if len(v) > MaxNameLen || !utf8.ValidString(v) || strings.ContainsAny(v, " \t") || HasControl(v) {
		return Errorf("Invalid %s: at most %d characters without spaces or control characters", what, MaxNameLen)
	}
	return nil
}

// Account checks the account settings.
func Account(a *pb.Account) error {
	if t := a.GetThrottle(); t != nil {
		if err := Throttle("account throttle", t.RateLimit, int64(t.BurstLimit)); err != nil {
			return err
		}
	}
	return ARN("cloudwatchRoleArn", a.GetCloudwatchRoleArn())
}

// stageExtras checks what a stage stores and shows without acting on it.
func stageExtras(st *pb.Stage) error {
	if s := st.GetCacheClusterSize(); s != "" && !slices.Contains(CacheClusterSizes, s) {
		return Errorf("Invalid cache cluster size %q: want one of %s", Truncate(s), strings.Join(CacheClusterSizes, ", "))
	}
	if l := st.GetAccessLogSettings(); l != nil {
		if len(l.GetFormat()) > MaxAccessLogFormatLen || !utf8.ValidString(l.GetFormat()) || HasControl(l.GetFormat()) {
			return Errorf("Invalid access log format: at most %d characters without control characters", MaxAccessLogFormatLen)
		}
		if err := ARN("access log destinationArn", l.GetDestinationArn()); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(st.GetMethodSettings())) {
		m := st.MethodSettings[k]
		if t := m.GetCacheTtlInSeconds(); t < 0 || t > MaxCacheTTL {
			return Errorf("Invalid cache TTL %d for method %s: want 0 to %d seconds", t, k, MaxCacheTTL)
		}
		if s := m.GetUnauthorizedCacheControlHeaderStrategy(); s != "" && !slices.Contains(CacheControlStrategies, s) {
			return Errorf("Invalid unauthorizedCacheControlHeaderStrategy %q for method %s: want one of %s", Truncate(s), k, strings.Join(CacheControlStrategies, ", "))
		}
	}
	return nil
}

// DeletedApiKey checks what is kept of a deleted key.
func DeletedApiKey(k *pb.DeletedApiKey) error {
	if !IsID(k.GetId()) {
		return Errorf("Invalid API Key identifier %q", Truncate(k.GetId()))
	}
	if err := Name("API Key", k.GetName()); err != nil {
		return err
	}
	return CustomerID(k.GetCustomerId())
}
