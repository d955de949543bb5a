// Package buildinfo says which build of authd is running: `authd version`
// prints it and /metrics exports it as authd_build_info.
//
// The values come from the build information the go command embeds
// (runtime/debug.ReadBuildInfo): the main module's version ("(devel)" for a
// build of an untagged checkout) and, when the build ran in a VCS checkout,
// vcs.revision and vcs.modified. A build without VCS information (such as
// the container image, whose build context has no .git) can set them at
// link time:
//
//	go build -ldflags "-X github.com/seedc5a8123e/authd/internal/buildinfo.Version=v1.2.3 \
//	  -X github.com/seedc5a8123e/authd/internal/buildinfo.Revision=$(git rev-parse HEAD)" ./cmd/authd
//
// (`make build VERSION=v1.2.3 REVISION=...` does that.)
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version and Revision, when set with -ldflags -X, override what the build
// information says.
var (
	Version  string
	Revision string
)

// Unknown is the revision of a build without VCS information.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the module version: a tag such as v1.2.3, a pseudo-version,
	// or "(devel)".
	Version string
	// Revision is the VCS commit, with "-dirty" appended when the working
	// tree had uncommitted changes; Unknown without VCS information.
	Revision string
	// GoVersion is the Go toolchain that built the binary, such as go1.26.8.
	GoVersion string
}

// Read returns the running binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo() // nil when the binary carries none
	return fromBuildInfo(bi, Version, Revision)
}

// fromBuildInfo builds an Info from bi (nil when the binary carries none)
// and the link-time overrides.
func fromBuildInfo(bi *debug.BuildInfo, version, revision string) Info {
	in := Info{Version: "(devel)", Revision: Unknown, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			in.Revision = rev
			if dirty {
				in.Revision += "-dirty"
			}
		}
	}
	if version != "" {
		in.Version = version
	}
	if revision != "" {
		in.Revision = revision
	}
	return in
}
