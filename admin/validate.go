package admin

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/rules"
)

// Limits on what the API accepts. The limits on configuration live in
// package rules, which the state machine checks again.
const (
	maxRateLimit      = rules.MaxRateLimit
	maxNameLen        = rules.MaxNameLen
	maxMethodThrottle = rules.MaxMethodThrottle
	maxMethodSettings = rules.MaxMethodSettings
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

// invalid turns a failed rule into a 400 with the rule's message.
func invalid(err error) *apiError {
	if err == nil {
		return nil
	}
	return badRequest("%s", err.Error())
}

// The checks below are package rules' (see its doc), answered as 400s.

func checkThrottle(where string, rate float64, burst int64) *apiError {
	return invalid(rules.Throttle(where, rate, burst))
}

func checkName(what, name string) *apiError { return invalid(rules.Name(what, name)) }

func checkDescription(what, d string) *apiError { return invalid(rules.Description(what, d)) }

func checkTags(tags map[string]string) *apiError { return invalid(rules.Tags(tags)) }

func checkKeyValue(v string) *apiError { return invalid(rules.KeyValue(v)) }

func isStageName(s string) bool { return rules.IsStageName(s) }

func checkStageName(s string) *apiError { return invalid(rules.StageName(s)) }

func checkVariable(name, value string) *apiError { return invalid(rules.Variable(name, value)) }

func checkVariables(vars map[string]string) *apiError { return invalid(rules.Variables(vars)) }

func checkPlanMethodKey(stage, key string) *apiError { return invalid(rules.PlanMethodKey(stage, key)) }

func checkStageMethodKey(key string) *apiError { return invalid(rules.StageMethodKey(key)) }

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
func checkPathID(id string) bool { return rules.IsID(id) }
