package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// auditRows reads every audit row the filter selects, newest first.
func auditRows(t testing.TB, env *authdtest.Env, f auditlog.Filter) []postgres.AuditEvent {
	t.Helper()
	var out []postgres.AuditEvent
	if err := env.App.Audit.Export(context.Background(), f, func(e postgres.AuditEvent) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// oneAudit is the one row of typ that the filter selects; it fails the test
// when there are none or several.
func oneAudit(t testing.TB, env *authdtest.Env, typ string, f auditlog.Filter) postgres.AuditEvent {
	t.Helper()
	f.Type = typ
	rows := auditRows(t, env, f)
	if len(rows) != 1 {
		t.Fatalf("%d %s rows for %+v, want 1: %+v", len(rows), typ, f, rows)
	}
	return rows[0]
}

func jsonDo(t testing.TB, env *authdtest.Env, method, path, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	return env.Do(t, method, path, bearer, "application/json", bytes.NewReader(b))
}

func wantStatus(t testing.TB, res *http.Response, body []byte, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, body)
	}
}

// TestAuditEveryEventType drives each audited change through the API and
// finds exactly one row for it, with its actor, subject and session, and
// no password anywhere in the log.
func TestAuditEveryEventType(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	ctx := context.Background()
	adminID := env.CreateUser(t, "root", "admin", pw)
	if e := oneAudit(t, env, audit.UserCreated, auditlog.Filter{UserID: adminID}); e.Actor != audit.ActorSystem ||
		e.Detail["username"] != "root" || e.Detail["role"] != "admin" {
		t.Fatalf("user_created of the harness's admin: %+v", e)
	}
	admin := env.Login(t, "root", pw)
	if e := oneAudit(t, env, audit.LoginSucceeded, auditlog.Filter{SessionID: admin.SID}); e.Actor != adminID ||
		e.SubjectUserID != adminID || e.IP != "127.0.0.1" || e.Detail["grant"] != "password" {
		t.Fatalf("login_succeeded: %+v", e)
	}

	// Created over the API: the admin is the actor.
	const alicePW = "alice's first password"
	res, body := jsonDo(t, env, "POST", "/users", admin.AccessToken, map[string]string{"username": "alice", "role": "user", "password": alicePW})
	wantStatus(t, res, body, http.StatusCreated)
	alice := decode[struct{ ID string }](t, body).ID
	if e := oneAudit(t, env, audit.UserCreated, auditlog.Filter{UserID: alice}); e.Actor != adminID || e.SubjectUserID != alice {
		t.Fatalf("user_created by the admin: %+v", e)
	}

	// A failed login: the account key, never the password.
	const wrong = "not alice's password at all"
	req, _ := http.NewRequest("POST", env.URL+"/token", strings.NewReader(url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {wrong}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "audit-test/1")
	fail, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fail.Body.Close()
	if fail.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", fail.StatusCode)
	}
	if e := oneAudit(t, env, audit.LoginFailed, auditlog.Filter{}); e.Actor != audit.ActorSystem ||
		e.Detail["account"] != "login:alice" || e.UserAgent != "audit-test/1" || e.IP != "127.0.0.1" {
		t.Fatalf("login_failed: %+v", e)
	}

	// Refresh reuse: detected, and the session revoked, both recorded.
	a1 := env.Login(t, "alice", alicePW)
	res, body = refresh(t, env, a1.RefreshToken)
	wantStatus(t, res, body, http.StatusOK)
	res, body = refresh(t, env, a1.RefreshToken) // the rotated-away token again
	wantOAuthError(t, res, body, http.StatusBadRequest, "invalid_grant")
	if e := oneAudit(t, env, audit.RefreshReuse, auditlog.Filter{SessionID: a1.SID}); e.SubjectUserID != alice || e.Actor != audit.ActorSystem {
		t.Fatalf("refresh_reuse_detected: %+v", e)
	}
	if e := oneAudit(t, env, audit.SessionRevoked, auditlog.Filter{SessionID: a1.SID}); e.Detail["reason"] != "refresh_token_reuse" ||
		e.SubjectUserID != alice {
		t.Fatalf("session_revoked on reuse: %+v", e)
	}

	// A revocation by an admin, with its reason.
	a2 := env.Login(t, "alice", alicePW)
	res, body = jsonDo(t, env, "POST", "/sessions/"+a2.SID+"/revoke", admin.AccessToken, map[string]string{"reason": "lost laptop"})
	wantStatus(t, res, body, http.StatusOK)
	if e := oneAudit(t, env, audit.SessionRevoked, auditlog.Filter{SessionID: a2.SID}); e.Actor != adminID || e.Detail["reason"] != "lost laptop" {
		t.Fatalf("session_revoked by the admin: %+v", e)
	}

	// Disable (a user cutoff with it), enable, role change.
	env.Login(t, "alice", alicePW)
	res, body = jsonDo(t, env, "PATCH", "/users/"+alice, admin.AccessToken, map[string]any{"disabled": true})
	wantStatus(t, res, body, http.StatusOK)
	if e := oneAudit(t, env, audit.UserDisabled, auditlog.Filter{UserID: alice}); e.Actor != adminID {
		t.Fatalf("user_disabled: %+v", e)
	}
	if e := oneAudit(t, env, audit.UserCutoff, auditlog.Filter{UserID: alice}); e.Actor != adminID ||
		e.Detail["reason"] != "user_disabled" || e.Detail["sessions"] != float64(1) {
		t.Fatalf("user_cutoff of the disabling: %+v", e)
	}
	env.Clock.Advance(2 * time.Second) // past the cutoff's nbf
	res, body = jsonDo(t, env, "PATCH", "/users/"+alice, admin.AccessToken, map[string]any{"disabled": false})
	wantStatus(t, res, body, http.StatusOK)
	oneAudit(t, env, audit.UserEnabled, auditlog.Filter{UserID: alice})
	res, body = jsonDo(t, env, "PATCH", "/users/"+alice, admin.AccessToken, map[string]any{"role": "service"})
	wantStatus(t, res, body, http.StatusOK)
	if e := oneAudit(t, env, audit.UserRoleChanged, auditlog.Filter{UserID: alice}); e.Detail["from"] != "user" || e.Detail["to"] != "service" {
		t.Fatalf("user_role_changed: %+v", e)
	}
	res, body = jsonDo(t, env, "PATCH", "/users/"+alice, admin.AccessToken, map[string]any{"role": "user"})
	wantStatus(t, res, body, http.StatusOK)
	env.Clock.Advance(2 * time.Second)

	// A reset by the admin, then a change by alice herself.
	const alicePW2, alicePW3 = "alice's second password", "alice's third password"
	res, body = jsonDo(t, env, "PUT", "/users/"+alice+"/password", admin.AccessToken, map[string]string{"password": alicePW2})
	wantStatus(t, res, body, http.StatusOK)
	if e := oneAudit(t, env, audit.PasswordReset, auditlog.Filter{UserID: alice}); e.Actor != adminID {
		t.Fatalf("password_reset: %+v", e)
	}
	env.Clock.Advance(2 * time.Second)
	a3 := env.Login(t, "alice", alicePW2)
	res, body = jsonDo(t, env, "POST", "/me/password", a3.AccessToken, map[string]string{"current_password": alicePW2, "new_password": alicePW3})
	wantStatus(t, res, body, http.StatusOK)
	if e := oneAudit(t, env, audit.PasswordChanged, auditlog.Filter{UserID: alice}); e.Actor != alice || e.SubjectUserID != alice {
		t.Fatalf("password_changed: %+v", e)
	}

	// The issuer-wide cutoff.
	res, body = jsonDo(t, env, "POST", "/sessions/revoke-all", admin.AccessToken, map[string]string{"reason": "incident 7"})
	wantStatus(t, res, body, http.StatusOK)
	if e := oneAudit(t, env, audit.IssuerCutoff, auditlog.Filter{}); e.Actor != adminID || e.Detail["reason"] != "incident 7" {
		t.Fatalf("issuer_cutoff: %+v", e)
	}

	// An operator at the command line, without a token.
	env.Clock.Advance(2 * time.Second)
	b4 := env.Login(t, "alice", alicePW3)
	cli := audit.WithActor(ctx, audit.ActorCLI)
	if _, err := env.Accounts.RevokeSession(cli, b4.SID, "", nil); err != nil {
		t.Fatal(err)
	}
	if e := oneAudit(t, env, audit.SessionRevoked, auditlog.Filter{SessionID: b4.SID}); e.Actor != audit.ActorCLI {
		t.Fatalf("session_revoked at the command line: %+v", e)
	}

	// No secret anywhere: no password, no token.
	all, _ := json.Marshal(auditRows(t, env, auditlog.Filter{}))
	for _, secret := range []string{pw, alicePW, alicePW2, alicePW3, wrong, a1.RefreshToken, a1.AccessToken, admin.AccessToken} {
		if strings.Contains(string(all), secret) {
			t.Fatalf("the audit log contains a secret (%.8s...)", secret)
		}
	}
	// Every type but the two that parts not built yet would write.
	seen := map[string]bool{}
	for _, e := range auditRows(t, env, auditlog.Filter{}) {
		seen[e.Type] = true
	}
	for _, typ := range audit.Types {
		if !seen[typ] && typ != audit.SecretAdded && typ != audit.SecretRemoved && typ != audit.KeyRotated {
			t.Errorf("no %s row was written", typ)
		}
	}
}

// TestAuditRollsBackWithItsChange: a change whose transaction fails leaves
// no audit row, and an audit row that cannot be written fails the change.
func TestAuditRollsBackWithItsChange(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	ctx := context.Background()
	env.CreateUser(t, "root", "admin", pw)
	before := len(auditRows(t, env, auditlog.Filter{}))

	// The last admin cannot be disabled: the update's transaction rolls back.
	u, err := env.Accounts.UserByName(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	disabled := true
	if _, _, err := env.Accounts.Update(ctx, u.ID, account.Change{Disabled: &disabled}, nil); err == nil {
		t.Fatal("disabling the last admin succeeded")
	}
	// A username taken: the insert fails, and its audit row with it.
	if _, err := env.Accounts.Create(ctx, "ROOT", "user", pw); err == nil {
		t.Fatal("a taken username was created")
	}
	if n := len(auditRows(t, env, auditlog.Filter{})); n != before {
		t.Fatalf("%d audit rows after two failed changes, want %d", n, before)
	}

	// The audit row fails inside the change's transaction: the change
	// itself is rolled back.
	boom := errors.New("boom")
	err = env.DB.InRevokeTx(ctx, func(tx *postgres.Tx) error {
		if _, err := tx.RevokeUserSessions(u.ID, "", postgres.RevokeRequest{Reason: "x", At: env.Clock.Now()}); err != nil {
			return err
		}
		if err := tx.Audit(postgres.AuditEvent{At: env.Clock.Now(), Type: audit.UserDisabled, SubjectUserID: u.ID}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := len(auditRows(t, env, auditlog.Filter{})); n != before {
		t.Fatalf("%d audit rows after a rolled-back transaction, want %d", n, before)
	}

	// Rows are append-only.
	if _, err := env.DB.Pool().Exec(ctx, `UPDATE audit_events SET actor = 'someone else'`); err == nil ||
		!strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE audit_events: %v, want refused", err)
	}
}

// TestAuditPaginationAndExport pages through the log with limit and
// next_cursor, filters by type and time, and streams it as NDJSON.
func TestAuditPaginationAndExport(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	start := env.Clock.Now()
	const n = 7
	for i := range n {
		env.Clock.Advance(time.Second)
		env.CreateUser(t, "user"+string(rune('a'+i)), "user", pw)
	}
	admin := env.Login(t, "root", pw).AccessToken

	type page struct {
		Items []struct {
			ID     int64          `json:"id"`
			Type   string         `json:"type"`
			At     time.Time      `json:"at"`
			Detail map[string]any `json:"detail"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"type": {audit.UserCreated}, "limit": {"3"}, "since": {start.Add(time.Second).UTC().Format(time.RFC3339)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res, body := env.Do(t, "GET", "/audit?"+q.Encode(), admin, "", nil)
		wantStatus(t, res, body, http.StatusOK)
		p := decode[page](t, body)
		for _, it := range p.Items {
			names = append(names, it.Detail["username"].(string))
		}
		if p.NextCursor == nil {
			break
		}
		if pages > n {
			t.Fatal("the pages do not end")
		}
		cursor = *p.NextCursor
	}
	if got := strings.Join(names, ","); got != "userg,userf,usere,userd,userc,userb,usera" {
		t.Fatalf("paged user_created rows, newest first: %s", got)
	}

	// until is exclusive; a bad cursor, type or time is a 400.
	res, body := env.Do(t, "GET", "/audit?type=user_created&until="+url.QueryEscape(start.Add(2*time.Second).UTC().Format(time.RFC3339)), admin, "", nil)
	wantStatus(t, res, body, http.StatusOK)
	if p := decode[page](t, body); len(p.Items) != 2 { // root's and usera's
		t.Fatalf("%d rows before start+2s, want 2: %s", len(p.Items), body)
	}
	for _, q := range []string{"cursor=nope", "type=nope", "since=yesterday", "user=nope", "limit=201",
		"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"} {
		res, body := env.Do(t, "GET", "/audit?"+q, admin, "", nil)
		wantStatus(t, res, body, http.StatusBadRequest)
	}

	// NDJSON: every row, one JSON object a line, without pages.
	req, _ := http.NewRequest("GET", env.URL+"/audit", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e postgres.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.ID == 0 || e.Type == "" {
			t.Fatalf("line %d %q: %v", lines, sc.Text(), err)
		}
		lines++
	}
	if want := 1 + n + 1; lines != want { // the users created and the admin's login
		t.Fatalf("%d NDJSON lines, want %d", lines, want)
	}

	// Not for non-admins.
	env.CreateUser(t, "plain", "user", pw)
	res, body = env.Do(t, "GET", "/audit", env.Login(t, "plain", pw).AccessToken, "", nil)
	wantStatus(t, res, body, http.StatusForbidden)
}
