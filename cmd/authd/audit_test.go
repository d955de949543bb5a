package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/audit"
)

// TestAuditActorAndList: an admin command records --actor as the actor of
// its audit rows (and as revoked_by_user_id), cli without it, an unknown
// --actor is refused before anything is written, and `audit list` prints
// the rows, filtered.
func TestAuditActorAndList(t *testing.T) {
	c := setupCLI(t)
	root := c.CreateUser(t, "root", "admin", cliPW)
	c.CreateUser(t, "bob", "user", cliPW)
	s1, s2 := c.Login(t, "bob", cliPW), c.Login(t, "bob", cliPW)

	c.must(t, "", "session", "revoke", s1.SID, "--actor", "ROOT", "--reason", "stolen")
	c.must(t, "", "session", "revoke", s2.SID)
	if s, _ := c.DB.SessionByID(t.Context(), s1.SID); s.RevokedByUserID == nil || *s.RevokedByUserID != root {
		t.Fatalf("revoked_by_user_id with --actor: %v", s.RevokedByUserID)
	}
	if _, err := c.authd(t, "", "user", "disable", "bob", "--actor", "nobody"); err == nil ||
		!strings.Contains(err.Error(), "--actor") {
		t.Fatalf("unknown --actor: %v", err)
	}

	out := c.must(t, "", "audit", "list", "--type", audit.SessionRevoked, "--json")
	actors := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Actor     string `json:"actor"`
			SessionID string `json:"session_id"`
			Type      string `json:"type"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Type != audit.SessionRevoked {
			t.Fatalf("line %q: %v", line, err)
		}
		actors[e.SessionID] = e.Actor
	}
	if len(actors) != 2 || actors[s1.SID] != root || actors[s2.SID] != audit.ActorCLI {
		t.Fatalf("actors %v; want %s by root (%s) and %s by cli", actors, s1.SID, root, s2.SID)
	}
	if n := len(auditRowsNamed(t, c, "bob", audit.UserDisabled)); n != 0 {
		t.Fatalf("%d user_disabled rows after a refused --actor", n)
	}
	// The text form, by user.
	out = c.must(t, "", "audit", "list", "--user", "bob", "--since", "1h")
	if !strings.Contains(out, audit.LoginSucceeded) || !strings.Contains(out, "actor=cli") {
		t.Fatalf("audit list --user bob:\n%s", out)
	}
	if _, err := c.authd(t, "", "audit", "list", "--since", "yesterday"); err == nil {
		t.Fatal("a --since that is no time was accepted")
	}
}

func auditRowsNamed(t *testing.T, c cliEnv, username, typ string) []string {
	t.Helper()
	out := c.must(t, "", "audit", "list", "--user", username, "--type", typ)
	if strings.TrimSpace(out) == "" {
		return nil
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}
