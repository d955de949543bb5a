package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/keys"
)

// TestKeysCommands: kek prints a usable key-encryption key; import moves
// file keys into the database once; list shows their schedule; rotate adds a
// pending key, recording the --actor; rotate without database keys says
// what is missing.
func TestKeysCommands(t *testing.T) {
	c := setupCLI(t)
	if _, err := c.authd(t, "", "keys", "rotate"); err == nil || !strings.Contains(err.Error(), "AUTHD_KEY_ENCRYPTION_KEY is not set") {
		t.Fatalf("rotate with file keys: %v", err)
	}

	kek := strings.TrimSpace(c.must(t, "", "keys", "kek"))
	if _, err := keys.ParseKEK(kek); err != nil {
		t.Fatalf("keys kek printed an unusable key: %v", err)
	}
	c.vars["AUTHD_KEY_ENCRYPTION_KEY"] = kek
	// Admin commands before the first server or the import make no key.
	if _, err := c.authd(t, "", "keys", "rotate"); err == nil || !strings.Contains(err.Error(), "no signing key yet") {
		t.Fatalf("rotate on an empty table: %v", err)
	}
	c.must(t, "", "keys", "list")
	if n := len(signingKeyRows(t, c)); n != 0 {
		t.Fatalf("%d keys made by admin commands", n)
	}

	dir := t.TempDir()
	signing, retired := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	var kids []string
	for _, f := range []string{signing, retired} {
		out := c.must(t, "", "keys", "generate", "--out", f)
		kids = append(kids, strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "kid: "))
	}
	c.must(t, "", "keys", "import", "--files", signing+","+retired)
	if _, err := c.authd(t, "", "keys", "import", "--files", signing); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("second import: %v", err)
	}

	list := c.must(t, "", "keys", "list")
	for i, want := range []string{"signing", "retiring"} {
		if !lineHas(list, kids[i], want) {
			t.Errorf("keys list: %s is not %s:\n%s", kids[i], want, list)
		}
	}

	c.CreateUser(t, "root", "admin", cliPW)
	out := c.must(t, "", "keys", "rotate", "--actor", "root")
	kid := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "kid: ")
	if !lineHas(c.must(t, "", "keys", "list"), kid, "pending") {
		t.Errorf("the rotated key %s is not pending", kid)
	}
	var actor string
	if err := c.DB.Pool().QueryRow(context.Background(),
		`SELECT actor FROM audit_events WHERE type = $1 AND detail->>'kid' = $2`, audit.KeyRotated, kid).Scan(&actor); err != nil {
		t.Fatal(err)
	}
	if root, _ := c.Accounts.UserByName(context.Background(), "root"); actor != root.ID {
		t.Errorf("rotation recorded actor %q, want root's id", actor)
	}
	// Nothing the commands print is key material.
	for _, s := range []string{list, out} {
		if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, kek) {
			t.Fatal("a keys command printed a secret")
		}
	}
}

func lineHas(out, kid, state string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == kid && f[2] == state {
			return true
		}
	}
	return false
}

func signingKeyRows(t *testing.T, c cliEnv) []string {
	t.Helper()
	rows, err := c.DB.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, r := range rows {
		kids = append(kids, r.KID)
	}
	return kids
}
