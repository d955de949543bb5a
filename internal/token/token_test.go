package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
)

// authd's user and session ids are UUIDs; Parse refuses others.
const (
	testSub = "6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59"
	testSID = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"
)

func newSigner(t testing.TB, alg string) (*Signer, *clock.Manual, *keys.Set) {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := keys.NewSet(k)
	c := clock.NewManual(time.Unix(1_800_000_000, 0))
	return NewSigner(ks, "https://authd.test", "api", 10*time.Minute, c), c, ks
}

func TestMintHeaderAndClaims(t *testing.T) {
	for _, alg := range []string{keys.EdDSA, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			iss, c, ks := newSigner(t, alg)
			m, err := iss.Mint(testSub, testSID, "admin", c.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := jwt.NewParser().ParseUnverified(m.Token, &Claims{})
			if err != nil {
				t.Fatal(err)
			}
			if tok.Header["typ"] != "at+jwt" || tok.Header["kid"] != ks.Signing().ID || tok.Header["alg"] != alg {
				t.Fatalf("header = %v", tok.Header)
			}
			got, err := iss.Parse(m.Token)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != testSub || got.SID != testSID || got.Role != "admin" || got.ID != m.JTI ||
				got.Issuer != "https://authd.test" || len(got.Audience) != 1 || got.Audience[0] != "api" {
				t.Fatalf("claims = %+v", got)
			}
			if !got.ExpiresAt.Equal(c.Now().Add(10*time.Minute)) || !got.NotBefore.Equal(c.Now()) || !got.IssuedAt.Equal(c.Now()) {
				t.Fatalf("times: iat %v nbf %v exp %v", got.IssuedAt, got.NotBefore, got.ExpiresAt)
			}
		})
	}
}

func TestMintNeverOutlivesSession(t *testing.T) {
	iss, c, _ := newSigner(t, keys.EdDSA)
	end := c.Now().Add(3 * time.Minute)
	m, err := iss.Mint(testSub, testSID, "user", end)
	if err != nil {
		t.Fatal(err)
	}
	if !m.ExpiresAt.Equal(end) {
		t.Fatalf("exp = %v, want session end %v", m.ExpiresAt, end)
	}
	if _, err := iss.Mint(testSub, testSID, "user", c.Now()); err == nil {
		t.Fatal("minted a token for a session that has ended")
	}
}

func TestParseRejects(t *testing.T) {
	iss, c, _ := newSigner(t, keys.EdDSA)
	good, _ := iss.Mint(testSub, testSID, "user", c.Now().Add(time.Hour))
	if _, err := iss.Parse(good.Token); err != nil {
		t.Fatalf("Parse(good) = %v", err)
	}
	other, _, _ := newSigner(t, keys.EdDSA)
	foreign, _ := other.Mint(testSub, testSID, "user", c.Now().Add(time.Hour))
	// Signed by authd's own key, so only the id checks stand between them
	// and a session lookup PostgreSQL would refuse with an error (500).
	sidNotUUID, _ := iss.Mint(testSub, "not-a-uuid", "user", c.Now().Add(time.Hour))
	subNotUUID, _ := iss.Mint("user-1", testSID, "user", c.Now().Add(time.Hour))

	parts := strings.Split(good.Token, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "sid": "s", "jti": "j", "exp": c.Now().Add(time.Hour).Unix()})
	hs.Header["typ"] = Type
	hsTok, _ := hs.SignedString([]byte("secret"))

	wrongTyp := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{})
	wrongTyp.Header["kid"] = iss.keys.Current().Signing().ID
	wrongTypTok, _ := wrongTyp.SignedString(iss.keys.Current().Signing().Private().(ed25519.PrivateKey))

	cases := map[string]string{
		"garbage":        "not.a.jwt",
		"alg none":       none,
		"hmac":           hsTok,
		"unknown key":    foreign.Token,
		"typ JWT":        wrongTypTok,
		"sid not a UUID": sidNotUUID.Token,
		"sub not a UUID": subNotUUID.Token,
		"tampered claim": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2],
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := iss.Parse(tok); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		c.Advance(11 * time.Minute)
		defer c.Advance(-11 * time.Minute)
		if _, err := iss.Parse(good.Token); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse(expired) = %v, want ErrInvalid", err)
		}
	})
}

func TestRefreshTokens(t *testing.T) {
	a, _ := NewRefresh()
	b, _ := NewRefresh()
	if a == b || len(a) != 43 {
		t.Fatalf("refresh tokens %q %q", a, b)
	}
	if string(HashRefresh(a)) == string(HashRefresh(b)) || len(HashRefresh(a)) != 32 {
		t.Fatal("hashes collide or have the wrong size")
	}
}

func BenchmarkMint(b *testing.B) {
	iss, c, _ := newSigner(b, keys.EdDSA)
	end := c.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Mint("6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59", "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", "user", end); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRefreshForNamesItsSession(t *testing.T) {
	sid := uuid.NewString()
	a, err := NewRefreshFor(sid)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewRefreshFor(sid)
	if a == b || len(a) != 22+1+43 {
		t.Fatalf("refresh tokens %q %q", a, b)
	}
	if got := RefreshSID(a); got != sid {
		t.Fatalf("RefreshSID = %q, want %q", got, sid)
	}
	legacy, _ := NewRefresh()
	for _, s := range []string{legacy, "", ".", a[:22] + "." + a[23:60], a[:21] + "!." + a[23:], a + "x", strings.ToUpper(sid) + "." + a[23:]} {
		if got := RefreshSID(s); got != "" {
			t.Errorf("RefreshSID(%q) = %q, want none", s, got)
		}
	}
	if _, err := NewRefreshFor("not-a-uuid"); err == nil {
		t.Error("NewRefreshFor accepted a sid that is not a UUID")
	}
}
