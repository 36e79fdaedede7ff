package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// acceptedConns counts the TCP connections on port that process pid has
// accepted (sockets it holds a descriptor of; not those waiting in the
// listen backlog).
func acceptedConns(t *testing.T, pid, port int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	held := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			held[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] == "0A" { // 0A: LISTEN
				continue
			}
			i := strings.LastIndexByte(fields[1], ':')
			lport, err := strconv.ParseInt(fields[1][i+1:], 16, 32)
			if err == nil && int(lport) == port && held[fields[9]] {
				n++
			}
		}
	}
	return n
}

// TestSecurity9ConnectionCap: beyond --max-requests concurrent requests the
// node answers 503 with Retry-After; beyond --max-connections it accepts no
// more connections (the rest wait in the backlog and are served later).
func TestSecurity9ConnectionCap(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "ok")
	}))
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { unblock(); up.Close() })

	const maxConns, maxReqs = 20, 5
	g := startGateway(t, t.TempDir(), "--max-connections", strconv.Itoa(maxConns), "--max-requests", strconv.Itoa(maxReqs))
	p := setupProduct(t, g, up.URL, map[string]any{})
	addr := g.listening["data"]
	path := "/" + p.APIID + "/" + p.Stage + "/slow"

	// Requests: maxReqs reach the blocked upstream, the others get 503.
	const sent = maxReqs + 3
	type result struct {
		r   rawResp
		err error
	}
	results := make(chan result, sent)
	conns := make([]net.Conn, sent)
	for i := range sent {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		conns[i] = c
		go func() {
			_, _ = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gw\r\nx-api-key: %s\r\nConnection: close\r\n\r\n", path, p.Key)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			results <- result{r: rawResp{resp.StatusCode, resp.Header, b}}
		}()
	}
	refusedN := 0
	for range sent - maxReqs {
		res := <-results // each request answers within its 30 s deadline
		if res.err != nil {
			t.Fatal(res.err)
		}
		if !isAnswer(res.r, 503, "ServiceUnavailableException") || res.r.Header.Get("Retry-After") == "" {
			t.Fatalf("over the request cap: %d %v %s, want 503 with Retry-After", res.r.Status, res.r.Header, res.r.Body)
		}
		refusedN++
	}
	// The admitted ones may still be on their way to the upstream.
	eventually(t, 10*time.Second, "the admitted requests to reach the upstream", func() bool { return entered.Load() == maxReqs })
	unblock()
	for range maxReqs {
		if res := <-results; res.err != nil || res.r.Status != 200 {
			t.Fatalf("a request within the cap: %+v", res)
		}
	}
	t.Logf("requests: %d concurrent reached the upstream, %d refused with 503", maxReqs, refusedN)

	// Connections: hold many half-open requests.
	pid, port := g.cmd.Process.Pid, 0
	_, ps, _ := net.SplitHostPort(addr)
	port, _ = strconv.Atoi(ps)
	eventually(t, 10*time.Second, "the earlier connections to close", func() bool { return acceptedConns(t, pid, port) == 0 })
	const opened = 3 * maxConns
	half := make([]net.Conn, opened)
	for i := range half {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gw\r\nx-api-key: %s\r\nConnection: close\r\n", path, p.Key)
		half[i] = c
	}
	eventually(t, 10*time.Second, "the node to accept up to its cap", func() bool { return acceptedConns(t, pid, port) >= maxConns })
	// Watch for a bounded while that it takes no more.
	most := 0
	for range 20 {
		most = max(most, acceptedConns(t, pid, port))
		time.Sleep(25 * time.Millisecond) // sampling interval of the observation
	}
	t.Logf("connections: %d half-open opened, at most %d accepted", opened, most)
	if most > maxConns {
		t.Fatalf("%d connections accepted, cap %d", most, maxConns)
	}
	// Finish every request: all are answered, the queued ones as slots free.
	for _, c := range half {
		_, _ = io.WriteString(c, "\r\n")
	}
	for i, c := range half {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 503 {
			t.Fatalf("connection %d: %d", i, resp.StatusCode)
		}
	}
}
