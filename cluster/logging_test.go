package cluster

import (
	"bytes"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// jsonLog is a slog JSON log in memory that tests read while nodes write.
type jsonLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (j *jsonLog) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.b.Write(p)
}

// logger returns a slog.Logger writing to j at level.
func (j *jsonLog) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(j, &slog.HandlerOptions{Level: level}))
}

// records parses every line; a line that is not JSON fails the test.
func (j *jsonLog) records(t *testing.T) []map[string]any {
	t.Helper()
	j.mu.Lock()
	text := j.b.String()
	j.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(text) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not the node's JSON: %q", line)
		}
		out = append(out, r)
	}
	return out
}

// brief is a record as "LEVEL component msg [k=v]" for the keys asked.
func brief(r map[string]any, keys ...string) string {
	s := []string{r["level"].(string), str(r["component"]), r["msg"].(string)}
	for _, k := range keys {
		if v, ok := r[k]; ok {
			s = append(s, k+"="+str(v))
		}
	}
	return strings.Join(s, " ")
}

func str(v any) string {
	if v == nil {
		return "-"
	}
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func briefs(recs []map[string]any, keys ...string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, brief(r, keys...))
	}
	return out
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestHCLogLevels: a raft line is kept when it is at the floor
// (RaftLogLevel) or above and the slog handler is enabled at its level;
// trace maps below slog's debug.
func TestHCLogLevels(t *testing.T) {
	tests := []struct {
		name    string
		handler slog.Level
		floor   hclog.Level
		want    []string
		isDebug bool
	}{
		{"floor warn, handler info", slog.LevelInfo, hclog.Warn, []string{"WARN raft w", "ERROR raft e"}, false},
		{"floor debug, handler info", slog.LevelInfo, hclog.Debug, []string{"INFO raft i", "WARN raft w", "ERROR raft e"}, false},
		{"floor trace, handler debug", slog.LevelDebug, hclog.Trace, []string{"DEBUG raft d", "INFO raft i", "WARN raft w", "ERROR raft e"}, true},
		{"floor trace, handler trace", traceLevel, hclog.Trace, []string{"DEBUG-4 raft t", "DEBUG raft d", "INFO raft i", "WARN raft w", "ERROR raft e"}, true},
		{"no floor, handler error", slog.LevelError, hclog.NoLevel, []string{"ERROR raft e"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j jsonLog
			l := newHCLog(j.logger(tt.handler), "raft", tt.floor)
			l.Trace("t")
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			l.Log(hclog.Off, "off")
			sameLines(t, briefs(j.records(t)), tt.want)
			if l.IsDebug() != tt.isDebug || !l.IsError() {
				t.Errorf("IsDebug %v IsError %v, want %v true", l.IsDebug(), l.IsError(), tt.isDebug)
			}
		})
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// TestHCLogAttrs: names nest into "component", With and the slog
// logger's own attributes are kept, hclog.Fmt and a Stringer are rendered
// as text, raft's "node" does not hide the node's id, and SetLevel is
// shared with derived loggers.
func TestHCLogAttrs(t *testing.T) {
	var j jsonLog
	root := newHCLog(j.logger(slog.LevelDebug).With("node", "n1"), "raft", hclog.Info)
	net := root.Named("net").With("peer", "n2")
	net.Info("dial", "attempt", 2, "why", hclog.Fmt("%d of %d", 1, 3), "node", stringer("Node at 127.0.0.1:7000 [Follower]"), "after", 1500*time.Millisecond)
	net.ResetNamed("snap").Warn("slow")
	root.SetLevel(hclog.Error)
	net.Warn("dropped: the shared level is error now")
	if got := net.GetLevel(); got != hclog.Error {
		t.Errorf("derived level %v, want error", got)
	}
	if net.Name() != "raft.net" || len(net.ImpliedArgs()) != 2 {
		t.Errorf("name %q implied %v", net.Name(), net.ImpliedArgs())
	}
	sameLines(t, briefs(j.records(t), "node", "peer", "attempt", "why", "raft_node", "after"), []string{
		"INFO raft.net dial node=n1 peer=n2 attempt=2 why=1 of 3 raft_node=Node at 127.0.0.1:7000 [Follower] after=1500000000",
		"WARN snap slow node=n1 peer=n2",
	})
}

// TestLevelWriter: memberlist's lines ("date time [LEVEL] memberlist:
// msg") are logged at their level without date or name; DEBUG is dropped
// unless the handler is at debug; a line without a level is info.
func TestLevelWriter(t *testing.T) {
	lines := "2026/11/30 13:20:00 [DEBUG] memberlist: Stream connection from=127.0.0.1:7946\n" +
		"2026/11/30 13:20:00.123456 [INFO] memberlist: Marking n3 as failed, suspect timeout reached\n" +
		"2026/11/30 13:20:01 [WARN] memberlist: Was able to connect to n2 over TCP but UDP probes failed\n" +
		"2026/11/30 13:20:02 [ERR] memberlist: Failed fallback TCP ping: timeout\n" +
		"no level at all\n"
	for _, tt := range []struct {
		level slog.Level
		want  []string
	}{
		{slog.LevelInfo, []string{
			"INFO memberlist Marking n3 as failed, suspect timeout reached",
			"WARN memberlist Was able to connect to n2 over TCP but UDP probes failed",
			"ERROR memberlist Failed fallback TCP ping: timeout",
			"INFO memberlist no level at all",
		}},
		{slog.LevelDebug, []string{
			"DEBUG memberlist Stream connection from=127.0.0.1:7946",
			"INFO memberlist Marking n3 as failed, suspect timeout reached",
			"WARN memberlist Was able to connect to n2 over TCP but UDP probes failed",
			"ERROR memberlist Failed fallback TCP ping: timeout",
			"INFO memberlist no level at all",
		}},
	} {
		var j jsonLog
		w := newHCLog(j.logger(tt.level), "memberlist", hclog.NoLevel).StandardWriter(nil)
		if n, err := w.Write([]byte(lines)); n != len(lines) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
		sameLines(t, briefs(j.records(t)), tt.want)
	}

	var j jsonLog
	forced := newHCLog(j.logger(slog.LevelDebug), "", hclog.NoLevel).StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn})
	forced.Print("[DEBUG] said debug")
	sameLines(t, briefs(j.records(t)), []string{"WARN - said debug"})
}

// TestGossipLogFilterThroughSlog: memberlist's logger, as gossipConfig
// builds it over the filter, still lets a refused peer's line through once
// per window, now into the node's log.
func TestGossipLogFilterThroughSlog(t *testing.T) {
	var j jsonLog
	base := j.logger(slog.LevelInfo)
	clock := newFakeClock(date(2026, 11, 30, 12, 0, 0))
	filter := gossipLogFilter{out: newHCLog(base, "memberlist", hclog.NoLevel).StandardWriter(nil), refused: newRefusals(base, clock.Now)}
	ml := log.New(filter, "", log.LstdFlags)
	for range 3 {
		ml.Printf("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0.9:7946")
	}
	ml.Printf("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0.8:7946")
	clock.Advance(2 * time.Minute)
	ml.Printf("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0.9:7946")
	const msg = "ERROR memberlist Decrypt packet failed: no installed keys could decrypt the message from="
	sameLines(t, briefs(j.records(t)), []string{msg + "10.0.0.9:7946", msg + "10.0.0.8:7946", msg + "10.0.0.9:7946"})
}

// TestNodeLogsThroughSlog: a node's raft lines reach its Logger, in its
// format and with its id; at info, no debug line shows.
func TestNodeLogsThroughSlog(t *testing.T) {
	var j jsonLog
	cfg := singleNodeConfig(t.TempDir())
	cfg.Logger, cfg.RaftLogLevel = j.logger(slog.LevelInfo), "info"
	openSingle(t, cfg)
	var raftLines int
	for _, r := range j.records(t) { // each line is JSON, or this fails
		if r["level"] == "DEBUG" {
			t.Errorf("a debug line at info: %v", r)
		}
		if r["component"] == "raft" {
			raftLines++
			if r["node"] != "n1" {
				t.Errorf("a raft line without the node's id: %v", r)
			}
		}
	}
	if raftLines == 0 {
		t.Fatalf("no raft line in the node's log: %v", briefs(j.records(t)))
	}
}
