package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/tollgate/tollgate", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "4db7b57"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "(devel)"},
		Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ld   buildVersion
		want buildVersion
	}{
		{"stamped by go", stamped, buildVersion{}, buildVersion{"v0.3.0", "4db7b57", "go1.26.8"}},
		{"ldflags win", stamped, buildVersion{Version: "v9.9.9", Commit: "fedcba9"}, buildVersion{"v9.9.9", "fedcba9", "go1.26.8"}},
		{"ldflags without build info", nil, buildVersion{Version: "v9.9.9", Commit: "fedcba9"}, buildVersion{"v9.9.9", "fedcba9", "unknown"}},
		{"modified work tree", dirty, buildVersion{}, buildVersion{"devel", "abc+modified", "go1.26.8"}},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, buildVersion{}, buildVersion{"devel", "unknown", "go1.26.8"}},
		{"no build info", nil, buildVersion{}, buildVersion{"devel", "unknown", "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readVersion(tt.bi, tt.ld); got != tt.want {
				t.Fatalf("readVersion = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestVersionCommand runs "tollgate version" and "tollgate --version": both
// print the version, the commit and this toolchain's Go version.
func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		root := rootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "tollgate ") || !strings.HasPrefix(lines[1], "commit ") {
			t.Fatalf("%v printed %q, want three lines: tollgate, commit, go", args, out.String())
		}
		if want := "go " + runtime.Version(); lines[2] != want {
			t.Errorf("%v: last line %q, want %q", args, lines[2], want)
		}
	}
}
