package admin

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
)

// The guards below keep a web browser from driving the admin API on an
// operator's behalf. A page on another site can send a browser only
// "simple" requests without asking the server first (CORS preflight, which
// this API never grants): GET, HEAD and POST with a Content-Type of
// text/plain, application/x-www-form-urlencoded or multipart/form-data, or
// none. And a page whose name was rebound to this host's address (DNS
// rebinding) reaches the API as its own origin, but its requests carry the
// page's name in Host.

// hostRule is one entry of Config.AllowedHosts.
type hostRule struct {
	host string // lower case, without brackets or a trailing dot; "*": any
	port string // "": any port
}

var hostNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// CheckAllowedHost reports whether s can be an entry of
// Config.AllowedHosts: "*", a DNS name or an IP address, each optionally
// with ":port" (IPv6 addresses in brackets then).
func CheckAllowedHost(s string) error {
	_, err := parseHostRule(s)
	return err
}

func parseHostRule(s string) (hostRule, error) {
	if s == "*" {
		return hostRule{host: "*"}, nil
	}
	host, port, ok := splitHostHeader(s)
	if !ok || host == "" {
		return hostRule{}, fmt.Errorf("admin host %q: want a name or an address, optionally with :port", s)
	}
	if port != "" {
		if p, err := netip.ParseAddrPort("127.0.0.1:" + port); err != nil || p.Port() == 0 {
			return hostRule{}, fmt.Errorf("admin host %q: the port must be a number from 1 to 65535", s)
		}
	}
	if _, err := netip.ParseAddr(host); err != nil && !hostNamePattern.MatchString(host) {
		return hostRule{}, fmt.Errorf("admin host %q: %q is neither an IP address nor a DNS name", s, host)
	}
	return hostRule{host: host, port: port}, nil
}

// splitHostHeader splits a Host header value (or an allowlist entry) into
// the host, lower case without brackets or a trailing dot, and the port
// ("" when absent). ok is false when the value cannot be a host.
func splitHostHeader(h string) (host, port string, ok bool) {
	switch {
	case strings.HasPrefix(h, "["):
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		host, rest := h[1:end], h[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
				return "", "", false
			}
			port = rest[1:]
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", "", false
		}
		return strings.ToLower(host), port, true
	case strings.Count(h, ":") > 1:
		return "", "", false // an IPv6 address must be in brackets
	case strings.Contains(h, ":"):
		host, port, _ = strings.Cut(h, ":")
		if port == "" {
			return "", "", false
		}
	default:
		host = h
	}
	if strings.ContainsAny(port, "+- ") {
		return "", "", false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host, port, true
}

// loopbackHosts are the names of this machine that no other site can take.
var loopbackHosts = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}

// hostAllowed reports whether the request's Host names this API: the
// address of the listener the request came in on, localhost, 127.0.0.1 or
// [::1] on the listener's port, or an entry of Config.AllowedHosts.
func (s *Server) hostAllowed(r *http.Request) bool {
	host, port, ok := splitHostHeader(r.Host)
	if !ok || host == "" {
		return false
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	for _, a := range s.allowedHosts {
		if a.host == "*" || (a.host == host && (a.port == "" || a.port == port)) {
			return true
		}
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		// Not served by net/http (the handler called directly): the
		// listener is unknown, so only the loopback names pass.
		return loopbackHosts[host]
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return loopbackHosts[host]
	}
	if fmt.Sprint(ap.Port()) != port {
		return false
	}
	if loopbackHosts[host] {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap() == ap.Addr().Unmap() && !a.IsUnspecified()
}

// hostRefused is the answer to a request whose Host is not this API's.
func hostRefused(r *http.Request) *apiError {
	return &apiError{status: http.StatusForbidden, code: "ForbiddenException",
		msg: fmt.Sprintf("Host %q is not an address of this admin API: use its listen address, localhost or 127.0.0.1, or allow the name with --admin-host", truncate(r.Host))}
}

// jsonTypes are the media types a JSON body may be sent as. None is one a
// browser may send across sites without asking first.
var jsonTypes = map[string]bool{
	"application/json":           true,
	"application/x-amz-json-1.0": true,
	"application/x-amz-json-1.1": true,
}

// csvTypes are the media types an API key file may be imported as:
// text/csv, and application/octet-stream as the AWS SDK for Go v2 sends it.
var csvTypes = map[string]bool{
	"text/csv":                 true,
	"application/octet-stream": true,
}

// checkContentType refuses a request that changes something (POST, PUT,
// PATCH) unless it says, in a way a cross-site page cannot, what it sends:
// a JSON media type on JSON routes, text/csv on the key import. The AWS CLI
// sends the import with no Content-Type but signed (X-Amz-Date), which a
// page cannot add without a preflight either, so that passes too.
func checkContentType(r *http.Request, pattern string) *apiError {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" {
		err = errors.New("none")
	}
	if q := r.URL.Query(); pattern == "POST /apikeys" && q.Has("mode") && q.Get("mode") == "import" {
		if err == nil && csvTypes[mt] {
			return nil
		}
		if ct == "" && r.Header.Get("X-Amz-Date") != "" {
			return nil
		}
		return unsupportedType(ct, "an API key import must be sent as Content-Type: text/csv")
	}
	if openAPIBody(r, pattern) {
		if err == nil && openAPITypes[mt] || ct == "" && r.Header.Get("X-Amz-Date") != "" {
			return nil
		}
		return unsupportedType(ct, "send an OpenAPI document as application/json or application/yaml")
	}
	if err == nil && jsonTypes[mt] {
		return nil
	}
	return unsupportedType(ct, "send the JSON body with Content-Type: application/json")
}

func unsupportedType(ct, want string) *apiError {
	got := "no Content-Type"
	if ct != "" {
		got = fmt.Sprintf("Content-Type %q", truncate(ct))
	}
	return &apiError{status: http.StatusUnsupportedMediaType, code: "BadRequestException",
		msg: fmt.Sprintf("Unsupported media type: the request has %s; %s", got, want)}
}
