package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/seedc5a8123e/authd", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := *stamped
	dirty.Settings = append([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, stamped.Settings[:2]...)
	for _, tc := range []struct {
		name              string
		bi                *debug.BuildInfo
		version, revision string
		want              Info
	}{
		{"no build info", nil, "", "", Info{"(devel)", Unknown, runtime.Version()}},
		{"no VCS", &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}}, "", "",
			Info{"(devel)", Unknown, "go1.99.1"}},
		{"clean checkout", stamped, "", "", Info{"v1.2.3", "0123456789abcdef", "go1.99.1"}},
		{"dirty checkout", &dirty, "", "", Info{"v1.2.3", "0123456789abcdef-dirty", "go1.99.1"}},
		{"link-time overrides", stamped, "v9.9.9", "feedface", Info{"v9.9.9", "feedface", "go1.99.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.version, tc.revision); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRead: a test binary has build information, built by this toolchain.
func TestRead(t *testing.T) {
	in := Read()
	if in.Version == "" || in.Revision == "" || in.GoVersion != runtime.Version() {
		t.Fatalf("Read() = %+v", in)
	}
}
