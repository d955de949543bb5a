package redact

import (
	"slices"
	"strings"
	"testing"
)

func TestURLMasksEveryPassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://authd@db:5432/authd?sslmode=require&password=s3cr3t-pw",
		"postgres://authd:s3cr3t-pw@db:5432/authd?sslpassword=s3cr3t-pw",
		"postgres://authd@db/authd?PASSWORD=s3cr3t-pw",
	} {
		if got := URL(raw); strings.Contains(got, "s3cr3t-pw") {
			t.Errorf("URL(%q) = %q leaks the password", raw, got)
		}
		if secrets := URLSecrets(raw); len(secrets) == 0 || secrets[0] != "s3cr3t-pw" {
			t.Errorf("URLSecrets(%q) = %q", raw, secrets)
		}
	}
	for raw, want := range map[string]string{
		"postgres://authd@db/authd?sslmode=disable": "postgres://authd@db/authd?sslmode=disable",
		"":                   "",
		"postgres://a b@%zz": "(unparseable)",
	} {
		if got := URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestURLSecretsIncludeEscapedForms(t *testing.T) {
	got := URLSecrets("postgres://authd:p%40ss%2Fw0rd@db/authd")
	for _, want := range []string{"p@ss/w0rd", "p%40ss%2Fw0rd"} {
		if !slices.Contains(got, want) {
			t.Errorf("URLSecrets = %q, lacks %q", got, want)
		}
	}
}
