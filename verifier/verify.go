package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Type is the JWT "typ" header every authd access token carries (RFC 9068).
const Type = "at+jwt"

// MaxTokenBytes bounds the size of a token Verify will look at; longer
// input fails with ErrMalformed before any parsing. authd's tokens are about
// 600 bytes.
const MaxTokenBytes = 8 << 10

// Claims are the claims of a verified access token.
type Claims struct {
	Subject   string    // "sub": the user id
	SessionID string    // "sid": the session the token belongs to
	ID        string    // "jti": the token id
	Role      string    // "role": the user's role when the token was minted
	Issuer    string    // "iss"
	Audience  []string  // "aud"
	ExpiresAt time.Time // "exp"
	IssuedAt  time.Time // "iat"; zero if absent
	NotBefore time.Time // "nbf"; zero if absent
}

// tokenClaims is the wire form golang-jwt decodes into.
type tokenClaims struct {
	jwt.RegisteredClaims
	SID  string `json:"sid"`
	Role string `json:"role"`
}

// Verify checks token and returns its claims. It makes no network call
// unless the token names a key id the Verifier has not seen, which triggers
// one shared, rate-limited JWKS fetch bounded by ctx.
//
// Failures wrap one of ErrMalformed, ErrSignature, ErrExpired,
// ErrNotYetValid, ErrIssuer, ErrAudience, ErrRevoked, ErrStale or ErrClosed.
// The checks run in that order of cost, so a forged token never reaches the
// denylist and ErrStale is only returned for an otherwise valid token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	v.mustBeFromNew()
	if v.closed.Load() {
		return nil, ErrClosed
	}
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	// The same form check as authd's own (CheckCompact), before
	// golang-jwt, which would accept a string exp, a crit header, or a
	// newline base64 decoding skips.
	if err := checkCompact(token); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	}); err != nil {
		return nil, mapError(err)
	}
	sid, ok := parseID(tc.SID)
	if !ok || tc.ID == "" || tc.Subject == "" {
		return nil, fmt.Errorf("%w: sid must be a UUID, jti and sub must be set", ErrMalformed)
	}
	if !v.cfg.FailOpen && v.stale() {
		return nil, fmt.Errorf("%w: last successful poll at %s", ErrStale, v.lastSyncTime().UTC().Format(time.RFC3339))
	}
	sub, hasSub := parseID(tc.Subject)
	var iat int64 // none: every cutoff denies it
	if tc.IssuedAt != nil {
		iat = tc.IssuedAt.Unix()
	}
	if denied, by := v.deny.deniedToken(sid, sub, hasSub, iat); denied {
		return nil, fmt.Errorf("%w: session %s (%s)", ErrRevoked, tc.SID, by)
	}
	return tc.claims(), nil
}

func (tc *tokenClaims) claims() *Claims {
	c := &Claims{
		Subject: tc.Subject, SessionID: tc.SID, ID: tc.ID, Role: tc.Role,
		Issuer: tc.Issuer, Audience: tc.Audience, ExpiresAt: tc.ExpiresAt.Time,
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.Time
	}
	return c
}

// keyFor chooses the verification key: the kid names it, the key's type
// fixes the algorithm, and the token's alg must agree (no key confusion).
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); typ != Type {
		return nil, fmt.Errorf("%w: typ %q is not %s", ErrMalformed, typ, Type)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" || len(kid) > 128 {
		return nil, fmt.Errorf("%w: missing or oversized kid", ErrMalformed)
	}
	k, err := v.keys.get(ctx, kid)
	if err != nil {
		if errors.Is(err, ErrSignature) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: fetch keys for kid %q: %w", ErrSignature, kid, err)
	}
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("%w: alg %s does not match key %s (%s)", ErrSignature, t.Method.Alg(), kid, k.alg)
	}
	return k.key, nil
}

// mapError turns golang-jwt's errors into this package's sentinels, keeping
// the original for the message.
func mapError(err error) error {
	for _, own := range []error{ErrMalformed, ErrSignature} {
		if errors.Is(err, own) {
			return fmt.Errorf("%w: %v", own, err)
		}
	}
	var want error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		want = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		want = ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		want = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		want = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		want = ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		want = ErrAudience
	default:
		want = ErrMalformed
	}
	return fmt.Errorf("%w: %v", want, err)
}
