package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCleanPath checks cleanPath alone, beyond what FuzzRoute checks with
// routing: merging slashes is the only change it makes; a clean path holds
// only bytes a request target may carry; no segment is, once or twice
// decoded and before any ";params", "." or ".."; no decoding (once or
// twice) turns an escape into a slash, a backslash or a control byte; and
// doubling every slash of a path cleans to the same result.
// Run it with go test -run '^$' -fuzz '^FuzzCleanPath$' ./proxy/
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/", "//", "/a/b", "/a//b/", "/a/../b", "/a/./b", "/..", "/.", "/...", "/a..b", "/..;/admin", "/..;x/a",
		"/%2e%2e/a", "/%2E./a", "/.%2e", "/%252e%252e/a", "/%25%32%65%25%32%65/a", "/..%3b/a", "/..%253b/a",
		"/a%2Fb", "/a%2fb", "/a%252Fb", "/a%25%32%66b", "/a%5Cb", "/a%255cb", "/a\\b", "/a%00b", "/a%1fb", "/a%7Fb",
		"/a%", "/a%4", "/a%zz", "/a%%", "/a b", "/a\tb", "/\x7f", "/\xc3\xa9", "/%c3%a9", "/a;b", "/a%3bb",
		"", "a", "*", "/%25", "/%2525", "/%25252e", "/a/%25/b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		clean, ok := cleanPath(p)
		if !ok {
			if clean != "" {
				t.Fatalf("refused %q but returned %q", p, clean)
			}
			// Doubling slashes cannot make a refused path acceptable.
			if _, ok := cleanPath(strings.ReplaceAll(p, "/", "//")); ok && p != "" && p[0] == '/' {
				t.Fatalf("refused %q but accepted it with doubled slashes", p)
			}
			return
		}
		if clean != mergeSlashes(p) {
			t.Fatalf("cleanPath(%q) = %q, want only slashes merged: %q", p, clean, mergeSlashes(p))
		}
		if clean[0] != '/' || strings.Contains(clean, "//") {
			t.Fatalf("cleanPath(%q) = %q", p, clean)
		}
		if again, ok := cleanPath(clean); !ok || again != clean {
			t.Fatalf("cleanPath not idempotent: %q → %q → %q, %v", p, clean, again, ok)
		}
		if again, ok := cleanPath(strings.ReplaceAll(p, "/", "//")); !ok || again != clean {
			t.Fatalf("doubled slashes of %q clean to %q, %v; want %q", p, again, ok, clean)
		}
		for i := 0; i < len(clean); i++ {
			if c := clean[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("clean path %q has byte %#x", clean, c)
			}
		}
		for seg := range strings.SplitSeq(clean[1:], "/") {
			once, err := url.PathUnescape(seg)
			if err != nil {
				t.Fatalf("segment %q of clean path %q does not decode: %v", seg, clean, err)
			}
			checkDecodedSegment(t, clean, seg, once)
			if twice, err := url.PathUnescape(once); err == nil {
				checkDecodedSegment(t, clean, seg, twice)
			}
		}
	})
}

// checkDecodedSegment fails when a decoding of a clean path's segment is a
// dot segment (before any ";") or holds a separator or control byte.
func checkDecodedSegment(t *testing.T, clean, seg, dec string) {
	t.Helper()
	name, _, _ := strings.Cut(dec, ";")
	if name == "." || name == ".." {
		t.Fatalf("clean path %q: segment %q decodes to the dot segment %q", clean, seg, dec)
	}
	for i := 0; i < len(dec); i++ {
		if c := dec[i]; c == '/' || c == '\\' || c < 0x20 || c == 0x7f {
			t.Fatalf("clean path %q: segment %q decodes to %q, with byte %#x", clean, seg, dec, c)
		}
	}
}

// mergeSlashes replaces every run of slashes with one.
func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}
