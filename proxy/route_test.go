package proxy

import (
	"net/url"
	"strings"
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
)

func TestCleanPath(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/a/b", "/a/b", true},
		{"/a/b/", "/a/b/", true},
		{"//a///b//", "/a/b/", true},
		{"/a%20b/%41", "/a%20b/%41", true},
		{"/a..b/...", "/a..b/...", true},
		{"/.well-known/x", "/.well-known/x", true},
		{"", "", false},
		{"*", "", false},
		{"a/b", "", false},
		{"/a/../b", "", false},
		{"/a/..", "", false},
		{"/..", "", false},
		{"/a/./b", "", false},
		{"/a/.", "", false},
		{"/a/%2e/b", "", false},
		{"/a/%2E%2e", "", false},
		{"/a/.%2e/", "", false},
		{"/a%2fb", "", false},
		{"/a%2Fb", "", false},
		{"/a%5cb", "", false},
		{"/a\\b", "", false},
		{"/a%00", "", false},
		{"/a%1F", "", false},
		{"/a%7f", "", false},
		{"/a%", "", false},
		{"/a%4", "", false},
		{"/a%zz", "", false},
		{"/a b", "", false},
		{"/a\x7f", "", false},
		{"/\xc3\xa9", "", false},
		// Path parameters and double encoding (Tomcat, Spring).
		{"/a/..;/b", "", false},
		{"/..;", "", false},
		{"/a/..;jsessionid=1/b", "", false},
		{"/a/.;/b", "", false},
		{"/a/..%3b/b", "", false},
		{"/a/..%3Bx/b", "", false},
		{"/a/%2e%2e;x", "", false},
		{"/a/%252e%252e/b", "", false},
		{"/a/%252E%252e;x/b", "", false},
		{"/a/%252e", "", false},
		{"/a/.%252e/b", "", false},
		{"/a/%25%32%65%25%32%65/b", "", false},
		{"/a/%252e%252e%253b/b", "", false},
		{"/a/%252e%252e%253bxxxxxxxxxxxxxxxx/b", "", false},
		{"/a/..%252f../b", "", false},
		{"/a/..%252F../b", "", false},
		{"/a/..%255c../b", "", false},
		{"/a/..%25%32%66../b", "", false},
		{"/a/%2500", "", false},
		{"/a/..b;/c", "/a/..b;/c", true},
		{"/a/x;y/c", "/a/x;y/c", true},
		{"/a/;..;/c", "/a/;..;/c", true},
		{"/a/...;/c", "/a/...;/c", true},
		{"/a/%252ex/c", "/a/%252ex/c", true},
		{"/a/%2e%2ex/c", "/a/%2e%2ex/c", true},
		{"/a/100%25/c", "/a/100%25/c", true},
		{"/a/100%25", "/a/100%25", true},
		{"/a/%2541", "/a/%2541", true},
		{"/a/%25252e%25252e/b", "/a/%25252e%25252e/b", true}, // three levels: not decoded
	}
	for _, c := range cases {
		got, ok := cleanPath(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestJoinPath(t *testing.T) {
	cases := []struct{ base, rest, want string }{
		{"", "", "/"},
		{"", "/x", "/x"},
		{"/", "", "/"},
		{"/", "/x", "/x"},
		{"/base", "", "/base"},
		{"/base", "/", "/base/"},
		{"/base", "/x/y", "/base/x/y"},
		{"/base/", "/x", "/base/x"},
		{"/base/", "", "/base/"},
	}
	for _, c := range cases {
		if got := joinPath(c.base, c.rest); got != c.want {
			t.Errorf("joinPath(%q, %q) = %q; want %q", c.base, c.rest, got, c.want)
		}
	}
}

func TestMethodKey(t *testing.T) {
	cases := []struct{ rest, method, want string }{
		{"", "GET", "//GET"},
		{"/", "GET", "//GET"},
		{"/pets", "GET", "/pets/GET"},
		{"/pets/", "POST", "/pets/POST"},
		{"/pets/1", "GET", "/pets/1/GET"},
	}
	for _, c := range cases {
		if got := string(methodKey(nil, c.rest, c.method)); got != c.want {
			t.Errorf("methodKey(%q, %q) = %q; want %q", c.rest, c.method, got, c.want)
		}
	}
}

func fuzzTable(t testing.TB) *table {
	p, err := New(Config{Source: &fakeSource{}, Ledger: &fakeLedger{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig("http://upstream.invalid")
	return p.build(cfg, nil)
}

// FuzzRoute checks the path normalisation and routing of any path and Host:
// a path accepted is a fixed point without "//" or dot segments, decodes
// without a slash or backslash that was not a separator, and routes to a
// stage whose rest is a suffix of it.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{
		"/api1/prod/pets", "//api1//prod", "/api1/prod/%2e%2e/x", "/a%2Fb", "/prod/x",
		"/api1/prod/a..b/.../%41", "/api1/./prod", "/%", "/api2/prod/", "/\\",
	} {
		f.Add(s, "api1.example.com")
		f.Add(s, "gw")
	}
	tbl := fuzzTable(f)
	f.Fuzz(func(t *testing.T, p, host string) {
		clean, ok := cleanPath(p)
		if !ok {
			if clean != "" {
				t.Fatalf("refused %q but returned %q", p, clean)
			}
			return
		}
		if clean[0] != '/' || strings.Contains(clean, "//") {
			t.Fatalf("cleanPath(%q) = %q", p, clean)
		}
		if again, ok := cleanPath(clean); !ok || again != clean {
			t.Fatalf("cleanPath not idempotent: %q → %q → %q, %v", p, clean, again, ok)
		}
		dec, err := url.PathUnescape(clean)
		if err != nil {
			t.Fatalf("clean path %q does not decode: %v", clean, err)
		}
		if strings.Count(dec, "/") != strings.Count(clean, "/") || strings.Contains(dec, "\\") {
			t.Fatalf("clean path %q decodes to %q: a separator was hidden", clean, dec)
		}
		for seg := range strings.SplitSeq(dec, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("clean path %q has a dot segment (%q)", clean, dec)
			}
		}
		st, rest := tbl.route(host, clean)
		if st == nil {
			if rest != "" {
				t.Fatalf("no route but rest %q", rest)
			}
			return
		}
		if !strings.HasSuffix(clean, rest) || (rest != "" && rest[0] != '/') {
			t.Fatalf("route(%q, %q) rest %q", host, clean, rest)
		}
		if !strings.Contains(clean, "/"+st.name) {
			t.Fatalf("route(%q, %q) → stage %s/%s not named in the path", host, clean, st.api, st.name)
		}
		if joined := joinPath("/base", rest); strings.Contains(joined, "//") {
			t.Fatalf("joinPath(/base, %q) = %q", rest, joined)
		}
	})
}

// TestRouteHostCollision: an API id that differs only in case from another
// does not break the host form.
func TestRouteHostCollision(t *testing.T) {
	p, err := New(Config{Source: &fakeSource{}, Ledger: &fakeLedger{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig("http://u.invalid")
	cfg.RestApis["API1"] = &tollgatepb.RestApi{Id: "API1"}
	cfg.Stages["API1/beta"] = &tollgatepb.Stage{RestApiId: "API1", StageName: "beta", Variables: map[string]string{"url": "http://u.invalid"}}
	tbl := p.build(cfg, nil)
	if st, _ := tbl.route("api1.example.com", "/prod/x"); st == nil || st.api != "api1" {
		t.Errorf("host form api1: %+v", st)
	}
	if st, _ := tbl.route("gw", "/API1/beta/x"); st == nil || st.api != "API1" {
		t.Errorf("path form API1: %+v", st)
	}
}
