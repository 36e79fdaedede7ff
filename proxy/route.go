package proxy

import "strings"

// cleanPath checks the escaped (percent-encoded, as sent) request path and
// returns it with runs of slashes merged into one. ok is false for a path
// the proxy refuses with 400 Bad Request:
//
//   - a path that is empty or does not start with "/";
//   - a segment that is, or decodes once or twice to, "." or "..", alone
//     or before ";params" ("%2e", "%2E.", "..;", "..;x", "..%3B",
//     "%252e%252e", "%25%32%65" ...);
//   - an encoded slash or backslash ("%2F", "%5C"), also encoded twice
//     ("%252F", "%255C"), a raw backslash;
//   - an encoded control character ("%00".."%1F", "%7F"), a raw byte that
//     may not appear in a request target (controls, space, DEL, non-ASCII);
//   - a malformed escape ("%", "%4", "%zz").
//
// It allocates only when it has slashes to merge.
func cleanPath(p string) (string, bool) {
	if p == "" || p[0] != '/' {
		return "", false
	}
	merge := false
	segStart := 1 // index of the first byte of the current segment
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if i > 0 && p[i-1] == '/' {
				merge = true
			}
			if i > 0 && dotSegment(p[segStart:i]) {
				return "", false
			}
			segStart = i + 1
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", false
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if refusedByte(d) {
				return "", false
			}
			if d == '%' && doubleEncodedRefused(p[i+3:]) {
				return "", false
			}
			i += 2
		case c <= ' ' || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	if dotSegment(p[segStart:]) {
		return "", false
	}
	if !merge {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String(), true
}

// refusedByte reports whether a decoded byte may not appear escaped in a
// path: a slash, a backslash or a control character.
func refusedByte(d byte) bool { return d == '/' || d == '\\' || d < 0x20 || d == 0x7f }

// doubleEncodedRefused reports whether the escaped text after an encoded
// "%" ("%25") makes, once decoded, an escape of a refused byte: "%252F"
// and "%25%32%66" decode twice to "/".
func doubleEncodedRefused(after string) bool {
	var b [2]byte
	if unescapeInto(b[:], after) < 2 || !isHex(b[0]) || !isHex(b[1]) {
		return false
	}
	return refusedByte(unhex(b[0])<<4 | unhex(b[1]))
}

// dotBuf bounds what dotSegment decodes: two dots and a ";" escaped once
// more ("%2e%2e%3b") are nine bytes; anything longer before a ";" is not a
// dot segment at the next level either.
const dotBuf = 9

// dotSegment reports whether the escaped segment s is, or decodes once or
// twice to, "." or "..", alone or followed by ";params" (Tomcat and Spring
// read "..;x" as ".."): "..", "%2e.", "..;x", "..%3b", "%252e%252e",
// "%25%32%65". It does not allocate.
func dotSegment(s string) bool {
	if s == "" || (s[0] != '.' && s[0] != '%') {
		return false // the common case: no spelling of a dot starts otherwise
	}
	var once, twice [dotBuf]byte
	n := unescapeInto(once[:], s)
	if dots(once[:n]) {
		return true
	}
	m := unescapeInto(twice[:], once[:n])
	return dots(twice[:m])
}

// unescapeInto decodes the well-formed escapes of s into dst, as far as
// dst holds; other bytes are copied. It returns the bytes written.
func unescapeInto[S ~string | ~[]byte](dst []byte, s S) int {
	n := 0
	for i := 0; i < len(s) && n < len(dst); n++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 3
		} else {
			i++
		}
		dst[n] = c
	}
	return n
}

// dots reports whether b, up to its first ";", is "." or "..".
func dots(b []byte) bool {
	for i, c := range b {
		if c == ';' {
			b = b[:i]
			break
		}
	}
	return len(b) == 1 && b[0] == '.' || len(b) == 2 && b[0] == '.' && b[1] == '.'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// cutSegment splits a clean path into its first segment and the rest, which
// starts with "/" or is empty: "/a/b/c" → "a", "/b/c"; "/a" → "a", "".
func cutSegment(p string) (seg, rest string) {
	if p == "" {
		return "", ""
	}
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// hostLabel returns the first label of host ("a" of "a.example.com:8443")
// and whether the host has more labels after it. It does not allocate.
func hostLabel(host string) (label string, dotted bool) {
	for i := 0; i < len(host); i++ {
		switch host[i] {
		case '.':
			return host[:i], true
		case ':', '[', ']':
			return host[:i], false
		}
	}
	return host, false
}

// route finds the stage a clean path addresses and the rest of the path to
// forward (escaped; "" or starting with "/").
//
// Host form first: when the first label of host is a known API id (matched
// without regard to case) and the host has more labels, the first path
// segment names the stage: Host a.example.com, path /s/pets. (An exact
// match of the label wins over one that differs in case.) When that API
// has no such stage, the path form is tried: any Host, path /a/s/pets.
// Segments are compared as sent (escaped), so API ids and stage names never
// match a percent-encoded spelling.
func (t *table) route(host, p string) (*stageEntry, string) {
	if label, dotted := hostLabel(host); dotted && label != "" {
		api := t.apis[label]
		if api == nil {
			api = t.hostAPIs[lower(label)]
		}
		if api != nil {
			seg, rest := cutSegment(p)
			if st := api.stages[seg]; st != nil {
				return st, rest
			}
		}
	}
	seg, rest := cutSegment(p)
	api := t.apis[seg]
	if api == nil || rest == "" {
		return nil, ""
	}
	seg, rest = cutSegment(rest)
	if st := api.stages[seg]; st != nil {
		return st, rest
	}
	return nil, ""
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// joinPath joins an upstream base path and the escaped rest of the request
// path with exactly one slash between them. An empty rest forwards to the
// base itself ("/" when the base is empty).
func joinPath(base, rest string) string {
	switch {
	case rest == "":
		if base == "" {
			return "/"
		}
		return base
	case base == "" || base == "/":
		return rest
	case base[len(base)-1] == '/':
		return base + rest[1:]
	default:
		return base + rest
	}
}
