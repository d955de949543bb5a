package deploy_test

import (
	"bytes"
	"debug/elf"
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

// TestImageBuildStep runs the Dockerfile's go build command as a plain
// `go build` (same environment assignments, flags and package, output in a
// temporary directory), then runs the binary the way the image would.
func TestImageBuildStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the authd binary; skipped with -short")
	}
	b := dockerGoBuild(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "authd")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := append([]string{"build"}, b.flags...)
	args = append(args, "-o", bin)
	args = append(args, b.pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = os.Environ()
	for k, v := range b.env {
		if strings.Contains(v, "$") { // GOOS=$TARGETOS and the like: build args of the image
			continue
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	t.Logf("%s: %s", cmd.Dir, strings.Join(cmd.Args, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
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
	// The flags did what the distroless static image relies on.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): it is not static, distroless/static cannot run it")
		}
	}
	if f.Section(".debug_info") != nil || f.Section(".symtab") != nil {
		t.Error("the binary has debug info or a symbol table: -ldflags='-s -w' did not apply")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if rr := repoRoot(t); bytes.Contains(data, []byte(rr+string(filepath.Separator))) {
		t.Errorf("the binary embeds the build directory %s: -trimpath did not apply", rr)
	}
}
