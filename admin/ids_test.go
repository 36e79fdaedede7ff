package admin

import (
	"regexp"
	"strings"
	"testing"
)

func TestIDs(t *testing.T) {
	for _, c := range []struct {
		gen  func() string
		want string
	}{
		{newPlanID, `^[a-z0-9]{6}$`},
		{newKeyID, `^[a-z0-9]{10}$`},
		{newRestAPIID, `^[a-z0-9]{10}$`},
		{newDeploymentID, `^[a-z0-9]{6}$`},
		{newKeyValue, `^[A-Za-z0-9]{40}$`},
		{newRequestID, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`},
	} {
		re := regexp.MustCompile(c.want)
		seen := map[string]bool{}
		for range 200 {
			id := c.gen()
			if !re.MatchString(id) {
				t.Fatalf("%q does not match %s", id, c.want)
			}
			seen[id] = true
		}
		if len(seen) < 199 {
			t.Fatalf("%s: only %d distinct ids in 200", c.want, len(seen))
		}
	}
	// Every character of the alphabet turns up.
	all := ""
	for range 100 {
		all += newKeyValue()
	}
	for _, ch := range alnum {
		if !strings.ContainsRune(all, ch) {
			t.Fatalf("%q never drawn in 4000 characters", ch)
		}
	}
}

func TestFreshIDSkipsTakenIDs(t *testing.T) {
	ids := []string{"taken1", "taken2", "free"}
	n := 0
	got := freshID(func() string { n++; return ids[n-1] }, func(id string) bool { return strings.HasPrefix(id, "taken") })
	if got != "free" || n != 3 {
		t.Fatalf("freshID gave %q after %d draws", got, n)
	}
}
