package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bufConn reads what a hijacked connection's reader already buffered first.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestSecurity6H2CRefused: an Upgrade to h2c never opens an HTTP/2 tunnel
// to the upstream (the header is dropped and the request served as
// HTTP/1.1); a WebSocket upgrade is refused with 400 on a stage that does
// not allow it, and tunnels on one that sets tollgate_websocket=true.
func TestSecurity6H2CRefused(t *testing.T) {
	// An upstream that speaks h2c and counts requests per path.
	var mu sync.Mutex
	hits := map[string]int{}
	var sawUpgrade atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.ProtoMajor == 1 && r.Header.Get("Upgrade") != "" {
			sawUpgrade.Store(true)
		}
		fmt.Fprint(w, "ok")
	})
	// It takes the upgrade as soon as it sees Upgrade: h2c, as lenient
	// servers do (x/net's h2c also wants HTTP2-Settings named in Connection).
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "h2c") {
			h(w, r)
			return
		}
		sawUpgrade.Store(true)
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		_ = rw.Flush()
		//lint:ignore SA1019 the upstream must speak HTTP/2 on a connection it took over after an Upgrade, which net/http's server cannot
		(&http2.Server{}).ServeConn(&bufConn{conn, rw.Reader}, &http2.ServeConnOpts{Handler: h, UpgradeRequest: r})
	}))
	t.Cleanup(up.Close)
	outside := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for p, c := range hits {
			if strings.HasPrefix(p, "/outside/") {
				n += c
			}
		}
		return n
	}

	g := startGateway(t, t.TempDir())
	p := setupProduct(t, g, up.URL+"/inside", map[string]any{})
	addr := g.listening["data"]

	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET /%s/%s/x HTTP/1.1\r\nHost: gw\r\nx-api-key: %s\r\n"+
		"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n", p.APIID, p.Stage, p.Key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	const streams = 5
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The tunnel is open: speak HTTP/2 through it, outside the stage.
		fr := http2.NewFramer(c, br)
		_, _ = io.WriteString(c, http2.ClientPreface)
		_ = fr.WriteSettings()
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for i := range streams {
			hb.Reset()
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "up"}, {":path", "/outside/" + strconv.Itoa(i)}} {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(3 + 2*i), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		}
		eventually(t, 10*time.Second, "the HTTP/2 streams to reach the upstream", func() bool { return outside() == streams })
		t.Fatalf("Upgrade: h2c opened a tunnel: %d HTTP/2 streams reached the upstream outside the stage's prefix", outside())
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("h2c upgrade request: %d %q %v, want the request served as HTTP/1.1", resp.StatusCode, body, resp.Header)
	}
	if sawUpgrade.Load() {
		t.Fatal("the upstream was sent an Upgrade header")
	}
	// The connection is still HTTP/1.1: an HTTP/2 preface on it goes nowhere.
	_, _ = io.WriteString(c, http2.ClientPreface)
	_, _ = io.Copy(io.Discard, br) // until the gateway closes it (bounded by the deadline)
	if n := outside(); n != 0 {
		t.Fatalf("%d requests reached the upstream outside the stage", n)
	}

	// WebSocket: refused on a stage that does not allow it.
	ws := "GET /%s/%s/chat HTTP/1.1\r\nHost: gw\r\nx-api-key: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	before := hits["/inside/chat"]
	r := rawRequest(t, addr, fmt.Sprintf(ws, p.APIID, p.Stage, p.Key))
	if !isAnswer(r, 400, "BadRequestException") {
		t.Fatalf("WebSocket upgrade on a stage without tollgate_websocket: %d %v %s, want 400 BadRequestException", r.Status, r.Header, r.Body)
	}
	mu.Lock()
	after := hits["/inside/chat"]
	mu.Unlock()
	if after != before {
		t.Fatal("a refused WebSocket upgrade reached the upstream")
	}

	// ... and tunnelled where the stage allows it.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want websocket", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = rw.Flush()
		line, _ := rw.ReadString('\n')
		_, _ = rw.WriteString("echo " + line)
		_ = rw.Flush()
	}))
	t.Cleanup(echo.Close)
	addStage(t, g, p, "live", map[string]string{"url": echo.URL, "tollgate_websocket": "true"})
	wc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	_ = wc.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(wc, ws+"\r\n", p.APIID, "live", p.Key)
	wbr := bufio.NewReader(wc)
	wresp, err := http.ReadResponse(wbr, nil)
	if err != nil || wresp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket upgrade on a stage that allows it: %v %v", wresp, err)
	}
	fmt.Fprint(wc, "hello\n")
	if line, err := wbr.ReadString('\n'); err != nil || line != "echo hello\n" {
		t.Fatalf("through the tunnel: %q %v", line, err)
	}
}
