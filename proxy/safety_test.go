package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	tollgatepb "github.com/tollgate/tollgate/proto"
)

func TestUpgrades(t *testing.T) {
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api2/prod"].Variables[WebSocketVariable] = "true"
	})
	// h2c: the header is dropped and the request served as HTTP/1.1.
	w := h.do("GET", "/api1/prod/x", valOne, "Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABk")
	s := seenBy(t, w)
	if s.Header.Get("Upgrade") != "" || s.Header.Get("Http2-Settings") != "" {
		t.Fatalf("the upstream saw %v", s.Header)
	}
	// Also without Connection naming HTTP2-Settings, and in any case.
	s = seenBy(t, h.do("GET", "/api1/prod/x", valOne, "Connection", "Upgrade", "Upgrade", "H2C", "HTTP2-Settings", "AAMAAABk"))
	if s.Header.Get("Upgrade") != "" || s.Header.Get("Http2-Settings") != "" {
		t.Fatalf("the upstream saw %v", s.Header)
	}
	for _, c := range []struct {
		name, target string
		hdr          []string
	}{
		{"websocket, stage without the variable", "/api1/prod/x", []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
		{"websocket without Connection", "/api1/prod/x", []string{"Upgrade", "websocket"}},
		{"other protocol", "/api2/prod/x", []string{"Connection", "Upgrade", "Upgrade", "TLS/1.2"}},
		{"two upgrades", "/api2/prod/x", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Upgrade", "h2c"}},
		{"a list", "/api2/prod/x", []string{"Connection", "Upgrade", "Upgrade", "h2c, websocket"}},
	} {
		w := h.do("GET", c.target, valOne, c.hdr...)
		expectAnswer(t, w, 400, "BadRequestException", "Upgrade not allowed")
	}
	// Refusals before the key is known stay 403: no stage can be probed.
	expectAnswer(t, h.do("GET", "/api1/prod/x", "", "Connection", "Upgrade", "Upgrade", "websocket"), 403, "ForbiddenException", "Forbidden")
	// A stage with the variable lets the upgrade through (the echo upstream
	// does not switch, so the answer is its 200).
	s = seenBy(t, h.do("GET", "/api2/prod/x", valOne, "Connection", "Upgrade", "Upgrade", "websocket"))
	if s.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("the upstream saw %v", s.Header)
	}
}

func TestMaxConcurrent(t *testing.T) {
	entered, release := make(chan struct{}, 4), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer slow.Close()
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api1/prod"].Variables["url"] = slow.URL
	}, func(c *Config) { c.MaxConcurrent = 2 })
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- h.do("GET", "/api1/prod/x", valOne).Code
		}()
	}
	<-entered
	<-entered
	w := h.do("GET", "/api1/prod/x", valOne)
	expectAnswer(t, w, 503, "ServiceUnavailableException", "Service Unavailable")
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	for range 2 {
		if c := <-codes; c != 200 {
			t.Fatalf("a request within the cap: %d", c)
		}
	}
	// The slots are free again.
	if w := h.do("GET", "/api1/open/x", ""); w.Code != 200 {
		t.Fatalf("after the cap: %d %s", w.Code, w.Body)
	}
	if n := h.p.inflight.Load(); n != 0 {
		t.Fatalf("%d requests still counted", n)
	}
}

func TestUpstreamPolicy(t *testing.T) {
	u := UpstreamPolicy{
		OwnPorts:   []uint16{9090, 7000},
		LocalAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")},
	}
	allowed := UpstreamPolicy{
		OwnPorts: u.OwnPorts,
		Allow:    []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("127.0.0.1/32")},
	}
	for _, c := range []struct {
		addr            string
		refused, lifted bool // refused by u; still refused by allowed
	}{
		{"169.254.169.254:80", true, false},
		{"169.254.1.1:80", true, true},
		{"[::ffff:169.254.169.254]:80", true, false},
		{"[fe80::1]:80", true, true},
		{"[fe80::1%eth0]:80", true, true},
		{"[fd00:ec2::254]:80", true, true},
		{"127.0.0.1:9090", true, false},
		{"127.0.0.2:7000", true, true},
		{"[::1]:9090", true, true},
		{"0.0.0.0:9090", true, true},
		{"10.0.0.5:7000", true, false}, // allowed has no LocalAddrs
		{"127.0.0.1:8081", false, false},
		{"10.0.0.5:8081", false, false},
		{"10.0.0.6:9090", false, false},
		{"93.184.216.34:443", false, false},
	} {
		ap := netip.MustParseAddrPort(c.addr)
		err := u.check(ap)
		if (err != nil) != c.refused || (err != nil && !errors.Is(err, ErrUpstreamRefused)) {
			t.Errorf("%s: %v, want refused %v", c.addr, err, c.refused)
		}
		if err := allowed.check(ap); (err != nil) != c.lifted {
			t.Errorf("%s with Allow: %v, want refused %v", c.addr, err, c.lifted)
		}
	}
	if err := u.control("tcp", "nonsense", nil); !errors.Is(err, ErrUpstreamRefused) {
		t.Errorf("an address that does not parse: %v", err)
	}
}

func TestUpstreamRefused(t *testing.T) {
	// An own port reached by name: refused when dialed (after DNS).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	h := newHarness(t, func(c *tollgatepb.Config) {
		c.Stages["api1/prod"].Variables["url"] = "http://localhost:" + strconv.Itoa(int(port)) + "/x"
		c.Stages["api2/prod"].Variables["url"] = "http://169.254.169.254/latest"
	}, func(c *Config) { c.Upstreams.OwnPorts = []uint16{port} })
	expectAnswer(t, h.do("GET", "/api1/prod/x", valOne), 500, "InternalServerErrorException", "Internal server error")
	// A literal link-local address: refused without a dial.
	expectAnswer(t, h.do("GET", "/api2/prod/x", valOne), 500, "InternalServerErrorException", "Internal server error")
	logs := h.logs.String()
	if !strings.Contains(logs, `msg="upstream address refused"`) || !strings.Contains(logs, "169.254.169.254:80 is link-local") {
		t.Fatalf("log:\n%s", logs)
	}
	// A loopback upstream on another port still works.
	seenBy(t, h.do("GET", "/api1/open/x", ""))
}
