package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are the release this binary is and the commit it was
// built from, when the build says so (make images does):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=4db7b57" ./cmd/tollgate
//
// Without them the version Go stamped from the repository's tags and
// commit are shown (go build stamps them in a clone, not in a git
// worktree, nor with -buildvcs=false), else "devel" and "unknown".
var version, commit string

// buildVersion describes a binary: its version, the commit it was built
// from ("unknown" outside a repository, "+modified" when the work tree had
// changes) and the Go toolchain.
type buildVersion struct {
	Version, Commit, Go string
}

// readVersion reads the version from bi (nil: no build information), or
// from ld (the -X values, "" where unset), which wins.
func readVersion(bi *debug.BuildInfo, ld buildVersion) buildVersion {
	v := buildVersion{Version: "devel", Commit: "unknown", Go: "unknown"}
	if bi != nil {
		v.Go = bi.GoVersion
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && v.Commit != "unknown" {
			v.Commit += "+modified"
		}
	}
	if ld.Version != "" {
		v.Version = ld.Version
	}
	if ld.Commit != "" {
		v.Commit = ld.Commit
	}
	return v
}

// String is the text of "tollgate version", one "name value" per line.
func (v buildVersion) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tollgate %s\ncommit %s\ngo %s\n", v.Version, v.Commit, v.Go)
	return b.String()
}

// currentVersion is this binary's version.
func currentVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return readVersion(bi, buildVersion{Version: version, Commit: commit})
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the Go version this binary was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), currentVersion())
			return err
		},
	}
}
