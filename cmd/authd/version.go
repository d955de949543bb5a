package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/seedc5a8123e/authd/internal/buildinfo"
)

func versionCmd() *command {
	return &command{
		name:    "version",
		summary: "print the version, commit and Go version",
		detail: `
Print this binary's version ("(devel)" for a build of an untagged checkout),
the commit it was built from (with -dirty for uncommitted changes; unknown
when the build had no VCS information) and the Go version that built it. The
same values label the authd_build_info metric. Needs no configuration.`,
		define: func(*flag.FlagSet) runFunc {
			return func(_ context.Context, _ []string, e env) error {
				in := buildinfo.Read()
				fmt.Fprintf(e.stdout, "version: %s\ncommit: %s\ngo: %s\n", in.Version, in.Revision, in.GoVersion)
				return nil
			}
		},
	}
}
