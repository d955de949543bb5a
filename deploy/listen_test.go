// Listen addresses: authd's AUTHD_ADDR default is loopback only (right for
// `make run`, unreachable in a container), so every artefact that runs authd
// in a container must set it to every interface, on the port it exposes.

package deploy_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// dockerfileEnv returns the final stage's ENV variables.
func dockerfileEnv(t *testing.T) map[string]string {
	t.Helper()
	stages := dockerfileStages(t)
	env := map[string]string{}
	for _, in := range stages[len(stages)-1] {
		if in.cmd != "ENV" {
			continue
		}
		if k, v, ok := strings.Cut(in.args, " "); ok && !strings.Contains(k, "=") {
			env[k] = strings.Trim(strings.TrimSpace(v), `"`) // ENV KEY value
			continue
		}
		for _, kv := range strings.Fields(in.args) { // ENV K1=v1 K2=v2
			k, v, _ := strings.Cut(kv, "=")
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

// checkListen fails unless addr (empty: authd's default) listens on every
// interface on port want.
func checkListen(t *testing.T, what, addr, want string) {
	t.Helper()
	def := defaultConfig(t).Addr
	if addr == "" {
		h, _ := splitAddr(t, "config default AUTHD_ADDR", def)
		if ip, err := netip.ParseAddr(h); h == "localhost" || (err == nil && ip.IsLoopback()) {
			t.Errorf("%s: AUTHD_ADDR is not set, so authd listens on its default %s, which nothing outside the container reaches", what, def)
			return
		}
		addr = def
	}
	host, port := splitAddr(t, what+": AUTHD_ADDR", addr)
	if !allInterfaces(host) {
		t.Errorf("%s: AUTHD_ADDR %q listens on %s only, not every interface", what, addr, host)
	}
	if port != want {
		t.Errorf("%s: AUTHD_ADDR %q is not on port %s", what, addr, want)
	}
}

// TestDefaultAddrIsLoopback pins the premise: a bare `authd serve` (make
// run) is not reachable from the network.
func TestDefaultAddrIsLoopback(t *testing.T) {
	if got := defaultConfig(t).Addr; got != "127.0.0.1:8080" {
		t.Errorf("config default AUTHD_ADDR = %q, want 127.0.0.1:8080 (README: make run listens on 127.0.0.1:8080)", got)
	}
}

func TestListenAddresses(t *testing.T) {
	t.Run("Dockerfile", func(t *testing.T) {
		checkListen(t, "Dockerfile ENV", dockerfileEnv(t)["AUTHD_ADDR"], "8080") // EXPOSE 8080: TestDockerfileRuntimeStage
	})
	t.Run("Kubernetes", func(t *testing.T) {
		objs := loadK8s(t)
		d := theDeployment(t, objs)
		c := d.Spec.Template.Spec.Containers[0]
		http := 0
		for _, p := range c.Ports {
			if p.Name == "http" {
				http = p.ContainerPort
			}
		}
		if http == 0 {
			t.Fatalf("%s: no container port named http", d)
		}
		addr := containerEnv(t, objs, d, c)["AUTHD_ADDR"]
		if addr == "" {
			addr = dockerfileEnv(t)["AUTHD_ADDR"] // the image's ENV
		}
		checkListen(t, d.String(), addr, strconv.Itoa(http))
	})
	t.Run("Compose", func(t *testing.T) {
		a := loadCompose(t)["authd"]
		addr := composeEnv(t, a.Environment)["AUTHD_ADDR"]
		if addr == "" {
			addr = dockerfileEnv(t)["AUTHD_ADDR"] // the image's ENV
		}
		checkListen(t, "docker-compose.yml: authd", addr, "8080") // published 8080:8080: TestCompose
	})
}
