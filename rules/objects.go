package rules

import (
	"maps"
	"slices"
	"strings"

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
