// docker compose: the local stack in ../docker-compose.yml.

package deploy_test

import (
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type composeService struct {
	Image       string    `yaml:"image"`
	Build       yaml.Node `yaml:"build"`
	Command     yaml.Node `yaml:"command"`
	Environment yaml.Node `yaml:"environment"`
	EnvFile     yaml.Node `yaml:"env_file"`
	DependsOn   yaml.Node `yaml:"depends_on"`
	Healthcheck *struct {
		Test    yaml.Node `yaml:"test"`
		Disable bool      `yaml:"disable"`
	} `yaml:"healthcheck"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f.Services
}

// composeEnv decodes an environment block in map or list form.
func composeEnv(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		var m map[string]*string
		if err := n.Decode(&m); err != nil {
			t.Fatalf("docker-compose.yml: environment: %v", err)
		}
		for k, v := range m {
			if v != nil {
				env[k] = *v
			} else {
				env[k] = ""
			}
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			t.Fatalf("docker-compose.yml: environment: %v", err)
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	default:
		t.Fatalf("docker-compose.yml: environment: unexpected YAML kind %v", n.Kind)
	}
	return env
}

func TestCompose(t *testing.T) {
	svcs := loadCompose(t)
	for _, name := range []string{"postgres", "redis", "authd"} {
		if _, ok := svcs[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q", name)
		}
	}
	for _, name := range []string{"postgres", "redis"} {
		hc := svcs[name].Healthcheck
		if hc == nil || hc.Disable || hc.Test.Kind == 0 {
			t.Errorf("docker-compose.yml: service %s has no healthcheck", name)
		}
	}

	a := svcs["authd"]
	var deps map[string]struct {
		Condition string `yaml:"condition"`
	}
	if a.DependsOn.Kind != yaml.MappingNode {
		t.Error("docker-compose.yml: authd.depends_on must be a map with conditions (the list form only waits for start)")
	} else if err := a.DependsOn.Decode(&deps); err != nil {
		t.Errorf("docker-compose.yml: authd.depends_on: %v", err)
	}
	for _, name := range []string{"postgres", "redis"} {
		if c := deps[name].Condition; c != "service_healthy" {
			t.Errorf("docker-compose.yml: authd depends on %s with condition %q, want service_healthy", name, c)
		}
	}

	var build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	if a.Build.Kind != yaml.MappingNode || a.Build.Decode(&build) != nil ||
		path.Clean(build.Context) != "." || path.Clean(build.Dockerfile) != "deploy/Dockerfile" {
		t.Errorf("docker-compose.yml: authd must build context . with dockerfile deploy/Dockerfile, got %+v", build)
	}
	if !slices.ContainsFunc(a.Ports, func(p string) bool { return strings.HasSuffix(p, "8080:8080") }) {
		t.Errorf("docker-compose.yml: authd does not publish 8080:8080 (ports %q)", a.Ports)
	}
	if a.EnvFile.Kind != 0 {
		t.Error("docker-compose.yml: authd uses env_file, whose names this test cannot check; use environment")
	}

	names := knownNames()
	env := composeEnv(t, a.Environment)
	for n := range env {
		if !names[n] {
			t.Errorf("docker-compose.yml: authd sets %s, which authd does not read (not in config.Names)", n)
		}
	}
	for _, must := range []string{"DATABASE_URL", "AUTHD_REDIS_URL", "AUTHD_ISSUER", "AUTHD_SIGNING_KEYS"} {
		if env[must] == "" {
			t.Errorf("docker-compose.yml: authd does not set %s", must)
		}
	}
	for _, p := range strings.Split(env["AUTHD_SIGNING_KEYS"], ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.ContainsFunc(a.Volumes, func(v string) bool {
			parts := strings.Split(v, ":")
			return len(parts) >= 2 && strings.HasPrefix(p, strings.TrimSuffix(parts[1], "/")+"/")
		}) {
			t.Errorf("docker-compose.yml: AUTHD_SIGNING_KEYS file %s is not under a mounted volume", p)
		}
	}
}

// composePort splits a short-syntax port mapping, [HOST_IP:]HOST:CONTAINER[/PROTO],
// into the host IP (empty: every interface) and the container port.
func composePort(p string) (hostIP, container string) {
	p, _, _ = strings.Cut(p, "/")
	if strings.HasPrefix(p, "[") { // [::1]:9090:9090
		if end := strings.Index(p, "]"); end > 0 {
			hostIP, p = p[1:end], strings.TrimPrefix(p[end+1:], ":")
		}
	}
	parts := strings.Split(p, ":")
	if len(parts) == 3 {
		hostIP = parts[0]
	}
	return hostIP, parts[len(parts)-1]
}

// TestComposeMetrics: /metrics has its own listener (AUTHD_METRICS_ADDR),
// published on the host's loopback only, never on the API's port 8080.
func TestComposeMetrics(t *testing.T) {
	a := loadCompose(t)["authd"]
	env := composeEnv(t, a.Environment)
	if env["AUTHD_METRICS_ADDR"] == "" {
		t.Fatal("docker-compose.yml: authd does not set AUTHD_METRICS_ADDR, so /metrics is served on the published API port")
	}
	_, mp := splitAddr(t, "docker-compose.yml: AUTHD_METRICS_ADDR", env["AUTHD_METRICS_ADDR"])
	_, ap := splitAddr(t, "docker-compose.yml: AUTHD_ADDR", effectiveAddr(t, env["AUTHD_ADDR"]))
	if mp == ap {
		t.Errorf("docker-compose.yml: AUTHD_METRICS_ADDR and AUTHD_ADDR share port %s", ap)
	}
	for _, p := range a.Ports {
		hostIP, container := composePort(p)
		if container != mp {
			continue
		}
		if ip, err := netip.ParseAddr(hostIP); hostIP != "localhost" && (err != nil || !ip.IsLoopback()) {
			t.Errorf("docker-compose.yml: authd publishes the metrics port as %q; bind it to 127.0.0.1 (or do not publish it)", p)
		}
	}
}
