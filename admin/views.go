package admin

import (
	"maps"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// The JSON shapes of responses, named and laid out as the original's.

type throttleView struct {
	BurstLimit int32  `json:"burstLimit"`
	RateLimit  double `json:"rateLimit"`
}

type quotaView struct {
	Limit  int64  `json:"limit"`
	Offset int32  `json:"offset"`
	Period string `json:"period"`
}

type apiStageView struct {
	APIID    string                  `json:"apiId"`
	Stage    string                  `json:"stage"`
	Throttle map[string]throttleView `json:"throttle,omitempty"`
}

type usagePlanView struct {
	ID          string             `json:"id"`
	Name        string             `json:"name,omitempty"`
	Description string             `json:"description,omitempty"`
	APIStages   []apiStageView     `json:"apiStages"`
	Throttle    *throttleView      `json:"throttle,omitempty"`
	Quota       *quotaView         `json:"quota,omitempty"`
	ProductCode string             `json:"productCode,omitempty"`
	Tags        *map[string]string `json:"tags,omitempty"`
	// QuotaNotifications is a Tollgate extension.
	QuotaNotifications *quotaNotificationsView `json:"quotaNotifications,omitempty"`
}

func throttleOf(t *pb.ThrottleSettings) throttleView {
	return throttleView{BurstLimit: t.GetBurstLimit(), RateLimit: double(t.GetRateLimit())}
}

// tagMode says how a response shows tags.
type tagMode int

const (
	tagsOmit   tagMode = iota // listings: no tags key
	tagsIfAny                 // creates: the tags given, if any
	tagsAlways                // gets and updates: always, {} when none
)

func tagsView(tags map[string]string, mode tagMode) *map[string]string {
	switch {
	case mode == tagsOmit:
		return nil
	case len(tags) == 0 && mode == tagsIfAny:
		return nil
	}
	m := maps.Clone(tags)
	if m == nil {
		m = map[string]string{}
	}
	return &m
}

func planView(p *pb.UsagePlan, tags tagMode) usagePlanView {
	v := usagePlanView{
		ID:                 p.GetId(),
		Name:               p.GetName(),
		Description:        p.GetDescription(),
		APIStages:          make([]apiStageView, 0, len(p.GetApiStages())),
		ProductCode:        p.GetProductCode(),
		Tags:               tagsView(p.GetTags(), tags),
		QuotaNotifications: notificationsView(p.GetQuotaNotifications()),
	}
	for _, s := range p.GetApiStages() {
		sv := apiStageView{APIID: s.GetApiId(), Stage: s.GetStage()}
		if len(s.GetThrottle()) > 0 {
			sv.Throttle = make(map[string]throttleView, len(s.GetThrottle()))
			for k, t := range s.GetThrottle() {
				sv.Throttle[k] = throttleOf(t)
			}
		}
		v.APIStages = append(v.APIStages, sv)
	}
	if t := p.GetThrottle(); t != nil {
		tv := throttleOf(t)
		v.Throttle = &tv
	}
	if q := p.GetQuota(); q != nil {
		v.Quota = &quotaView{Limit: q.GetLimit(), Offset: q.GetOffset(), Period: q.GetPeriod()}
	}
	return v
}

type apiKeyView struct {
	ID              string             `json:"id"`
	Value           string             `json:"value,omitempty"`
	Name            string             `json:"name,omitempty"`
	CustomerID      string             `json:"customerId,omitempty"`
	Description     string             `json:"description,omitempty"`
	Enabled         bool               `json:"enabled"`
	CreatedDate     int64              `json:"createdDate"`
	LastUpdatedDate int64              `json:"lastUpdatedDate"`
	StageKeys       []string           `json:"stageKeys"`
	Tags            *map[string]string `json:"tags,omitempty"`
}

// keyView shows a key, and value when it is not "" (includeValue).
func keyView(k *pb.ApiKey, value string) apiKeyView {
	v := apiKeyView{
		ID:              k.GetId(),
		Name:            k.GetName(),
		CustomerID:      k.GetCustomerId(),
		Description:     k.GetDescription(),
		Enabled:         k.GetEnabled(),
		CreatedDate:     k.GetCreatedDate(),
		LastUpdatedDate: k.GetLastUpdatedDate(),
		StageKeys:       append([]string{}, k.GetStageKeys()...),
		Tags:            tagsView(k.GetTags(), tagsIfAny),
		Value:           value,
	}
	return v
}

type usagePlanKeyView struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Value string `json:"value"`
	Name  string `json:"name,omitempty"`
}

// planKeyView shows a key of a plan with its value.
func planKeyView(k *pb.ApiKey, value string) usagePlanKeyView {
	return usagePlanKeyView{ID: k.GetId(), Type: "API_KEY", Value: value, Name: k.GetName()}
}

type endpointConfigurationView struct {
	Types []string `json:"types"`
}

type restAPIView struct {
	ID                    string                    `json:"id"`
	Name                  string                    `json:"name,omitempty"`
	Description           string                    `json:"description,omitempty"`
	CreatedDate           int64                     `json:"createdDate"`
	Version               string                    `json:"version,omitempty"`
	APIKeySource          string                    `json:"apiKeySource"`
	RootResourceID        string                    `json:"rootResourceId"`
	EndpointConfiguration endpointConfigurationView `json:"endpointConfiguration"`
	Tags                  *map[string]string        `json:"tags,omitempty"`

	DisableExecuteAPIEndpoint bool `json:"disableExecuteApiEndpoint"`
}

func restAPIViewOf(a *pb.RestApi) restAPIView {
	src := a.GetApiKeySource()
	if src == "" {
		src = "HEADER"
	}
	return restAPIView{
		ID:                    a.GetId(),
		Name:                  a.GetName(),
		Description:           a.GetDescription(),
		CreatedDate:           a.GetCreatedDate(),
		Version:               a.GetVersion(),
		APIKeySource:          src,
		RootResourceID:        rules.RootResourceID(a.GetId()),
		EndpointConfiguration: endpointConfigurationView{Types: []string{endpointType(a)}},
		Tags:                  tagsView(a.GetTags(), tagsIfAny),

		DisableExecuteAPIEndpoint: a.GetDisableExecuteApiEndpoint(),
	}
}

type deploymentView struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	CreatedDate int64  `json:"createdDate"`
}

func deploymentViewOf(d *pb.Deployment) deploymentView {
	return deploymentView{ID: d.GetId(), Description: d.GetDescription(), CreatedDate: d.GetCreatedDate()}
}

type methodSettingView struct {
	MetricsEnabled                         bool   `json:"metricsEnabled"`
	LoggingLevel                           string `json:"loggingLevel"`
	DataTraceEnabled                       bool   `json:"dataTraceEnabled"`
	ThrottlingBurstLimit                   int32  `json:"throttlingBurstLimit"`
	ThrottlingRateLimit                    double `json:"throttlingRateLimit"`
	CachingEnabled                         bool   `json:"cachingEnabled"`
	CacheTTLInSeconds                      int32  `json:"cacheTtlInSeconds"`
	CacheDataEncrypted                     bool   `json:"cacheDataEncrypted"`
	RequireAuthorizationForCacheControl    bool   `json:"requireAuthorizationForCacheControl"`
	UnauthorizedCacheControlHeaderStrategy string `json:"unauthorizedCacheControlHeaderStrategy"`
}

type accessLogSettingsView struct {
	Format         string `json:"format,omitempty"`
	DestinationArn string `json:"destinationArn,omitempty"`
}

type stageView struct {
	StageName           string                       `json:"stageName"`
	DeploymentID        string                       `json:"deploymentId,omitempty"`
	Description         string                       `json:"description,omitempty"`
	Variables           map[string]string            `json:"variables,omitempty"`
	MethodSettings      map[string]methodSettingView `json:"methodSettings"`
	CreatedDate         int64                        `json:"createdDate"`
	LastUpdatedDate     int64                        `json:"lastUpdatedDate"`
	Tags                *map[string]string           `json:"tags,omitempty"`
	APIKeyRequired      bool                         `json:"apiKeyRequired"`
	CacheClusterEnabled bool                         `json:"cacheClusterEnabled"`
	CacheClusterSize    string                       `json:"cacheClusterSize,omitempty"`
	CacheClusterStatus  string                       `json:"cacheClusterStatus"`
	TracingEnabled      bool                         `json:"tracingEnabled"`
	AccessLogSettings   *accessLogSettingsView       `json:"accessLogSettings,omitempty"`
}

// stageViewOf shows a stage. A method setting's throttle that is not set
// inherits the account's, and is shown as that value.
func stageViewOf(s *pb.Stage, acct *pb.ThrottleSettings) stageView {
	v := stageView{
		StageName:       s.GetStageName(),
		DeploymentID:    s.GetDeploymentId(),
		Description:     s.GetDescription(),
		Variables:       maps.Clone(s.GetVariables()),
		MethodSettings:  map[string]methodSettingView{},
		CreatedDate:     s.GetCreatedDate(),
		LastUpdatedDate: s.GetLastUpdatedDate(),
		Tags:            tagsView(s.GetTags(), tagsIfAny),
		APIKeyRequired:  !s.GetApiKeyNotRequired(),
		// No cache cluster ever runs: the original's status of one that is
		// off.
		CacheClusterEnabled: s.GetCacheClusterEnabled(),
		CacheClusterSize:    s.GetCacheClusterSize(),
		CacheClusterStatus:  "NOT_AVAILABLE",
		TracingEnabled:      s.GetTracingEnabled(),
	}
	if l := s.GetAccessLogSettings(); l != nil {
		v.AccessLogSettings = &accessLogSettingsView{Format: l.GetFormat(), DestinationArn: l.GetDestinationArn()}
	}
	for k, m := range s.GetMethodSettings() {
		mv := methodSettingView{
			MetricsEnabled:                         m.GetMetricsEnabled(),
			LoggingLevel:                           m.GetLoggingLevel(),
			DataTraceEnabled:                       m.GetDataTraceEnabled(),
			ThrottlingBurstLimit:                   acct.GetBurstLimit(),
			ThrottlingRateLimit:                    double(acct.GetRateLimit()),
			CachingEnabled:                         m.GetCachingEnabled(),
			CacheTTLInSeconds:                      m.GetCacheTtlInSeconds(),
			CacheDataEncrypted:                     m.GetCacheDataEncrypted(),
			RequireAuthorizationForCacheControl:    m.GetRequireAuthorizationForCacheControl(),
			UnauthorizedCacheControlHeaderStrategy: m.GetUnauthorizedCacheControlHeaderStrategy(),
		}
		if mv.UnauthorizedCacheControlHeaderStrategy == "" {
			mv.UnauthorizedCacheControlHeaderStrategy = "SUCCEED_WITH_RESPONSE_HEADER"
		}
		if mv.LoggingLevel == "" {
			mv.LoggingLevel = "OFF"
		}
		if m.ThrottlingBurstLimit != nil {
			mv.ThrottlingBurstLimit = m.GetThrottlingBurstLimit()
		}
		if m.ThrottlingRateLimit != nil {
			mv.ThrottlingRateLimit = double(m.GetThrottlingRateLimit())
		}
		v.MethodSettings[escapeMethodKey(k)] = mv
	}
	return v
}

// accountThrottle returns the account's throttle, or the defaults.
func accountThrottle(c *pb.Config) *pb.ThrottleSettings {
	return rules.AccountThrottle(c)
}

type listView[T any] struct {
	Item     []T    `json:"item"`
	Position string `json:"position,omitempty"`
}
