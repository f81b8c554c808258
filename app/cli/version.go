package cli

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"
)

// versionCmd is `confab version` (also --version and -v).
func versionCmd() command {
	return command{
		name: "version", summary: "print the version and the revision it was built from", failCode: exitConfig,
		help: "Prints the module version, the VCS revision (and whether the tree was modified) and the Go version.",
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			return func(context.Context, []string) int {
				fmt.Fprintln(c.stdout, version(c.revision))
				return exitOK
			}
		},
	}
}

// version describes the build: the module version, the VCS revision
// (revision, given at link time, wins over the build info's) and the Go
// version.
func version(revision string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "confab (unknown version)"
	}
	v, rev, modified := "confab "+info.Main.Version, revision, false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if revision == "" {
				rev = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	v += " revision " + rev
	if modified {
		v += " (modified)"
	}
	return v + " " + info.GoVersion
}
