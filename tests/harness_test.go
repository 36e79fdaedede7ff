// Package tests drives real tollgate binaries over real HTTP.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary is the tollgate binary built once for the whole test run, in
// binDir.
var binary, binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir, binary = dir, filepath.Join(dir, "tollgate")
	if out, err := buildTollgate(binary); err != nil {
		fmt.Fprintf(os.Stderr, "build tollgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTollgate builds cmd/tollgate into out with the given build tags.
func buildTollgate(out string, tags ...string) ([]byte, error) {
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	build := exec.Command("go", append(args, "../cmd/tollgate")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	return build.CombinedOutput()
}

// faultsBuild is the tollgate binary built with the faults tag, whose
// node clock follows TOLLGATE_FAULT_CLOCK_OFFSET; built on first use.
var faultsBuild struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// faultsBinary returns the faults build, building it once per test run.
func faultsBinary(t *testing.T) string {
	t.Helper()
	faultsBuild.once.Do(func() {
		faultsBuild.path = filepath.Join(binDir, "tollgate-faults")
		faultsBuild.out, faultsBuild.err = buildTollgate(faultsBuild.path, "faults")
	})
	if faultsBuild.err != nil {
		t.Fatalf("build tollgate -tags faults: %v\n%s", faultsBuild.err, faultsBuild.out)
	}
	return faultsBuild.path
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway is one running tollgate process.
type gateway struct {
	t         *testing.T
	cmd       *exec.Cmd
	dataDir   string
	logs      *syncBuffer
	exited    chan struct{}
	exitErr   error
	DataURL   string
	AdminURL  string
	listening map[string]string
	// Token, when set, is sent as the admin API's bearer token.
	Token string
}

var listenLine = regexp.MustCompile(`msg=listening .*plane=(\w+) addr=(\S+)`)

// loopbackArgs binds every listener of a node to a free loopback port.
func loopbackArgs(dataDir string) []string {
	return []string{"serve",
		"--data-dir", dataDir,
		"--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0",
		"--raft-listen", "127.0.0.1:0",
		"--grpc-listen", "127.0.0.1:0",
		"--gossip-listen", "127.0.0.1:0",
		"--advertise-addr", "127.0.0.1",
		"--raft-fast",
	}
}

// startGateway starts a node and waits until it is ready.
func startGateway(t *testing.T, dataDir string, extra ...string) *gateway {
	t.Helper()
	g := launch(t, append(loopbackArgs(dataDir), extra...), nil)
	g.dataDir = dataDir
	g.waitReady()
	return g
}

// waitListening waits until the node logged the addresses it bound.
func (g *gateway) waitListening() {
	g.t.Helper()
	eventually(g.t, 30*time.Second, "the node to bind its listeners", func() bool {
		select {
		case <-g.exited:
			g.t.Fatalf("tollgate exited early: %v\n%s", g.exitErr, g.logs.String())
		default:
		}
		for _, m := range listenLine.FindAllStringSubmatch(g.logs.String(), -1) {
			g.listening[m[1]] = m[2]
		}
		return g.listening["gossip"] != "" && g.listening["data"] != "" && g.listening["admin"] != ""
	})
	g.DataURL = "http://" + g.listening["data"]
	g.AdminURL = "http://" + g.listening["admin"]
}

// waitReady waits until the node serves.
func (g *gateway) waitReady() {
	g.t.Helper()
	g.waitListening()
	eventually(g.t, 60*time.Second, "the node to be ready", func() bool {
		select {
		case <-g.exited:
			g.t.Fatalf("tollgate exited early: %v\n%s", g.exitErr, g.logs.String())
		default:
		}
		return strings.Contains(g.logs.String(), "tollgate is ready")
	})
}

// launch starts the binary with args and env; it does not wait.
func launch(t *testing.T, args []string, env []string) *gateway {
	t.Helper()
	return launchBin(t, binary, args, env)
}

// launchBin starts bin (the release build or faultsBinary) with args and
// env; it does not wait.
func launchBin(t *testing.T, bin string, args []string, env []string) *gateway {
	t.Helper()
	g := &gateway{t: t, logs: &syncBuffer{}, exited: make(chan struct{}), listening: map[string]string{}}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Env = append(os.Environ(), env...)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start tollgate: %v", err)
	}
	go func() {
		g.exitErr = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			t.Logf("tollgate log:\n%s", g.logs.String())
		}
	})
	return g
}

// stop sends SIGTERM and waits for a clean exit.
func (g *gateway) stop() {
	g.t.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
		if g.exitErr != nil {
			g.t.Fatalf("tollgate did not exit cleanly: %v\n%s", g.exitErr, g.logs.String())
		}
	case <-time.After(30 * time.Second):
		g.t.Fatalf("tollgate did not stop within 30s\n%s", g.logs.String())
	}
}

func (g *gateway) kill() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Kill()
	<-g.exited
}

// waitExit waits for the process to end by itself and returns its log.
func (g *gateway) waitExit(timeout time.Duration) (log string, exitErr error) {
	g.t.Helper()
	select {
	case <-g.exited:
		return g.logs.String(), g.exitErr
	case <-time.After(timeout):
		g.t.Fatalf("tollgate still running after %s", timeout)
	}
	return "", nil
}

var client = &http.Client{Timeout: 30 * time.Second}

// apiResp is an admin API answer.
type apiResp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r apiResp) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// admin sends one admin API request; body may be nil, a string or a value
// encoded as JSON. It is sent as application/json, or text/csv to the key
// import.
func (g *gateway) admin(method, path string, body any) apiResp {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, g.AdminURL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.Contains(path, "mode=import") {
		req.Header.Set("Content-Type", "text/csv") // a key file, as the import requires
	}
	if g.Token != "" {
		req.Header.Set("Authorization", "Bearer "+g.Token)
	}
	return g.send(req)
}

// send sends an admin request and reads its whole answer.
func (g *gateway) send(req *http.Request) apiResp {
	g.t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mustAdmin sends a request and requires the given status.
func (g *gateway) mustAdmin(method, path string, body any, want int) map[string]any {
	g.t.Helper()
	r := g.admin(method, path, body)
	if r.Status != want {
		g.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(g.t)
}

// call sends one data-plane request with an API key ("" sends none).
func (g *gateway) call(path, key string) apiResp {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.DataURL+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// upstream is a backend that counts and keeps what reaches it.
type upstream struct {
	*httptest.Server
	count atomic.Int64
	mu    sync.Mutex
	last  *http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.count.Add(1)
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"query":%q}`, r.URL.Path, r.URL.RawQuery)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
