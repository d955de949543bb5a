// Kubernetes: the manifests in deploy/k8s, against each other and against
// config.Names.

package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []yaml.Node       `yaml:"matchExpressions"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
	} `yaml:"valueFrom"`
}

type envFrom struct {
	Prefix       string `yaml:"prefix"`
	ConfigMapRef *struct {
		Name string `yaml:"name"`
	} `yaml:"configMapRef"`
	SecretRef *struct {
		Name string `yaml:"name"`
	} `yaml:"secretRef"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Capabilities             *struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type container struct {
	Name    string    `yaml:"name"`
	Image   string    `yaml:"image"`
	Command []string  `yaml:"command"`
	Args    []string  `yaml:"args"`
	Env     []envVar  `yaml:"env"`
	EnvFrom []envFrom `yaml:"envFrom"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	SecurityContext *securityContext `yaml:"securityContext"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type podTemplate struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		SecurityContext           *securityContext `yaml:"securityContext"`
		Containers                []container      `yaml:"containers"`
		InitContainers            []container      `yaml:"initContainers"`
		RestartPolicy             string           `yaml:"restartPolicy"`
		TopologySpreadConstraints []struct {
			TopologyKey   string        `yaml:"topologyKey"`
			LabelSelector labelSelector `yaml:"labelSelector"`
		} `yaml:"topologySpreadConstraints"`
		Volumes []struct {
			Name   string `yaml:"name"`
			Secret *struct {
				SecretName string `yaml:"secretName"`
				Items      []struct {
					Key  string `yaml:"key"`
					Path string `yaml:"path"`
				} `yaml:"items"`
			} `yaml:"secret"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

// object is one Kubernetes document; only the fields the tests read.
type object struct {
	file       string
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   meta              `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas       *int          `yaml:"replicas"`
		Selector       yaml.Node     `yaml:"selector"` // matchLabels for workloads and PDBs, a plain map for Services
		Template       podTemplate   `yaml:"template"`
		MinAvailable   yaml.Node     `yaml:"minAvailable"`
		MaxUnavailable yaml.Node     `yaml:"maxUnavailable"`
		Ports          []servicePort `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string    `yaml:"name"`
	Port       int       `yaml:"port"`
	TargetPort yaml.Node `yaml:"targetPort"`
}

func (o *object) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Metadata.Name, o.file) }

// matchLabels decodes a workload or PDB selector.
func (o *object) matchLabels(t *testing.T) labelSelector {
	t.Helper()
	var s labelSelector
	if err := o.Spec.Selector.Decode(&s); err != nil {
		t.Fatalf("%s: spec.selector: %v", o, err)
	}
	return s
}

// keys returns the Secret's or ConfigMap's data keys.
func (o *object) keys() []string {
	var ks []string
	for k := range o.Data {
		ks = append(ks, k)
	}
	for k := range o.StringData {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// loadK8s parses every deploy/k8s/*.yaml document.
func loadK8s(t *testing.T) []*object {
	t.Helper()
	return loadK8sDir(t, "k8s")
}

// loadK8sDir parses every dir/*.yaml document (deploy/k8s, or an optional
// part such as deploy/k8s/pgbouncer).
func loadK8sDir(t *testing.T, dir string) []*object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatalf("no deploy/%s/*.yaml files", dir)
	}
	var objs []*object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
				continue // an empty document, e.g. after a trailing ---
			}
			o := &object{file: f}
			if err := n.Decode(o); err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func byKind(objs []*object, kind string) []*object {
	var out []*object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(objs []*object, kind, name string) *object {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

// selects reports whether every selector label is among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// theDeployment returns the single authd Deployment.
func theDeployment(t *testing.T, objs []*object) *object {
	t.Helper()
	ds := byKind(objs, "Deployment")
	if len(ds) != 1 {
		t.Fatalf("want exactly one Deployment in deploy/k8s, found %d", len(ds))
	}
	return ds[0]
}

func TestK8sNamespaceAgnostic(t *testing.T) {
	for _, o := range loadK8s(t) {
		if o.Metadata.Namespace != "" {
			t.Errorf("%s sets metadata.namespace %q; the manifests must be namespace-agnostic", o, o.Metadata.Namespace)
		}
	}
}

func TestK8sDeployment(t *testing.T) {
	objs := loadK8s(t)
	d := theDeployment(t, objs)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("%s: replicas must be set and at least 2", d)
	}
	sel := d.matchLabels(t)
	podLabels := d.Spec.Template.Metadata.Labels
	if !selects(sel.MatchLabels, podLabels) {
		t.Errorf("%s: selector %v does not select the pod labels %v", d, sel.MatchLabels, podLabels)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: want one container, found %d", d, len(pod.Containers))
	}
	c := pod.Containers[0]

	if got := append(slices.Clone(c.Command), c.Args...); !slices.Equal(got, []string{"serve", "--no-migrate"}) {
		t.Errorf("%s: command+args = %q, want [serve --no-migrate] (the migration Job migrates)", d, got)
	}
	if c.Image == "" {
		t.Errorf("%s: no image", d)
	}

	var port8080 string
	for _, p := range c.Ports {
		if p.ContainerPort == 8080 {
			port8080 = p.Name
		}
	}
	if port8080 == "" {
		t.Errorf("%s: no named containerPort 8080", d)
	}
	checkProbe := func(what string, p *probe, wantPath string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no %s httpGet probe", d, what)
			return
		}
		if p.HTTPGet.Path != wantPath {
			t.Errorf("%s: %s probe path %q, want %q", d, what, p.HTTPGet.Path, wantPath)
		}
		if v := p.HTTPGet.Port.Value; v != "8080" && v != port8080 {
			t.Errorf("%s: %s probe port %q is not the container's port 8080", d, what, v)
		}
	}
	checkProbe("readiness", c.ReadinessProbe, "/readyz")
	checkProbe("liveness", c.LivenessProbe, "/healthz")

	checkNonRoot(t, d.String(), d.Spec.Template, true)
	if len(c.Resources.Requests) == 0 || c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: want resource requests and a memory limit, got %+v", d, c.Resources)
	}

	if len(pod.TopologySpreadConstraints) == 0 {
		t.Errorf("%s: no topologySpreadConstraints", d)
	}
	for _, tsc := range pod.TopologySpreadConstraints {
		if !selects(tsc.LabelSelector.MatchLabels, podLabels) {
			t.Errorf("%s: topology spread on %s selects %v, not the pod labels %v",
				d, tsc.TopologyKey, tsc.LabelSelector.MatchLabels, podLabels)
		}
	}
}

// checkNonRoot asserts a pod runs as non-root with a hardened container.
func checkNonRoot(t *testing.T, what string, tpl podTemplate, readOnlyRoot bool) {
	t.Helper()
	pod := tpl.Spec
	podNonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sc := c.SecurityContext
		if sc != nil && sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			t.Errorf("%s: container %s sets runAsNonRoot false", what, c.Name)
		}
		if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			t.Errorf("%s: container %s: runAsNonRoot must be true (pod or container securityContext)", what, c.Name)
		}
		for _, u := range []*securityContext{pod.SecurityContext, sc} {
			if u != nil && u.RunAsUser != nil && *u.RunAsUser == 0 {
				t.Errorf("%s: container %s runs as UID 0", what, c.Name)
			}
		}
		if sc == nil {
			t.Errorf("%s: container %s has no securityContext", what, c.Name)
			continue
		}
		if readOnlyRoot && (sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem) {
			t.Errorf("%s: container %s: readOnlyRootFilesystem must be true", what, c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s: allowPrivilegeEscalation must be false", what, c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s: capabilities must drop ALL", what, c.Name)
		}
	}
}

func TestK8sServiceAndPDBSelectServers(t *testing.T) {
	objs := loadK8s(t)
	d := theDeployment(t, objs)
	podLabels := d.Spec.Template.Metadata.Labels

	svcs := byKind(objs, "Service")
	if len(svcs) == 0 {
		t.Error("no Service in deploy/k8s")
	}
	portNames := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		portNames[p.Name] = true
		portNames[fmt.Sprint(p.ContainerPort)] = true
	}
	for _, s := range svcs {
		var sel map[string]string
		if err := s.Spec.Selector.Decode(&sel); err != nil {
			t.Fatalf("%s: selector: %v", s, err)
		}
		if !selects(sel, podLabels) {
			t.Errorf("%s: selector %v does not select the Deployment's pod labels %v", s, sel, podLabels)
		}
		for _, j := range byKind(objs, "Job") {
			if selects(sel, j.Spec.Template.Metadata.Labels) {
				t.Errorf("%s: selector %v also selects the pods of %s", s, sel, j)
			}
		}
		if len(s.Spec.Ports) == 0 {
			t.Errorf("%s: no ports", s)
		}
		for _, p := range s.Spec.Ports {
			if !portNames[p.TargetPort.Value] {
				t.Errorf("%s: targetPort %q is not a port of the Deployment's container", s, p.TargetPort.Value)
			}
		}
	}

	pdbs := byKind(objs, "PodDisruptionBudget")
	if len(pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, found %d", len(pdbs))
	}
	pdb := pdbs[0]
	if sel := pdb.matchLabels(t); !selects(sel.MatchLabels, podLabels) {
		t.Errorf("%s: selector %v does not select the Deployment's pod labels %v", pdb, sel.MatchLabels, podLabels)
	}
	replicas := 0
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	switch {
	case pdb.Spec.MinAvailable.Kind != 0 && pdb.Spec.MaxUnavailable.Kind != 0:
		t.Errorf("%s: set minAvailable or maxUnavailable, not both", pdb)
	case pdb.Spec.MinAvailable.Kind != 0:
		var n int
		if err := pdb.Spec.MinAvailable.Decode(&n); err != nil {
			t.Errorf("%s: minAvailable %q: want an integer", pdb, pdb.Spec.MinAvailable.Value)
		} else if n < 1 || n >= replicas {
			t.Errorf("%s: minAvailable %d with %d replicas: want 1 ≤ minAvailable < replicas, or drains block", pdb, n, replicas)
		}
	case pdb.Spec.MaxUnavailable.Kind != 0:
		var n int
		if err := pdb.Spec.MaxUnavailable.Decode(&n); err != nil {
			t.Errorf("%s: maxUnavailable %q: want an integer", pdb, pdb.Spec.MaxUnavailable.Value)
		} else if n < 1 || n >= replicas {
			t.Errorf("%s: maxUnavailable %d with %d replicas: want 1 ≤ maxUnavailable < replicas", pdb, n, replicas)
		}
	default:
		t.Errorf("%s: neither minAvailable nor maxUnavailable", pdb)
	}
}

func TestK8sMigrationJob(t *testing.T) {
	objs := loadK8s(t)
	d := theDeployment(t, objs)
	var found bool
	for _, j := range byKind(objs, "Job") {
		for _, c := range j.Spec.Template.Spec.Containers {
			if got := append(slices.Clone(c.Command), c.Args...); !slices.Equal(got, []string{"migrate", "up"}) {
				continue
			}
			found = true
			if want := d.Spec.Template.Spec.Containers[0].Image; c.Image != want {
				t.Errorf("%s: image %q differs from the Deployment's %q", j, c.Image, want)
			}
			if rp := j.Spec.Template.Spec.RestartPolicy; rp != "Never" && rp != "OnFailure" {
				t.Errorf("%s: restartPolicy %q", j, rp)
			}
			if !slices.ContainsFunc(c.Env, func(e envVar) bool { return e.Name == "DATABASE_URL" }) {
				t.Errorf("%s: DATABASE_URL is not set", j)
			}
			checkNonRoot(t, j.String(), j.Spec.Template, true)
		}
	}
	if !found {
		t.Error("no Job in deploy/k8s runs `migrate up`")
	}
}

// TestK8sEnvNames checks that every variable the manifests set is one authd
// reads, that every reference (ConfigMap, Secret, key) resolves inside
// deploy/k8s, and that the production essentials are set for the servers.
func TestK8sEnvNames(t *testing.T) {
	objs := loadK8s(t)
	names := knownNames()
	for _, w := range append(byKind(objs, "Deployment"), byKind(objs, "Job")...) {
		for _, c := range append(slices.Clone(w.Spec.Template.Spec.InitContainers), w.Spec.Template.Spec.Containers...) {
			set := containerEnv(t, objs, w, c)
			for n := range set {
				if !names[n] {
					t.Errorf("%s: container %s sets %s, which authd does not read (not in config.Names)", w, c.Name, n)
				}
			}
			if w.Kind != "Deployment" {
				continue
			}
			for _, must := range []string{"DATABASE_URL", "AUTHD_ISSUER", "AUTHD_SIGNING_KEYS"} {
				if _, ok := set[must]; !ok {
					t.Errorf("%s: %s is not set (without signing keys every replica signs with its own ephemeral key)", w, must)
				}
			}
			checkKeyFilesMounted(t, objs, w, c, set["AUTHD_SIGNING_KEYS"])
		}
	}
}

// containerEnv returns the variables a container sets, with values where they
// are literal or come from a ConfigMap in deploy/k8s.
func containerEnv(t *testing.T, objs []*object, w *object, c container) map[string]string {
	t.Helper()
	set := map[string]string{}
	for _, ef := range c.EnvFrom {
		var src *object
		switch {
		case ef.ConfigMapRef != nil:
			src = find(objs, "ConfigMap", ef.ConfigMapRef.Name)
			if src == nil {
				t.Errorf("%s: envFrom ConfigMap %q is not in deploy/k8s", w, ef.ConfigMapRef.Name)
				continue
			}
		case ef.SecretRef != nil:
			src = find(objs, "Secret", ef.SecretRef.Name)
			if src == nil {
				t.Errorf("%s: envFrom Secret %q is not in deploy/k8s", w, ef.SecretRef.Name)
				continue
			}
		default:
			continue
		}
		for _, k := range src.keys() {
			set[ef.Prefix+k] = src.Data[k]
		}
	}
	for _, e := range c.Env {
		set[e.Name] = e.Value
		if e.ValueFrom == nil {
			continue
		}
		for kind, ref := range map[string]*keyRef{"Secret": e.ValueFrom.SecretKeyRef, "ConfigMap": e.ValueFrom.ConfigMapKeyRef} {
			if ref == nil {
				continue
			}
			src := find(objs, kind, ref.Name)
			if src == nil || !slices.Contains(src.keys(), ref.Key) {
				t.Errorf("%s: %s comes from %s %s key %q, which deploy/k8s does not define", w, e.Name, kind, ref.Name, ref.Key)
			}
		}
	}
	return set
}

// checkKeyFilesMounted checks that every AUTHD_SIGNING_KEYS path is a key of
// a Secret mounted at that path's directory.
func checkKeyFilesMounted(t *testing.T, objs []*object, w *object, c container, keys string) {
	t.Helper()
	for _, p := range strings.Split(keys, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		dir, file := path.Split(p)
		var ok bool
		for _, vm := range c.VolumeMounts {
			if path.Clean(vm.MountPath) != path.Clean(dir) {
				continue
			}
			for _, v := range w.Spec.Template.Spec.Volumes {
				if v.Name != vm.Name || v.Secret == nil {
					continue
				}
				s := find(objs, "Secret", v.Secret.SecretName)
				if s == nil {
					t.Errorf("%s: volume %s mounts Secret %q, which deploy/k8s does not define", w, v.Name, v.Secret.SecretName)
					continue
				}
				if len(v.Secret.Items) == 0 {
					ok = ok || slices.Contains(s.keys(), file)
				}
				for _, it := range v.Secret.Items {
					ok = ok || (it.Path == file && slices.Contains(s.keys(), it.Key))
				}
			}
		}
		if !ok {
			t.Errorf("%s: AUTHD_SIGNING_KEYS names %s, which no mounted Secret provides", w, p)
		}
	}
}

// TestK8sMetricsPort: /metrics is on its own listener (AUTHD_METRICS_ADDR)
// and container port "metrics", reached only through a Service annotated
// for Prometheus; the public Service routes to the API port only. Without
// AUTHD_METRICS_ADDR, /metrics would be served on the API port, which the
// Service and any ingress in front of it expose.
func TestK8sMetricsPort(t *testing.T) {
	objs := loadK8s(t)
	d := theDeployment(t, objs)
	c := d.Spec.Template.Spec.Containers[0]
	env := containerEnv(t, objs, d, c)
	ports := map[string]int{} // container port name -> number
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	if env["AUTHD_METRICS_ADDR"] == "" {
		t.Fatalf("%s: AUTHD_METRICS_ADDR is not set, so /metrics is served on the API port behind the public Service", d)
	}
	_, mp := splitAddr(t, d.String()+": AUTHD_METRICS_ADDR", env["AUTHD_METRICS_ADDR"])
	_, ap := splitAddr(t, d.String()+": AUTHD_ADDR", effectiveAddr(t, env["AUTHD_ADDR"]))
	metricsPort, _ := strconv.Atoi(mp)
	apiPort, _ := strconv.Atoi(ap)
	if ports["metrics"] != metricsPort {
		t.Errorf("%s: container port \"metrics\" is %d, want AUTHD_METRICS_ADDR's port %d", d, ports["metrics"], metricsPort)
	}
	if ports["http"] != apiPort {
		t.Errorf("%s: container port \"http\" is %d, want AUTHD_ADDR's port %d", d, ports["http"], apiPort)
	}
	if metricsPort == apiPort {
		t.Errorf("%s: AUTHD_METRICS_ADDR and AUTHD_ADDR share port %d", d, apiPort)
	}

	// target resolves a Service port to the container port it reaches.
	target := func(p servicePort) int {
		switch v := p.TargetPort.Value; {
		case v == "":
			return p.Port // Kubernetes' default: targetPort = port
		default:
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
			return ports[v]
		}
	}
	var scraped bool
	for _, s := range byKind(objs, "Service") {
		scrape := s.Metadata.Annotations["prometheus.io/scrape"] == "true"
		for _, p := range s.Spec.Ports {
			switch to := target(p); {
			case !scrape && to == metricsPort:
				t.Errorf("%s: port %d routes to the metrics port %d; only a Service annotated prometheus.io/scrape may", s, p.Port, to)
			case scrape && to != metricsPort:
				t.Errorf("%s: a scraped Service, but port %d routes to container port %d, not the metrics port %d", s, p.Port, to, metricsPort)
			}
		}
		if !scrape {
			continue
		}
		scraped = true
		if got := s.Metadata.Annotations["prometheus.io/port"]; got != strconv.Itoa(metricsPort) {
			t.Errorf("%s: annotation prometheus.io/port %q, want the metrics port %d", s, got, metricsPort)
		}
		if got := s.Metadata.Annotations["prometheus.io/path"]; got != "" && got != "/metrics" {
			t.Errorf("%s: annotation prometheus.io/path %q, want /metrics", s, got)
		}
	}
	if !scraped {
		t.Errorf("no Service annotated prometheus.io/scrape: \"true\" routes to the metrics port %d", metricsPort)
	}

	pub := find(objs, "Service", "authd")
	if pub == nil {
		t.Fatal("no Service authd")
	}
	if pub.Metadata.Annotations["prometheus.io/scrape"] == "true" {
		t.Errorf("%s: the public Service must not be the scrape target", pub)
	}
	if !slices.ContainsFunc(pub.Spec.Ports, func(p servicePort) bool { return target(p) == apiPort }) {
		t.Errorf("%s: no port routes to the API port %d", pub, apiPort)
	}
}
