package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/token"
)

type revokeResp struct {
	SID             string    `json:"sid"`
	RevokedAt       time.Time `json:"revoked_at"`
	RevokedReason   string    `json:"revoked_reason"`
	RevokedByUserID *string   `json:"revoked_by_user_id"`
	AlreadyRevoked  bool      `json:"already_revoked"`
}

// AC-1
func TestLogoutRevokesSessionAndRefreshToken(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	uid := env.CreateUser(t, "alice", "user", pw)
	tr := env.Login(t, "alice", pw)
	other := env.Login(t, "alice", pw)
	env.Clock.Advance(time.Minute)

	res, body := env.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil)
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"already_revoked":false}` {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}
	s := session(t, env, tr.SID)
	if s.RevokedAt == nil || !s.RevokedAt.Equal(env.Clock.Now()) || *s.RevokedReason != "user_logout" ||
		s.RevokedByUserID == nil || *s.RevokedByUserID != uid {
		t.Fatalf("session after logout = %+v", s)
	}
	res, body = refresh(t, env, tr.RefreshToken)
	wantOAuthError(t, res, body, 400, "invalid_grant")
	if s := session(t, env, other.SID); s.RevokedAt != nil {
		t.Fatal("logout revoked another session of the user")
	}
	// Other endpoints refuse the revoked token.
	res, _ = env.Do(t, http.MethodPost, "/logout/all", tr.AccessToken, "", nil)
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked token on /logout/all: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

// AC-5
func TestSecondLogoutIsIdempotentWithoutWrite(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "bob", "user", pw)
	tr := env.Login(t, "bob", pw)
	if res, _ := env.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil); res.StatusCode != 200 {
		t.Fatal("first logout failed")
	}
	// xmin changes with every write to a row, even one that sets equal values.
	rowVersion := func() (string, string) {
		var xmin, revokedAt string
		err := env.DB.Pool().QueryRow(context.Background(),
			`SELECT xmin::text, revoked_at::text FROM sessions WHERE id = $1`, tr.SID).Scan(&xmin, &revokedAt)
		if err != nil {
			t.Fatal(err)
		}
		return xmin, revokedAt
	}
	x1, r1 := rowVersion()
	env.Clock.Advance(time.Minute)
	res, body := env.Do(t, http.MethodPost, "/logout", tr.AccessToken, "", nil)
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"already_revoked":true}` {
		t.Fatalf("second logout: %d %s", res.StatusCode, body)
	}
	if x2, r2 := rowVersion(); x1 != x2 || r1 != r2 {
		t.Fatalf("second logout wrote the row: xmin %s -> %s, revoked_at %s -> %s", x1, x2, r1, r2)
	}
}

// AC-2
func TestLogoutAllRevokesEverySessionOfTheUser(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "carol", "user", pw)
	env.CreateUser(t, "dave", "user", pw)
	var sids []string
	for range 3 {
		sids = append(sids, env.Login(t, "carol", pw).SID)
	}
	bystander := env.Login(t, "dave", pw)
	caller := env.Login(t, "carol", pw) // a fourth session, the one calling
	sids = append(sids, caller.SID)

	res, body := env.Do(t, http.MethodPost, "/logout/all", caller.AccessToken, "", nil)
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"revoked":4}` {
		t.Fatalf("logout/all: %d %s", res.StatusCode, body)
	}
	for _, sid := range sids {
		if s := session(t, env, sid); s.RevokedAt == nil || *s.RevokedReason != "user_logout_all" {
			t.Fatalf("session %s = %+v", sid, s)
		}
	}
	if s := session(t, env, bystander.SID); s.RevokedAt != nil {
		t.Fatal("another user's session was revoked")
	}
}

// AC-3 and the admin endpoint's edges.
func TestAdminRevoke(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	adminID := env.CreateUser(t, "root", "admin", pw)
	env.CreateUser(t, "eve", "user", pw)
	admin := env.Login(t, "root", pw)
	victim := env.Login(t, "eve", pw)
	env.Clock.Advance(time.Minute)
	first := env.Clock.Now()

	res, body := env.Do(t, http.MethodPost, "/sessions/"+victim.SID+"/revoke", admin.AccessToken, "application/json",
		strings.NewReader(`{"reason":"GPS permission revoked, kill flight UAV-117"}`))
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	r := decode[revokeResp](t, body)
	if r.SID != victim.SID || r.AlreadyRevoked || r.RevokedByUserID == nil || *r.RevokedByUserID != adminID ||
		r.RevokedReason != "GPS permission revoked, kill flight UAV-117" || !r.RevokedAt.Equal(first) {
		t.Fatalf("revoke response = %+v", r)
	}
	if s := session(t, env, victim.SID); s.RevokedByUserID == nil || *s.RevokedByUserID != adminID {
		t.Fatalf("revoked_by_user_id = %v, want the admin %s", s.RevokedByUserID, adminID)
	}
	res, body = refresh(t, env, victim.RefreshToken)
	wantOAuthError(t, res, body, 400, "invalid_grant")

	t.Run("SecondRevocationKeepsTheFirst", func(t *testing.T) {
		env.Clock.Advance(time.Minute)
		res, body := env.Do(t, http.MethodPost, "/sessions/"+victim.SID+"/revoke", admin.AccessToken, "", nil)
		r := decode[revokeResp](t, body)
		if res.StatusCode != 200 || !r.AlreadyRevoked || !r.RevokedAt.Equal(first) ||
			r.RevokedReason != "GPS permission revoked, kill flight UAV-117" || *r.RevokedByUserID != adminID {
			t.Fatalf("second revoke: %d %+v", res.StatusCode, r)
		}
	})
	t.Run("EmptyReasonMeansDefault", func(t *testing.T) {
		s := env.Login(t, "eve", pw)
		res, body := env.Do(t, http.MethodPost, "/sessions/"+s.SID+"/revoke", admin.AccessToken, "application/json",
			strings.NewReader(`{"reason":""}`))
		if r := decode[revokeResp](t, body); res.StatusCode != 200 || r.RevokedReason != "admin_revoke" {
			t.Fatalf("empty reason: %d %s", res.StatusCode, body)
		}
	})
	for name, tc := range map[string]struct {
		sid, body string
		status    int
	}{
		"UnknownSID":    {uuid.NewString(), "", 404},
		"MalformedSID":  {"not-a-uuid", "", 400},
		"ReasonTooLong": {victim.SID, `{"reason":"` + strings.Repeat("é", 201) + `"}`, 400},
		"UnknownField":  {victim.SID, `{"reasn":"x"}`, 400},
		"NotJSON":       {victim.SID, `reason=x`, 400},
		"ReasonNotText": {victim.SID, `{"reason":5}`, 400},
	} {
		t.Run(name, func(t *testing.T) {
			res, body := env.Do(t, http.MethodPost, "/sessions/"+tc.sid+"/revoke", admin.AccessToken, "application/json", strings.NewReader(tc.body))
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s, want %d problem+json", res.StatusCode, res.Header.Get("Content-Type"), body, tc.status)
			}
		})
	}
	t.Run("ReasonOf200CharactersIsAccepted", func(t *testing.T) {
		s := env.Login(t, "eve", pw)
		res, body := env.Do(t, http.MethodPost, "/sessions/"+s.SID+"/revoke", admin.AccessToken, "application/json",
			strings.NewReader(`{"reason":"`+strings.Repeat("é", 200)+`"}`))
		if res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
	})
}

func TestAuthorization(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "root", "admin", pw)
	env.CreateUser(t, "mallory", "user", pw)
	env.CreateUser(t, "victim", "user", pw)
	admin := env.Login(t, "root", pw)
	user := env.Login(t, "mallory", pw)
	target := env.Login(t, "victim", pw)

	wantStatus := func(t *testing.T, res *http.Response, body []byte, status int, bearerErr bool) {
		t.Helper()
		if res.StatusCode != status || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%d %q %s, want %d problem+json", res.StatusCode, res.Header.Get("Content-Type"), body, status)
		}
		if status == 401 {
			h := res.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(h, "Bearer") || strings.Contains(h, `error="invalid_token"`) != bearerErr {
				t.Fatalf("WWW-Authenticate = %q", h)
			}
		}
	}
	t.Run("UserCannotRevokeOthers", func(t *testing.T) {
		res, body := env.Do(t, http.MethodPost, "/sessions/"+target.SID+"/revoke", user.AccessToken, "", nil)
		wantStatus(t, res, body, 403, false)
		if s := session(t, env, target.SID); s.RevokedAt != nil {
			t.Fatal("a user revoked a session")
		}
	})
	t.Run("UserCannotReadFeed", func(t *testing.T) {
		res, body := env.Do(t, http.MethodGet, "/sessions/revoked", user.AccessToken, "", nil)
		wantStatus(t, res, body, 403, false)
	})
	t.Run("NoToken", func(t *testing.T) {
		for _, p := range []string{"/sessions/revoked", "/logout", "/logout/all"} {
			method := http.MethodPost
			if p == "/sessions/revoked" {
				method = http.MethodGet
			}
			res, body := env.Do(t, method, p, "", "", nil)
			wantStatus(t, res, body, 401, false)
		}
	})

	// Tokens that must all be refused with invalid_token.
	foreignKey, _ := keys.Generate(keys.EdDSA)
	foreignSet, _ := keys.NewSet(foreignKey)
	foreign, _ := token.NewSigner(foreignSet, authdtest.Issuer, authdtest.Audience, time.Minute, env.Clock).
		Mint(claimsOf(t, admin.AccessToken).Subject, admin.SID, "admin", env.Clock.Now().Add(time.Hour))
	c := claimsOf(t, admin.AccessToken)
	c.Role = "admin"
	c.Subject = claimsOf(t, user.AccessToken).Subject // someone else's sub in the admin's session
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	forged.Header["kid"], forged.Header["typ"] = env.Keys.Current().Signing().ID, "at+jwt"
	_, attackerKey, _ := ed25519.GenerateKey(nil)
	forgedTok, _ := forged.SignedString(attackerKey)
	parts := strings.Split(admin.AccessToken, ".")
	for name, tok := range map[string]string{
		"Garbage":      "garbage",
		"UnknownKey":   foreign.Token,
		"ForgedSig":    forgedTok,
		"AlgNone":      parts[0][:0] + "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + ".",
		"SwappedParts": parts[0] + "." + strings.Split(user.AccessToken, ".")[1] + "." + parts[2],
	} {
		t.Run("Refuses"+name, func(t *testing.T) {
			res, body := env.Do(t, http.MethodGet, "/sessions/revoked", tok, "", nil)
			wantStatus(t, res, body, 401, true)
		})
	}
	t.Run("RefusesExpired", func(t *testing.T) {
		env.Clock.Advance(11 * time.Minute)
		defer env.Clock.Advance(-11 * time.Minute)
		res, body := env.Do(t, http.MethodGet, "/sessions/revoked", admin.AccessToken, "", nil)
		wantStatus(t, res, body, 401, true)
	})
	t.Run("RevokedAdminCannotRevoke", func(t *testing.T) {
		if res, _ := env.Do(t, http.MethodPost, "/logout", admin.AccessToken, "", nil); res.StatusCode != 200 {
			t.Fatal("admin logout failed")
		}
		res, body := env.Do(t, http.MethodPost, "/sessions/"+target.SID+"/revoke", admin.AccessToken, "", nil)
		wantStatus(t, res, body, 401, true)
		if s := session(t, env, target.SID); s.RevokedAt != nil {
			t.Fatal("a revoked admin token revoked a session")
		}
	})
}

func TestSessionLimitRevokesTheOldest(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{MaxSessionsPerUser: 3})
	env.CreateUser(t, "many", "user", pw)
	env.CreateUser(t, "verifier-svc", "service", "verifier service secret")
	var logins []authdtest.TokenResponse
	for range 5 {
		logins = append(logins, env.Login(t, "many", pw))
		env.Clock.Advance(time.Second) // distinct created_at, so "oldest" is defined
	}
	for i, l := range logins {
		s := session(t, env, l.SID)
		if evicted := i < 2; evicted != (s.RevokedAt != nil) || (evicted && *s.RevokedReason != "session_limit") {
			t.Fatalf("login %d: %+v (want the two oldest revoked with session_limit)", i, s)
		}
	}
	svc := env.ServiceToken(t, "verifier-svc", "verifier service secret")
	res, body := env.Do(t, http.MethodGet, "/sessions/revoked", svc.AccessToken, "", nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), logins[0].SID) || !strings.Contains(string(body), logins[1].SID) {
		t.Fatalf("feed %d %s lacks the evicted sessions", res.StatusCode, body)
	}
}
