package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line int    // of its opening fence
	skip string // why the doc test leaves it out ("" to run it)
	body string
	want []string // lines its output must hold: the "#=> text" of its lines
}

var (
	skipMark   = regexp.MustCompile(`^<!-- doc-test: skip \((.+)\) -->$`)
	expectMark = regexp.MustCompile(`\s#=> (.+)$`)
)

// readmeBlocks returns README's ```sh blocks in order. A block right
// after a line `<!-- doc-test: skip (why) -->` is left out, for the
// reason given; "#=> text" at the end of a line says its output.
func readmeBlocks(t *testing.T, readme []byte) []readmeBlock {
	t.Helper()
	var out []readmeBlock
	var cur *readmeBlock
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && line == "```sh":
			cur = &readmeBlock{line: n}
			if m := skipMark.FindStringSubmatch(prev); m != nil {
				cur.skip = m[1]
			}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
			if m := expectMark.FindStringSubmatch(line); m != nil {
				cur.want = append(cur.want, m[1])
			}
		}
		prev = line
	}
	if cur != nil {
		t.Fatalf("README.md: the block at line %d never ends", cur.line)
	}
	return out
}

// readmePorts are the ports README's blocks listen on, on loopback or
// every interface: they must be free before the doc test starts.
var readmePorts = []int{3000, 7000, 7001, 7946, 8080, 8081, 8082, 8083, 9090, 9091, 9092, 9093,
	7101, 7102, 7103, 7201, 7202, 7203, 7301, 7302, 7303}

// TestReadme runs README.md's shell blocks in order, as a user would on a
// fresh clone: in a copy of the repository's tracked files, each block in
// its own bash -euo pipefail, from the copy's root. A block fails the
// test (with its text and output) when it exits non-zero, when its output
// lacks a "#=> text" line, when it runs longer than its bound, or when it
// leaves a process running (each block stops what it starts). It needs
// curl, jq, make, Docker and docker-compose, and the ports the README
// uses; without them it skips, except in CI.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("the README's blocks build images and start clusters")
	}
	needDocker(t)
	for _, tool := range []string{"bash", "curl", "jq", "make", "git", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" is not installed")
		}
	}
	for _, port := range readmePorts {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			skipOrFail(t, fmt.Sprintf("port %d, which the README uses, is taken: %v", port, err))
		}
		l.Close()
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, readme)
	dir := copyTracked(t)

	// The images get tags of their own (make images and docker-compose.yml
	// read them), so that the test leaves the user's alone.
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	env := append(os.Environ(), "TOLLGATE_IMAGE=tollgate:readme-"+id, "CADDY_IMAGE=tollgate-caddy:readme-"+id)
	t.Cleanup(func() {
		down := exec.Command("docker-compose", "down", "-v", "--timeout", "5")
		down.Dir, down.Env = dir, env
		_ = down.Run()
		_ = exec.Command("docker", "rmi", "-f", "tollgate:readme-"+id, "tollgate-caddy:readme-"+id).Run()
	})

	ran, skipped := 0, 0
	for _, b := range blocks {
		if b.skip != "" {
			skipped++
			t.Logf("README.md:%d: left out: %s", b.line, b.skip)
			continue
		}
		ran++
		start := time.Now()
		out, err := runBlock(dir, env, b.body, 4*time.Minute)
		if err != nil {
			t.Fatalf("README.md:%d: the block failed after %s: %v\n--- block\n%s--- output\n%s", b.line, time.Since(start).Round(time.Millisecond), err, b.body, out)
		}
		lines := map[string]bool{}
		for l := range strings.Lines(out) {
			lines[strings.TrimRight(l, "\r\n")] = true
		}
		for _, w := range b.want {
			if !lines[w] {
				t.Fatalf("README.md:%d: no output line %q\n--- block\n%s--- output\n%s", b.line, w, b.body, out)
			}
		}
		t.Logf("README.md:%d: ran in %s", b.line, time.Since(start).Round(time.Millisecond))
	}
	if ran < 4 || skipped > 7 {
		t.Fatalf("the README has %d blocks run and %d left out: the doc test should run most of them", ran, skipped)
	}
}

// skipOrFail skips outside CI and fails in CI, where the machine has all
// the doc test needs.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// copyTracked copies the repository's tracked files, as they are in the
// work tree, into a new directory: what a fresh clone holds.
func copyTracked(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("git", "-C", "..", "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join("..", name)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runBlock runs body with bash -euo pipefail in dir, in a process group
// of its own, for at most limit. It fails when bash fails, and when a
// process of the group outlives bash by more than 10s (the block did
// not stop what it started); the group is killed then.
func runBlock(dir string, env []string, body string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", body)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Stdout and stderr are not the pipes of a background process that
	// outlives bash: Wait returns when bash ends.
	cmd.WaitDelay = time.Second
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s", limit)
	}
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			err = errors.Join(err, errors.New("a process it started is still running 10s after it ended"))
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			break
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	return out.String(), err
}

// groupAlive tells whether a process of the group pgid runs (a zombie,
// which only waits for its parent to reap it, does not count).
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
