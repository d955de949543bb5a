// Package deploy_test checks the deployment artefacts (docker-compose.yml,
// deploy/Dockerfile and deploy/k8s/*.yaml) against each other and against the
// code: structure, probes, label selectors, and that every environment
// variable they set is one authd reads (config.Names). build_test.go runs the
// image's build step, `make build`.
package deploy_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/seedc5a8123e/authd/internal/config"
)

// The tests run in deploy/, so the repository root is one level up.
const root = ".."

// makeBuildOutput is where the Makefile's build target writes the binary,
// relative to the directory make runs in: TestImageBuildStep checks that
// `make build` writes it, TestDockerfileBuildStage that the image copies it.
const makeBuildOutput = "bin/authd"

// knownNames returns the environment variables authd reads.
func knownNames() map[string]bool {
	m := map[string]bool{}
	for _, n := range config.Names {
		m[n] = true
	}
	return m
}

// splitAddr splits a listen address such as ":9090" into host and port,
// failing the test unless it is host:port with a numeric port.
func splitAddr(t *testing.T, what, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		t.Fatalf("%s: %q is not host:port", what, addr)
	}
	return host, port
}

// allInterfaces reports whether a listen address's host is a wildcard.
func allInterfaces(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// defaultConfig is what authd runs with when nothing but DATABASE_URL is set.
func defaultConfig(t *testing.T) config.Config {
	t.Helper()
	c, err := config.Load(func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://authd@127.0.0.1:5432/authd"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// effectiveAddr is the AUTHD_ADDR a container of the image runs with when
// its deployment file sets addr: addr, else the image's ENV, else authd's
// default.
func effectiveAddr(t *testing.T, addr string) string {
	t.Helper()
	if addr == "" {
		addr = dockerfileEnv(t)["AUTHD_ADDR"]
	}
	if addr == "" {
		addr = defaultConfig(t).Addr
	}
	return addr
}
