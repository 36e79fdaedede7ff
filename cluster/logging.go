package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hashicorp/raft logs through an hclog.Logger and memberlist through a
// *log.Logger whose lines start with "[LEVEL]". Both are sent to the
// node's *slog.Logger here, so that the node's log has one format and one
// level: a line is kept when the slog handler is enabled at its level (and,
// for raft, when it is at least NodeConfig.RaftLogLevel). go-hclog v1.6
// offers no adapter to slog, hence this one.

// traceLevel is hclog's Trace in slog: below Debug.
const traceLevel = slog.LevelDebug - 4

// slogLevel maps an hclog level to slog's.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return traceLevel
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default: // Info, and NoLevel
		return slog.LevelInfo
	}
}

// hclogSlog is an hclog.Logger writing to a *slog.Logger. Its name goes in
// the "component" attribute.
type hclogSlog struct {
	base    *slog.Logger // without name or implied args
	log     *slog.Logger // base with both
	name    string
	implied []any
	floor   *atomic.Int32 // the least hclog.Level logged; shared with derived loggers
}

// newHCLog returns an hclog.Logger named name that writes to log the
// lines at floor or above.
func newHCLog(log *slog.Logger, name string, floor hclog.Level) *hclogSlog {
	f := new(atomic.Int32)
	f.Store(int32(floor))
	return (&hclogSlog{base: log, floor: f}).derive(name, nil)
}

func (l *hclogSlog) derive(name string, implied []any) *hclogSlog {
	out := &hclogSlog{base: l.base, name: name, implied: implied, floor: l.floor}
	out.log = l.base
	if name != "" {
		out.log = out.log.With("component", name)
	}
	if len(implied) > 0 {
		out.log = out.log.With(plainArgs(implied)...)
	}
	return out
}

// plainArgs makes hclog's key-value arguments fit slog: hclog.Format
// values (hclog.Fmt) and fmt.Stringers (raft passes itself, a struct) as
// their text, as hclog writes them; and a "node" key, which raft uses
// for its own description, as "raft_node", since the node's logger
// already says "node" (its id).
func plainArgs(args []any) []any {
	var out []any
	set := func(i int, v any) {
		if out == nil {
			out = slices.Clone(args)
		}
		out[i] = v
	}
	for i, a := range args {
		switch v := a.(type) {
		case hclog.Format:
			if len(v) > 0 {
				format, _ := v[0].(string)
				set(i, fmt.Sprintf(format, v[1:]...))
			}
		case string:
			if i%2 == 0 && v == "node" {
				set(i, "raft_node")
			}
		case error, slog.LogValuer, time.Duration, time.Time:
			// slog writes these well
		case fmt.Stringer:
			if i%2 == 1 {
				set(i, v.String())
			}
		}
	}
	if out == nil {
		return args
	}
	return out
}

func (l *hclogSlog) enabled(level hclog.Level) bool {
	return level >= hclog.Level(l.floor.Load()) && l.log.Enabled(context.Background(), slogLevel(level))
}

func (l *hclogSlog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || !l.enabled(level) {
		return
	}
	l.log.Log(context.Background(), slogLevel(level), msg, plainArgs(args)...)
}

func (l *hclogSlog) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *hclogSlog) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *hclogSlog) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *hclogSlog) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *hclogSlog) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *hclogSlog) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *hclogSlog) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *hclogSlog) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *hclogSlog) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *hclogSlog) IsError() bool { return l.enabled(hclog.Error) }

func (l *hclogSlog) ImpliedArgs() []any { return l.implied }

func (l *hclogSlog) With(args ...any) hclog.Logger {
	return l.derive(l.name, append(append([]any(nil), l.implied...), args...))
}

func (l *hclogSlog) Name() string { return l.name }

func (l *hclogSlog) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.derive(name, l.implied)
}

func (l *hclogSlog) ResetNamed(name string) hclog.Logger { return l.derive(name, l.implied) }

func (l *hclogSlog) SetLevel(level hclog.Level) { l.floor.Store(int32(level)) }

func (l *hclogSlog) GetLevel() hclog.Level { return hclog.Level(l.floor.Load()) }

func (l *hclogSlog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line it is given, at the
// level its "[LEVEL]" prefix names (opts.ForceLevel, if set, instead).
func (l *hclogSlog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &levelWriter{log: l}
	if opts != nil {
		w.force = opts.ForceLevel
	}
	return w
}

// levelWriter takes lines in the standard library's log format, as
// memberlist writes them ("2006/01/02 15:04:05 [DEBUG] memberlist: ..."),
// and logs each at the level its prefix names, Info when it names none.
// A leading timestamp and the logger's own "name: " are dropped.
type levelWriter struct {
	log   *hclogSlog
	force hclog.Level // NoLevel: read it from the line
}

// stdTimestamp is the standard library logger's date and time, as
// log.LstdFlags (and the microseconds and UTC flags) write them.
var stdTimestamp = regexp.MustCompile(`^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? `)

func (w *levelWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		s := strings.TrimRight(string(line), " \t\r\n")
		s = stdTimestamp.ReplaceAllString(s, "")
		level, msg := lineLevel(s)
		if w.force != hclog.NoLevel {
			level = w.force
		}
		if w.log.name != "" {
			msg = strings.TrimPrefix(msg, w.log.name+": ")
		}
		if msg != "" {
			w.log.Log(level, msg)
		}
	}
	return len(p), nil
}

// lineLevel splits a "[LEVEL] message" line.
func lineLevel(s string) (hclog.Level, string) {
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
	} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return hclog.Info, s
}
