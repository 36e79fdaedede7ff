package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/echo"
)

// lockedBuffer is a bytes.Buffer a command writes to while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUpstreamCommand runs "tollgate upstream" on a free port: it logs its
// address, echoes a request, counts it, and stops when its context ends.
func TestUpstreamCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	root := rootCmd()
	root.SetErr(&logs)
	root.SetArgs([]string{"upstream", "--listen", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	addrRE := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no address logged in 10s: %q", logs.String())
		} else {
			time.Sleep(5 * time.Millisecond) // polling the log
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/api/prod/pets?x=1")
	if err != nil {
		t.Fatal(err)
	}
	var rep echo.Reply
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || rep.Path != "/api/prod/pets" || rep.Query != "x=1" || rep.Method != "GET" {
		t.Fatalf("echo: %d %+v %v", resp.StatusCode, rep, err)
	}
	resp, err = c.Get("http://" + addr + echo.CountsPath)
	if err != nil {
		t.Fatal(err)
	}
	var counts echo.Counts
	err = json.NewDecoder(resp.Body).Decode(&counts)
	resp.Body.Close()
	if err != nil || counts.Total != 1 || counts.ByPath["/api/prod/pets"] != 1 {
		t.Fatalf("counts %+v %v, want one request to /api/prod/pets", counts, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("upstream stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream did not stop within 10s of its context ending")
	}
}
