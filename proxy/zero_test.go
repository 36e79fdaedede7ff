package proxy

import (
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
)

// TestZeroThrottleBlocksAtEveryLevel: a throttle of rate 0 and burst 0
// refuses every request it covers with 429, at each level: the account,
// a stage's "*/*" and per-method settings, a plan, and a plan's per-method
// throttle. What the throttle does not cover is served.
func TestZeroThrottleBlocksAtEveryLevel(t *testing.T) {
	for _, tc := range []struct {
		level   string
		set     func(c *tollgatepb.Config)
		blocked string // path on api1/prod refused for valOne
		served  string // path on api1/prod served for valOne ("" none)
	}{
		{"account", func(c *tollgatepb.Config) { c.Account = &tollgatepb.Account{Throttle: throttle(0, 0)} }, "/pets", ""},
		{"stage", func(c *tollgatepb.Config) {
			c.Stages["api1/prod"].MethodSettings = map[string]*tollgatepb.MethodSetting{"*/*": {ThrottlingRateLimit: f64(0), ThrottlingBurstLimit: i32(0)}}
		}, "/pets", ""},
		{"stage", func(c *tollgatepb.Config) {
			c.Stages["api1/prod"].MethodSettings = map[string]*tollgatepb.MethodSetting{"/pets/GET": {ThrottlingRateLimit: f64(0), ThrottlingBurstLimit: i32(0)}}
		}, "/pets", "/other"},
		{"plan", func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(0, 0) }, "/pets", ""},
		{"method", func(c *tollgatepb.Config) {
			c.UsagePlans["p1"].ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/GET": throttle(0, 0)}
		}, "/pets", "/other"},
	} {
		t.Run(tc.level+tc.served, func(t *testing.T) {
			h := newHarness(t, tc.set)
			for range 3 {
				w := h.do("GET", "/api1/prod"+tc.blocked, valOne)
				expectAnswer(t, w, 429, "TooManyRequestsException", "Too Many Requests")
			}
			if got := h.lastLevel(); got != tc.level {
				t.Errorf("refused at level %q; want %s", got, tc.level)
			}
			if tc.served != "" {
				expectCodes(t, h, "GET", "/api1/prod"+tc.served, valOne, 200, 200)
			}
		})
	}
}

// TestRateWithoutBurst: a throttle that sets a rate and no burst gets a
// burst of one second of the rate, rounded up (at least 1), at the plan,
// plan method and account levels.
func TestRateWithoutBurst(t *testing.T) {
	t.Run("plan", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) { c.UsagePlans["p1"].Throttle = throttle(2.5, 0) })
		expectCodes(t, h, "GET", "/api1/prod/x", valOne, 200, 200, 200, 429)
	})
	t.Run("method", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) {
			c.UsagePlans["p1"].ApiStages[0].Throttle = map[string]*tollgatepb.ThrottleSettings{"/pets/GET": throttle(0.001, 0)}
		})
		expectCodes(t, h, "GET", "/api1/prod/pets", valOne, 200, 429)
	})
	t.Run("account", func(t *testing.T) {
		h := newHarness(t, func(c *tollgatepb.Config) { c.Account = &tollgatepb.Account{Throttle: throttle(2, 0)} })
		if r, b := h.p.table.Load().account.bucket.Limit(); r != 2 || b != 2 {
			t.Errorf("account limit %v/%d; want 2/2", r, b)
		}
	})
}
