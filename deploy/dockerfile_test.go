// Dockerfile: deploy/Dockerfile and deploy/Dockerfile.dockerignore. The build
// stage runs the Makefile's build target; build_test.go runs that target.

package deploy_test

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type instruction struct {
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

// dockerfileStages returns the stages, each a list of instructions starting
// with its FROM, with comments dropped and continuation lines joined.
func dockerfileStages(t *testing.T) [][]instruction {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments, parser directives, and comments inside continuations
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		l := strings.TrimSpace(cur.String())
		cur.Reset()
		if l == "" {
			continue
		}
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

// withoutOptions drops the leading --options of a FROM, RUN or COPY.
func withoutOptions(fields []string) []string {
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	return fields
}

// dockerignorePatterns returns the patterns of Dockerfile.dockerignore, the
// build context's exclusions for deploy/Dockerfile. Only what path.Match
// understands is accepted: the copy of the build context in build_test.go
// relies on it.
func dockerignorePatterns(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") || strings.Contains(l, "**") {
			t.Fatalf("Dockerfile.dockerignore: %q: the tests support neither ! nor ** patterns", l)
		}
		p := path.Clean(strings.TrimPrefix(l, "/"))
		if _, err := path.Match(p, ""); err != nil {
			t.Fatalf("Dockerfile.dockerignore: %q: %v", l, err)
		}
		pats = append(pats, p)
	}
	return pats
}

// dockerignored reports whether the build context leaves out rel, a
// slash-separated path relative to the repository root. Like docker, a
// pattern matching a directory leaves out all of it.
func dockerignored(pats []string, rel string) bool {
	for p := rel; p != "." && p != "/"; p = path.Dir(p) {
		for _, pat := range pats {
			if ok, _ := path.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

// TestDockerfileBuildStage checks that the image builds its binary with the
// Makefile's build target, for the target platform, and copies the file that
// target writes.
func TestDockerfileBuildStage(t *testing.T) {
	stages := dockerfileStages(t)
	var name, workdir string
	var build []instruction
	var run []string // the fields of RUN ... make build, without options
	for _, st := range stages {
		wd := "/"
		for _, in := range st {
			switch in.cmd {
			case "WORKDIR":
				if path.IsAbs(in.args) {
					wd = path.Clean(in.args)
				} else {
					wd = path.Join(wd, in.args)
				}
			case "RUN":
				f := withoutOptions(strings.Fields(in.args))
				i := 0
				for i < len(f) && strings.Contains(f[i], "=") {
					i++ // NAME=value assignments
				}
				if slices.Equal(f[i:], []string{"make", "build"}) {
					if run != nil {
						t.Fatal("Dockerfile: more than one RUN make build")
					}
					run, build, workdir = f, st, wd
				}
			}
		}
	}
	if run == nil {
		t.Fatal("Dockerfile: no build stage with RUN [NAME=value ...] make build (the Makefile's build target)")
	}

	from := withoutOptions(strings.Fields(build[0].args))
	if len(from) == 3 && strings.EqualFold(from[1], "AS") {
		name = from[2]
	} else {
		t.Fatalf("Dockerfile: the build stage FROM %s has no name (AS ...) for the final stage to copy from", build[0].args)
	}

	// A stage on $BUILDPLATFORM cross-compiles: make must get the target's
	// GOOS and GOARCH, or a multi-platform build ships build-platform binaries.
	if strings.Contains(build[0].args, "--platform=$BUILDPLATFORM") {
		for _, want := range []string{"GOOS=$TARGETOS", "GOARCH=$TARGETARCH"} {
			if !slices.Contains(run, want) {
				t.Errorf("Dockerfile: the build stage runs on $BUILDPLATFORM, but RUN %s does not set %s", strings.Join(run, " "), want)
			}
		}
	}

	// The Makefile is in the build stage: copied, and not left out of the context.
	copied := slices.ContainsFunc(build, func(in instruction) bool {
		f := withoutOptions(strings.Fields(in.args))
		return in.cmd == "COPY" && !strings.Contains(in.args, "--from=") && len(f) >= 2 &&
			slices.ContainsFunc(f[:len(f)-1], func(src string) bool { return src == "." || src == "Makefile" })
	})
	if !copied {
		t.Error("Dockerfile: the build stage copies neither . nor Makefile, so make build has no Makefile")
	}
	if dockerignored(dockerignorePatterns(t), "Makefile") {
		t.Error("Dockerfile.dockerignore leaves the Makefile out of the build context")
	}

	// The binary the final stage copies is the one make build writes.
	final := stages[len(stages)-1]
	bin := path.Join(workdir, makeBuildOutput)
	if !slices.ContainsFunc(final, func(in instruction) bool {
		f := strings.Fields(in.args)
		return in.cmd == "COPY" && slices.Contains(f, "--from="+name) &&
			len(f) >= 2 && f[len(f)-2] == bin && f[len(f)-1] == "/authd"
	}) {
		t.Errorf("Dockerfile: final stage does not COPY --from=%s %s /authd (WORKDIR %s, make build writes %s)", name, bin, workdir, makeBuildOutput)
	}
}

func TestDockerfileRuntimeStage(t *testing.T) {
	stages := dockerfileStages(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: want a multi-stage build, found %d stage(s)", len(stages))
	}
	final := stages[len(stages)-1]
	from := strings.Fields(final[0].args)
	var image string
	for _, f := range from {
		if !strings.HasPrefix(f, "--") {
			image = f
			break
		}
	}
	if !strings.HasPrefix(image, "gcr.io/distroless/static") {
		t.Errorf("Dockerfile: final stage FROM %s, want gcr.io/distroless/static*", image)
	}

	var user, entrypoint, cmd string
	var exposed []string
	names := knownNames()
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENV":
			k, _, _ := strings.Cut(in.args, "=")
			if k, _, _ = strings.Cut(k, " "); !names[k] {
				t.Errorf("Dockerfile: ENV %s is not a variable authd reads", k)
			}
		}
	}
	u, g, _ := strings.Cut(user, ":")
	if user == "" || u == "0" || u == "root" || g == "0" || g == "root" {
		t.Errorf("Dockerfile: final stage USER %q: want a non-root user and group", user)
	}
	if strings.Trim(u, "0123456789") != "" {
		t.Errorf("Dockerfile: USER %q: use a numeric UID so runAsNonRoot can verify it", user)
	}
	if !slices.Contains(exposed, "8080") && !slices.Contains(exposed, "8080/tcp") {
		t.Errorf("Dockerfile: final stage does not EXPOSE 8080 (EXPOSE %q)", exposed)
	}
	if entrypoint != `["/authd"]` {
		t.Errorf(`Dockerfile: ENTRYPOINT %s, want ["/authd"]`, entrypoint)
	}
	if cmd != `["serve"]` {
		t.Errorf(`Dockerfile: CMD %s, want ["serve"]`, cmd)
	}
	// TestDockerfileBuildStage checks the COPY of the binary.
}

// TestDockerfileGoVersion keeps the build image's Go release at least the
// go directive of go.mod, so the image does not fetch a toolchain.
func TestDockerfileGoVersion(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	major, minor := "", ""
	if parts := strings.Split(goLine, "."); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	stages := dockerfileStages(t)
	dockerfile, _ := os.ReadFile("Dockerfile")
	// Resolve ARG defaults used in FROM golang:${GO_VERSION}-...
	args := map[string]string{}
	for _, l := range strings.Split(string(dockerfile), "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(l), "ARG "); ok {
			if k, v, ok := strings.Cut(a, "="); ok {
				args[k] = v
			}
		}
	}
	for _, st := range stages {
		img := os.Expand(st[0].args, func(k string) string { return args[k] })
		for _, f := range strings.Fields(img) {
			tag, ok := strings.CutPrefix(f, "golang:")
			if !ok {
				continue
			}
			v, _, _ := strings.Cut(tag, "-")
			p := strings.Split(v, ".")
			if len(p) < 2 || p[0] != major || p[1] != minor {
				t.Errorf("Dockerfile: build image %s, but go.mod says go %s: want golang:%s.%s", f, goLine, major, minor)
			}
			return
		}
	}
	t.Error("Dockerfile: no golang:<version> build stage")
}
