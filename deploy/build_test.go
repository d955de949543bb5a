// The image's build step: `make build`, run the way deploy/Dockerfile runs it.

package deploy_test

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoRoot returns the directory of the main module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod)
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// copyBuildContext copies the repository at src into dst as `docker build`
// sends it: without what Dockerfile.dockerignore leaves out.
func copyBuildContext(t *testing.T, src, dst string) {
	t.Helper()
	pats := dockerignorePatterns(t)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		if dockerignored(pats, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return nil // sockets and the like: docker does not send them either
	})
	if err != nil {
		t.Fatalf("copying the build context: %v", err)
	}
}

// TestImageBuildStep runs the image's build step, `make build`, in a copy of
// the build context (the repository without what Dockerfile.dockerignore
// leaves out), then runs the binary it writes the way the image would.
// GOOS and GOARCH are the host's: the image sets them from the target platform.
func TestImageBuildStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the authd binary; skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("make: %v", err)
		}
		t.Skipf("no make: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	copyBuildContext(t, repoRoot(t), src)

	// go test puts the go command that runs it first on PATH, so the
	// Makefile's default GO=go is this toolchain. VERSION and REVISION are
	// what the Dockerfile passes from its build arguments.
	cmd := exec.Command("make", "build")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-buildtest", "REVISION=buildtest-rev")
	t.Logf("%s: %s", cmd.Dir, strings.Join(cmd.Args, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	bin := filepath.Join(src, filepath.FromSlash(makeBuildOutput))
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("make build did not write %s, which deploy/Dockerfile copies: %v", makeBuildOutput, err)
	}

	// `authd help` prints the usage and exits 0.
	help := exec.Command(bin, "help")
	help.Env = []string{} // the image sets no environment
	var stdout, stderr bytes.Buffer
	help.Stdout, help.Stderr = &stdout, &stderr
	if err := help.Run(); err != nil {
		t.Fatalf("authd help: %v\nstderr: %s", err, stderr.String())
	}
	for _, want := range []string{"usage: authd", "serve", "migrate", "keys generate"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("authd help: output lacks %q:\n%s", want, stdout.String())
		}
	}

	// Every command explains itself without configuration; the link-time
	// VERSION and REVISION reach `authd version` (and authd_build_info).
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--help"}, "usage: authd serve [--no-migrate] [--bootstrap-admin]"},
		{[]string{"user", "--help"}, "usage: authd user <subcommand>"},
		{[]string{"migrate", "up", "-h"}, "usage: authd migrate up"},
		{[]string{"version"}, "version: v0.0.0-buildtest\ncommit: buildtest-rev\ngo: "},
	} {
		c := exec.Command(bin, tc.args...)
		c.Env = []string{}
		out, err := c.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("authd %s: %v, output %q; want exit 0 and output starting %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}

	// The key-generation step deploy/README.md and docker-compose.yml document.
	key := filepath.Join(dir, "signing.pem")
	if out, err := exec.Command(bin, "keys", "generate", "--out", key).CombinedOutput(); err != nil {
		t.Errorf("authd keys generate: %v\n%s", err, out)
	} else if pem, err := os.ReadFile(key); err != nil || !bytes.Contains(pem, []byte("BEGIN PRIVATE KEY")) {
		t.Errorf("authd keys generate: %s is not a PKCS#8 PEM key (err %v)", key, err)
	}

	if runtime.GOOS != "linux" {
		return
	}
	// The Makefile's flags did what the distroless static image relies on.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): it is not static (CGO_ENABLED=0), distroless/static cannot run it")
		}
	}
	if f.Section(".debug_info") != nil || f.Section(".symtab") != nil {
		t.Error("the binary has debug info or a symbol table: -ldflags='-s -w' did not apply")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{src, repoRoot(t)} {
		if bytes.Contains(data, []byte(d+string(filepath.Separator))) {
			t.Errorf("the binary embeds the build directory %s: -trimpath did not apply", d)
		}
	}
}
