// Kubernetes, the PgBouncer option (deploy/k8s/pgbouncer): its manifests,
// and the authd configuration that goes with them.

package deploy_test

import (
	"net/url"
	"regexp"
	"slices"
	"testing"

	"github.com/seedc5a8123e/authd/internal/config"
)

func TestK8sPgBouncer(t *testing.T) {
	objs := loadK8sDir(t, "k8s/pgbouncer")
	ds := byKind(objs, "Deployment")
	if len(ds) != 1 {
		t.Fatalf("want one PgBouncer Deployment, found %d", len(ds))
	}
	d := ds[0]
	checkNonRoot(t, d.String(), d.Spec.Template, true)
	if !selects(d.matchLabels(t).MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: selector does not match its pods", d)
	}

	cm := find(objs, "ConfigMap", "authd-pgbouncer")
	if cm == nil {
		t.Fatal("no ConfigMap authd-pgbouncer")
	}
	ini := cm.Data["pgbouncer.ini"]
	for _, want := range []string{`(?m)^pool_mode = transaction$`, `(?m)^listen_port = 6432$`, `(?m)^auth_file = /etc/pgbouncer/auth/userlist.txt$`} {
		if !regexp.MustCompile(want).MatchString(ini) {
			t.Errorf("pgbouncer.ini lacks %s", want)
		}
	}

	svc := find(objs, "Service", "pgbouncer")
	if svc == nil {
		t.Fatal("no Service pgbouncer (the host of database-url in secret.yaml)")
	}
	var sel map[string]string
	if err := svc.Spec.Selector.Decode(&sel); err != nil || !selects(sel, d.Spec.Template.Metadata.Labels) {
		t.Errorf("%s does not select the PgBouncer pods (%v)", svc, err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 6432 ||
		!slices.ContainsFunc(c.Ports, func(p struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		}) bool {
			return p.Name == svc.Spec.Ports[0].TargetPort.Value && p.ContainerPort == 6432
		}) {
		t.Errorf("%s: want port 6432 to the container port 6432", svc)
	}
	if len(byKind(objs, "PodDisruptionBudget")) != 1 {
		t.Error("no PodDisruptionBudget for PgBouncer")
	}
}

// TestK8sPoolerConfig loads authd's configuration as each workload of
// deploy/k8s would (ConfigMap plus the Secret's template values): the
// servers reach PgBouncer and say so, and the migration Job migrates on a
// direct URL, which config.MigrationURL would otherwise refuse.
func TestK8sPoolerConfig(t *testing.T) {
	objs := loadK8s(t)
	secret := find(objs, "Secret", "authd-database")
	if secret == nil {
		t.Fatal("no Secret authd-database")
	}
	for _, w := range append(byKind(objs, "Deployment"), byKind(objs, "Job")...) {
		c := w.Spec.Template.Spec.Containers[0]
		env := containerEnv(t, objs, w, c)
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret.Metadata.Name {
				env[e.Name] = secret.StringData[e.ValueFrom.SecretKeyRef.Key]
			}
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: config.Load: %v", w, err)
		}
		u, _ := url.Parse(cfg.DatabaseURL)
		if w.Kind == "Deployment" {
			if u.Hostname() == "pgbouncer" && cfg.DatabasePooler != "transaction" {
				t.Errorf("%s: DATABASE_URL goes through PgBouncer but AUTHD_DATABASE_POOLER is %q", w, cfg.DatabasePooler)
			}
			continue
		}
		m, err := cfg.MigrationURL()
		if err != nil {
			t.Errorf("%s: %v", w, err)
			continue
		}
		if mu, _ := url.Parse(m); mu.Hostname() == "pgbouncer" {
			t.Errorf("%s: migrates through PgBouncer (%s)", w, config.RedactURL(m))
		}
	}
}
