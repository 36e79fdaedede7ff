package tests

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScenario13SecondServeOnADataDirFailsFast starts a node, then a second
// `tollgate serve` on the same data dir: it must exit non-zero within about
// two seconds (it used to hang on the Raft log's lock, silent), with a
// message naming the data dir and the pid of the process that holds it. The
// first node keeps serving.
func TestScenario13SecondServeOnADataDirFailsFast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := startGateway(t, dir)

	start := time.Now()
	second := launch(t, loopbackArgs(dir), nil)
	log, exitErr := second.waitExit(5 * time.Second)
	took := time.Since(start)
	t.Logf("the second serve exited after %s: %v\n%s", took.Round(time.Millisecond), exitErr, log)
	if exitErr == nil {
		t.Fatal("the second serve on a data dir in use exited with status 0")
	}
	if took > 2*time.Second {
		t.Fatalf("the second serve took %s to fail, want about a second at most", took)
	}
	pid := strconv.Itoa(first.cmd.Process.Pid)
	if !strings.Contains(log, dir) || !strings.Contains(log, "process "+pid) {
		t.Fatalf("the message names neither the data dir %s nor the holder (pid %s):\n%s", dir, pid, log)
	}
	if r := first.admin("GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("the first node after the second's attempt: healthz %d %s", r.Status, r.Body)
	}
}
