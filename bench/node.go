package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// node is one running tollgate serve process.
type node struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	mu       sync.Mutex
	log      bytes.Buffer
	data     string // data plane base URL
	admin    string // admin API base URL
	snapshot time.Duration
	snapSize int64
}

var (
	listenLine   = regexp.MustCompile(`msg=listening .*plane=(\w+) addr=(\S+)`)
	snapshotLine = regexp.MustCompile(`msg="raft snapshot written".*bytes=(\d+) took=(\S+)`)
)

// startNode runs exe serve on dataDir with every listener on loopback and
// waits until it says it is ready.
func startNode(ctx context.Context, exe, dataDir string, timeout time.Duration) (*node, error) {
	n := &node{exited: make(chan struct{})}
	n.cmd = exec.Command(exe, "serve",
		"--data-dir", dataDir,
		"--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0",
		"--raft-listen", "127.0.0.1:0",
		"--grpc-listen", "127.0.0.1:0",
		"--gossip-listen", "127.0.0.1:0",
		"--advertise-addr", "127.0.0.1",
		"--max-requests", "0",
		"--raft-fast")
	pr, pw := io.Pipe()
	n.cmd.Stdout, n.cmd.Stderr = pw, pw
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	go func() {
		_ = n.cmd.Wait()
		_ = pw.Close()
		close(n.exited)
	}()
	go func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			line := s.Text()
			n.mu.Lock()
			if n.log.Len() < 8<<20 {
				n.log.WriteString(line + "\n")
			}
			if m := snapshotLine.FindStringSubmatch(line); m != nil {
				n.snapSize, _ = strconv.ParseInt(m[1], 10, 64)
				n.snapshot, _ = time.ParseDuration(m[2])
			}
			n.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := poll(ctx, timeout, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, m := range listenLine.FindAllStringSubmatch(n.log.String(), -1) {
			switch m[1] {
			case "data":
				n.data = "http://" + m[2]
			case "admin":
				n.admin = "http://" + m[2]
			}
		}
		return n.data != "" && n.admin != "" && strings.Contains(n.log.String(), "tollgate is ready")
	}, n.exited)
	if err != nil {
		n.kill()
		return nil, fmt.Errorf("node did not get ready: %w\n%s", err, n.tail())
	}
	return n, nil
}

// tail is the end of the node's log, for error messages.
func (n *node) tail() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.log.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// stop sends SIGTERM and waits for the node to exit.
func (n *node) stop(timeout time.Duration) error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return nil
	case <-time.After(timeout):
		n.kill()
		return errors.New("node did not stop in time; killed")
	}
}

func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// rss is the node's resident memory in bytes.
func (n *node) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heap is the node's live heap in bytes (go_memstats_heap_inuse_bytes).
func (n *node) heap(ctx context.Context) int64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", n.admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}

// call sends an admin API request and decodes a JSON answer into out
// (when not nil); it fails unless the status is want.
func (n *node) call(ctx context.Context, method, path, ctype string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, n.admin+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, truncate(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (n *node) json(ctx context.Context, method, path string, in any, want int, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return n.call(ctx, method, path, "application/json", b, want, out)
}

func truncate(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

// poll calls cond every 20ms until it holds, the timeout passes, ctx ends
// or dead closes.
func poll(ctx context.Context, timeout time.Duration, cond func() bool, dead <-chan struct{}) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not within %s", timeout)
		case <-dead:
			return errors.New("the node exited")
		case <-tick.C:
		}
	}
	return nil
}
