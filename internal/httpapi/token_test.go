package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/token"
)

func TestPasswordGrant(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	uid := env.CreateUser(t, "Alice", "user", pw)

	res, body := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {"aLiCe"}, "password": {pw}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	tr := decode[authdtest.TokenResponse](t, body)
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 600 || tr.RefreshToken == "" || tr.AccessToken == "" {
		t.Fatalf("response = %+v", tr)
	}
	if _, err := uuid.Parse(tr.SID); err != nil {
		t.Fatalf("sid %q is not a UUID", tr.SID)
	}
	s := session(t, env, tr.SID)
	c := claimsOf(t, tr.AccessToken)
	if s.UserID != uid || s.LastJTI != c.ID || !s.AccessExp.Equal(c.ExpiresAt.Time) || s.RevokedAt != nil {
		t.Fatalf("session row %+v does not match token %+v", s, c)
	}
	if !s.ExpiresAt.Equal(env.Clock.Now().Add(720 * time.Hour)) {
		t.Fatalf("session expires_at = %v, want now+720h", s.ExpiresAt)
	}
	// The database keeps a hash of the refresh token, never the token.
	var stored []byte
	if err := env.DB.Pool().QueryRow(context.Background(), `SELECT refresh_token_hash FROM sessions WHERE id = $1`, tr.SID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if string(stored) != string(token.HashRefresh(tr.RefreshToken)) || strings.Contains(string(stored), tr.RefreshToken) {
		t.Fatal("refresh token is not stored as its SHA-256 hash")
	}
}

func TestAccessTokenHeaderClaimsAndJWKS(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	uid := env.CreateUser(t, "bob", "admin", pw)
	tr := env.Login(t, "bob", pw)

	res, body := env.Do(t, http.MethodGet, "/.well-known/jwks.json", "", "", nil)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("jwks: %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	doc := decode[keys.JWKS](t, body)
	if len(doc.Keys) != 1 {
		t.Fatalf("jwks = %s", body)
	}
	jwk := doc.Keys[0]
	x, err := base64.RawURLEncoding.DecodeString(jwk.X)
	if err != nil || jwk.Kty != "OKP" || jwk.Crv != "Ed25519" || jwk.Alg != "EdDSA" {
		t.Fatalf("jwk = %+v", jwk)
	}

	var c token.Claims
	tok, err := jwt.ParseWithClaims(tr.AccessToken, &c, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != jwk.Kid {
			t.Fatalf("kid %v is not the JWKS kid %s", tok.Header["kid"], jwk.Kid)
		}
		return ed25519.PublicKey(x), nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithTimeFunc(env.Clock.Now))
	if err != nil {
		t.Fatalf("token does not verify with the JWKS key: %v", err)
	}
	if tok.Header["typ"] != "at+jwt" {
		t.Fatalf("typ = %v", tok.Header["typ"])
	}
	now := env.Clock.Now()
	if c.Issuer != authdtest.Issuer || c.Subject != uid || len(c.Audience) != 1 || c.Audience[0] != authdtest.Audience ||
		c.SID != tr.SID || c.Role != "admin" || c.ID == "" ||
		!c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) || !c.ExpiresAt.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("claims = %+v", c)
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		t.Fatalf("jti %q is not a UUID", c.ID)
	}
	if other := claimsOf(t, env.Login(t, "bob", pw).AccessToken); other.ID == c.ID {
		t.Fatal("two tokens share a jti")
	}
}

func TestRefreshRotation(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "carol", "user", pw)
	first := env.Login(t, "carol", pw)
	env.Clock.Advance(time.Minute)

	res, body := refresh(t, env, first.RefreshToken)
	if res.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", res.StatusCode, body)
	}
	second := decode[authdtest.TokenResponse](t, body)
	if second.SID != first.SID || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatalf("rotation = %+v", second)
	}
	s := session(t, env, first.SID)
	if s.LastJTI != claimsOf(t, second.AccessToken).ID || s.LastRefreshedAt == nil || !s.LastRefreshedAt.Equal(env.Clock.Now()) {
		t.Fatalf("session not updated by the rotation: %+v", s)
	}

	// The newest refresh token keeps working.
	res, body = refresh(t, env, second.RefreshToken)
	if res.StatusCode != 200 {
		t.Fatalf("refresh with the new token: %d %s", res.StatusCode, body)
	}
	third := decode[authdtest.TokenResponse](t, body)

	t.Run("ReuseRevokesTheSession", func(t *testing.T) {
		res, body := refresh(t, env, second.RefreshToken) // rotated away by the third
		wantOAuthError(t, res, body, 400, "invalid_grant")
		s := session(t, env, first.SID)
		if s.RevokedAt == nil || *s.RevokedReason != "refresh_token_reuse" || s.RevokedByUserID != nil {
			t.Fatalf("session after reuse = %+v", s)
		}
		// The thief's and the owner's newest tokens are dead alike.
		res, body = refresh(t, env, third.RefreshToken)
		wantOAuthError(t, res, body, 400, "invalid_grant")
		res, _ = env.Do(t, http.MethodPost, "/logout/all", third.AccessToken, "", nil)
		if res.StatusCode != 401 {
			t.Fatalf("access token of a reuse-revoked session: %d, want 401", res.StatusCode)
		}
	})
	t.Run("UnknownTokenIsInvalidGrant", func(t *testing.T) {
		res, body := refresh(t, env, "not-a-token")
		wantOAuthError(t, res, body, 400, "invalid_grant")
	})
}

func TestRefreshChainNeverOutlivesTheSession(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{AccessTTL: 10 * time.Minute, SessionTTL: time.Hour})
	env.CreateUser(t, "dave", "user", pw)
	tr := env.Login(t, "dave", pw)
	end := env.Clock.Now().Add(time.Hour)

	refreshes := 0
	for {
		env.Clock.Advance(7 * time.Minute)
		res, body := refresh(t, env, tr.RefreshToken)
		if !env.Clock.Now().Before(end) {
			wantOAuthError(t, res, body, 400, "invalid_grant")
			break
		}
		if res.StatusCode != 200 {
			t.Fatalf("refresh %d at %v: %d %s", refreshes, env.Clock.Now(), res.StatusCode, body)
		}
		tr = decode[authdtest.TokenResponse](t, body)
		exp := claimsOf(t, tr.AccessToken).ExpiresAt.Time
		if exp.After(end) {
			t.Fatalf("refresh %d minted exp %v beyond the session end %v", refreshes, exp, end)
		}
		if want := env.Clock.Now().Add(10 * time.Minute); want.Before(end) && !exp.Equal(want) {
			t.Fatalf("exp = %v, want %v", exp, want)
		}
		if got := time.Duration(tr.ExpiresIn) * time.Second; got != exp.Sub(env.Clock.Now()) {
			t.Fatalf("expires_in = %v, want %v", got, exp.Sub(env.Clock.Now()))
		}
		refreshes++
	}
	if refreshes != 8 { // 7, 14, ..., 56 minutes
		t.Fatalf("chain had %d refreshes, want 8", refreshes)
	}
	if s := session(t, env, tr.SID); !s.ExpiresAt.Equal(end) {
		t.Fatalf("expires_at moved to %v", s.ExpiresAt)
	}
}

func TestConcurrentRefreshExactlyOneWins(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "erin", "user", pw)
	tr := env.Login(t, "erin", pw)

	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, _ := refresh(t, env, tr.RefreshToken)
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 400:
		default:
			t.Fatalf("unexpected status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent refreshes succeeded (%v), want exactly 1", ok, n, statuses)
	}
}

func TestClientCredentials(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	svc := env.CreateUser(t, "billing-svc", "service", "service secret 1234")
	env.CreateUser(t, "frank", "user", pw)

	t.Run("Form", func(t *testing.T) {
		tr := env.ServiceToken(t, "billing-svc", "service secret 1234")
		if tr.RefreshToken != "" || tr.AccessToken == "" {
			t.Fatalf("response = %+v, want an access token only", tr)
		}
		s := session(t, env, tr.SID)
		if s.UserID != svc || !s.ExpiresAt.Equal(s.AccessExp) {
			t.Fatalf("session = %+v, want one that ends with its token", s)
		}
		if claimsOf(t, tr.AccessToken).Role != "service" {
			t.Fatal("role claim is not service")
		}
	})
	t.Run("Basic", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape("billing-svc"), url.QueryEscape("service secret 1234"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("basic auth: %d", res.StatusCode)
		}
	})
	for name, form := range map[string]url.Values{
		"WrongSecret":    {"client_id": {"billing-svc"}, "client_secret": {"wrong secret 1234"}},
		"UnknownClient":  {"client_id": {"nobody"}, "client_secret": {"service secret 1234"}},
		"NotAService":    {"client_id": {"frank"}, "client_secret": {pw}},
		"MissingSecret":  {"client_id": {"billing-svc"}},
		"NoCredentials":  {},
		"RefreshIgnored": {"client_id": {"frank"}, "client_secret": {pw}, "refresh_token": {"x"}},
	} {
		t.Run(name, func(t *testing.T) {
			form.Set("grant_type", "client_credentials")
			res, body := env.PostForm(t, "/token", form)
			wantOAuthError(t, res, body, 401, "invalid_client")
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	uid := env.CreateUser(t, "grace", "user", pw)
	env.CreateUser(t, "heidi", "user", pw)
	if err := env.DB.SetUserDisabled(context.Background(), uid, ptr(env.Clock.Now()), env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	attempt := func(user, pass string) (int, string) {
		res, body := env.PostForm(t, "/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
		return res.StatusCode, string(body)
	}
	wrongStatus, wrongBody := attempt("heidi", "wrong password!!")
	for name, try := range map[string][2]string{
		"UnknownUser":         {"nobody-at-all", pw},
		"DisabledRightPasswd": {"grace", pw},
	} {
		status, body := attempt(try[0], try[1])
		if status != wrongStatus || body != wrongBody {
			t.Fatalf("%s: %d %s differs from wrong password: %d %s", name, status, body, wrongStatus, wrongBody)
		}
	}
	if wrongStatus != 400 || !strings.Contains(wrongBody, `"invalid_grant"`) {
		t.Fatalf("wrong password answer: %d %s", wrongStatus, wrongBody)
	}
}

func TestDisabledUserCannotRefresh(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	uid := env.CreateUser(t, "ivan", "user", pw)
	tr := env.Login(t, "ivan", pw)
	if err := env.DB.SetUserDisabled(context.Background(), uid, ptr(env.Clock.Now()), env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	res, body := refresh(t, env, tr.RefreshToken)
	wantOAuthError(t, res, body, 400, "invalid_grant")
	res, _ = env.Do(t, http.MethodPost, "/logout/all", tr.AccessToken, "", nil)
	if res.StatusCode != 401 {
		t.Fatalf("disabled user's access token: %d, want 401", res.StatusCode)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTokenBadInput(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "judy", "user", pw)
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"NoGrantType", form, "username=judy", 400, "invalid_request"},
		{"EmptyGrantType", form, "grant_type=", 400, "invalid_request"},
		{"UnknownGrant", form, "grant_type=authorization_code&code=x", 400, "unsupported_grant_type"},
		{"RepeatedParam", form, "grant_type=password&username=judy&username=judy&password=" + url.QueryEscape(pw), 400, "invalid_request"},
		{"RepeatedGrant", form, "grant_type=password&grant_type=refresh_token", 400, "invalid_request"},
		{"MissingPassword", form, "grant_type=password&username=judy", 400, "invalid_request"},
		{"MissingRefresh", form, "grant_type=refresh_token", 400, "invalid_request"},
		{"MalformedForm", form, "grant_type=password&username=%zz", 400, "invalid_request"},
		{"InvalidUTF8", form, "grant_type=password&username=%ff%fe&password=x", 400, "invalid_request"},
		{"NULInUsername", form, "grant_type=password&username=a%00b&password=x", 400, "invalid_request"},
		{"NULInClientID", form, "grant_type=client_credentials&client_id=a%00b&client_secret=x", 400, "invalid_request"},
		{"AbsurdLength", form, "grant_type=password&username=judy&password=" + strings.Repeat("a", 5000), 400, "invalid_request"},
		{"TooLarge", form, "grant_type=password&x=" + strings.Repeat("a", 70<<10), 413, "invalid_request"},
		{"NoContentType", "", "grant_type=password", 415, "invalid_request"},
		{"TextPlain", "text/plain", "grant_type=password", 415, "invalid_request"},
		{"JSONDuplicate", "application/json", `{"grant_type":"password","username":"judy","username":"x","password":"y"}`, 400, "invalid_request"},
		{"JSONNumber", "application/json", `{"grant_type":"password","username":1}`, 400, "invalid_request"},
		{"JSONArray", "application/json", `["grant_type"]`, 400, "invalid_request"},
		{"JSONTrailing", "application/json", `{"grant_type":"password"} {}`, 400, "invalid_request"},
		{"JSONTruncated", "application/json", `{"grant_type":"pass`, 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, body := env.Do(t, http.MethodPost, "/token", "", tc.ctype, strings.NewReader(tc.body))
			wantOAuthError(t, res, body, tc.status, tc.code)
			if strings.Contains(string(body), pw) {
				t.Fatal("error body echoes the password")
			}
		})
	}
	var n int
	if err := env.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("bad requests left %d sessions (err %v)", n, err)
	}
	t.Run("JSONBodyWorks", func(t *testing.T) {
		res, body := env.Do(t, http.MethodPost, "/token", "", "application/json; charset=utf-8",
			strings.NewReader(`{"grant_type":"password","username":"judy","password":"`+pw+`"}`))
		if res.StatusCode != 200 {
			t.Fatalf("json grant: %d %s", res.StatusCode, body)
		}
	})
}

func TestReuseOfAnyOlderRefreshTokenRevokes(t *testing.T) {
	env := authdtest.Start(t, authdtest.Options{})
	env.CreateUser(t, "ken", "user", pw)
	tokens := []authdtest.TokenResponse{env.Login(t, "ken", pw)}
	for range 3 {
		res, body := refresh(t, env, tokens[len(tokens)-1].RefreshToken)
		if res.StatusCode != 200 {
			t.Fatalf("refresh: %d %s", res.StatusCode, body)
		}
		tokens = append(tokens, decode[authdtest.TokenResponse](t, body))
	}
	// The first token was rotated away three rotations ago.
	res, body := refresh(t, env, tokens[0].RefreshToken)
	wantOAuthError(t, res, body, 400, "invalid_grant")
	if s := session(t, env, tokens[0].SID); s.RevokedAt == nil || *s.RevokedReason != "refresh_token_reuse" {
		t.Fatalf("replaying a token three rotations old did not revoke the session: %+v", s)
	}
	res, body = refresh(t, env, tokens[3].RefreshToken)
	wantOAuthError(t, res, body, 400, "invalid_grant")
}
