package admin

import (
	"slices"
	"testing"
)

// TestMatchPattern: "*" takes one segment, "**" one or more (raw, joined
// with "/"), literals must be equal.
func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		pat, path string
		args      []string
		ok        bool
	}{
		{"/variables/*", "/variables/url", []string{"url"}, true},
		{"/variables/*", "/variables/a/b", nil, false},
		{"/apiStages/*/throttle/**/rateLimit", "/apiStages/a:prod/throttle//pets/GET/rateLimit", []string{"a:prod", "/pets/GET"}, true},
		{"/apiStages/*/throttle/**/rateLimit", "/apiStages/a:prod/throttle/rateLimit", nil, false},
		{"/**/throttling/rateLimit", "/~1pets/GET/throttling/rateLimit", []string{"~1pets/GET"}, true},
		{"/**/throttling/rateLimit", "/pets/{id}/GET/throttling/rateLimit", []string{"pets/{id}/GET"}, true},
		{"/**", "/*/*", []string{"*/*"}, true},
		{"/**", "", nil, false},
		{"/name", "name", nil, false},
	} {
		args, ok := matchPattern(c.pat, c.path)
		if ok != c.ok || !slices.Equal(args, c.args) {
			t.Errorf("matchPattern(%q, %q) = %q %v; want %q %v", c.pat, c.path, args, ok, c.args, c.ok)
		}
	}
}

// TestPatchTableLists: each op's "Must be one of" list is the table's rows
// that take it, in order; an op no row takes lists none, except in the
// tables listed for every op, which list all their rows.
func TestPatchTableLists(t *testing.T) {
	if got := keyPatch.paths("replace"); !slices.Equal(got, []string{"/description", "/enabled", "/name", "/customerId"}) {
		t.Errorf("UpdateApiKey replace paths %q", got)
	}
	if got := accountPatch.paths("add"); !slices.Equal(got, []string{"/features"}) {
		t.Errorf("UpdateAccount add paths %q", got)
	}
	for _, op := range []string{"move", "copy", "test", ""} {
		if got := planPatch.paths(op); len(got) != 0 {
			t.Errorf("UpdateUsagePlan %q paths %q", op, got)
		}
	}
	for _, op := range []string{"add", "replace", "remove", "move", "copy", "test"} {
		if got := methodPatch.paths(op); !slices.Equal(got, []string{"/authorizationType", "/apiKeyRequired", "/operationName", "/requestParameters/{name}"}) {
			t.Errorf("UpdateMethod %q paths %q", op, got)
		}
		if got := integrationPatch.paths(op); !slices.Equal(got, []string{"/type", "/httpMethod", "/uri", "/passthroughBehavior",
			"/timeoutInMillis", "/connectionType", "/cacheNamespace", "/requestParameters/{name}"}) {
			t.Errorf("UpdateIntegration %q paths %q", op, got)
		}
		if got := resourcePatch.paths(op); !slices.Equal(got, []string{"/pathPart", "/parentId"}) {
			t.Errorf("UpdateResource %q paths %q", op, got)
		}
	}
}

// TestMethodSettingKeys: a stored key shows as the original's, and each
// form a patch path may take reads back to the stored key.
func TestMethodSettingKeys(t *testing.T) {
	for stored, shown := range map[string]string{"/pets/GET": "~1pets/GET", "//GET": "~1/GET", "*/*": "*/*", "/a~b/POST": "~1a~0b/POST"} {
		if got := escapeMethodKey(stored); got != shown {
			t.Errorf("escapeMethodKey(%q) = %q; want %q", stored, got, shown)
		}
		if got, e := methodSettingKey(shown); e != nil || got != stored {
			t.Errorf("methodSettingKey(%q) = %q %v; want %q", shown, got, e, stored)
		}
	}
	if got, e := methodSettingKey("pets/{id}/GET"); e != nil || got != "/pets/{id}/GET" {
		t.Errorf("a raw path: %q %v", got, e)
	}
	for _, bad := range []string{"GET", "~2a/GET", "~1a/FETCH"} {
		if _, e := methodSettingKey(bad); e == nil {
			t.Errorf("methodSettingKey(%q) accepted", bad)
		}
	}
}
