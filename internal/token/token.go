// Package token mints and parses authd's access tokens (RFC 9068 JWTs) and
// makes and hashes opaque refresh tokens.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/verifier"
)

// Type is the JWT "typ" header of an access token (RFC 9068 section 2.1).
const Type = "at+jwt"

// MaxClockSkew is how far apart the clocks of authd's replicas (and of a
// host running its CLI) may be: the feed's cursor argument assumes as much
// (README, "The revocation feed"). A token's iat may be that far ahead of
// the clock checking it.
const MaxClockSkew = 5 * time.Second

// DefaultClientID is the client_id of a token whose grant named no client:
// authd itself, as the client of its own password grant.
const DefaultClientID = "authd"

// Claims are the claims of an access token: RFC 9068's iss, sub, aud, exp,
// iat, jti and client_id, with nbf, and authd's sid and role.
type Claims struct {
	jwt.RegisteredClaims
	SID  string `json:"sid"`
	Role string `json:"role"`
	// ClientID is the OAuth client the token was issued to (RFC 9068
	// section 2.2, RFC 8693 section 4.3). Empty in tokens minted before
	// authd recorded clients.
	ClientID string `json:"client_id,omitempty"`
	// Status is the draft-ietf-oauth-status-list status claim: the session's
	// entry in a status list (internal/statuslist). Absent when the status
	// list is off or the session has no entry.
	Status *verifier.Status `json:"status,omitempty"`
}

// Access is what an access token is minted for.
type Access struct {
	Subject  string // the user id
	SID      string // the session id
	Role     string
	ClientID string // the client the session was issued to; empty: DefaultClientID
	// NotAfter is the session's absolute expiry: no token outlives it.
	NotAfter time.Time
	// MinIssuedAt is the earliest iat the token may carry, in Unix seconds:
	// the second after the newest cutoff that covers the user
	// (postgres.MintFloor). A token minted within that second, right after
	// the cutoff, carries it and so is up to a second ahead of the clock;
	// internal/feed explains why that is what makes the cutoff exact.
	MinIssuedAt int64
	// Status is the session's status list entry; nil: no status claim.
	Status *verifier.StatusListRef
}

// Minted describes a freshly signed access token.
type Minted struct {
	Token     string
	JTI       string
	ExpiresAt time.Time
	IssuedAt  int64 // iat, Unix seconds
}

// Signer signs access tokens and parses the ones it (or a retired key) signed.
type Signer struct {
	keys     keys.Source
	issuer   string
	audience string
	ttl      time.Duration
	clock    clock.Clock
	parser   *jwt.Parser
}

// NewSigner returns a Signer for the given claims and lifetime.
func NewSigner(ks keys.Source, issuer, audience string, ttl time.Duration, c clock.Clock) *Signer {
	return &Signer{
		keys: ks, issuer: issuer, audience: audience, ttl: ttl, clock: c,
		// Pinned algorithm list (RFC 8725 3.1): never "none", never HMAC.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{keys.EdDSA, keys.ES256}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(c.Now),
		),
	}
}

// TTL is the configured access-token lifetime.
func (i *Signer) TTL() time.Duration { return i.ttl }

// Mint signs an access token for user sub in session sid, issued to
// DefaultClientID; the grants use MintAccess, which names the client.
func (i *Signer) Mint(sub, sid, role string, notAfter time.Time) (Minted, error) {
	return i.MintAccess(Access{Subject: sub, SID: sid, Role: role, NotAfter: notAfter})
}

// MintAccess signs an access token for a. Its expiry is the configured
// lifetime from now, but never later than a.NotAfter, the session's absolute
// expiry, so no token outlives its session. Every token carries client_id.
func (i *Signer) MintAccess(a Access) (Minted, error) {
	st := i.NewStamp()
	if a.NotAfter.Before(st.ExpiresAt) {
		st.ExpiresAt = a.NotAfter.Truncate(time.Second)
	}
	if !st.ExpiresAt.After(st.now) {
		return Minted{}, errors.New("token: session expires before the token could be valid")
	}
	if a.MinIssuedAt > st.now.Add(MaxClockSkew).Unix() {
		// The second after a cutoff is ahead by design, and a replica whose
		// clock is behind the one that decided it by up to MaxClockSkew
		// more; beyond that the clocks are not what the feed assumes.
		return Minted{}, fmt.Errorf("token: a cutoff at %d is more than %s ahead of this clock (%d)", a.MinIssuedAt, MaxClockSkew, st.now.Unix())
	}
	st.IssuedAt = max(st.IssuedAt, a.MinIssuedAt)
	return i.sign(a, st)
}

// Stamp is the part of an access token that its session row records (its
// id, iat and expiry) and the key that will sign it, chosen before the
// token is signed: a refresh records them in the statement that rotates
// and commits, and signs after the commit (session's one-statement
// refresh). Taking the key here leaves the signature nothing that can fail
// once the rotation has committed.
type Stamp struct {
	JTI       string
	IssuedAt  int64     // iat, Unix seconds: now
	ExpiresAt time.Time // now plus the configured lifetime
	now       time.Time // truncated to the second, also the token's nbf
	key       *keys.Key
}

// NewStamp returns the stamp of a token minted now with the full lifetime
// and no cutoff to respect.
func (i *Signer) NewStamp() Stamp {
	now := i.clock.Now().Truncate(time.Second)
	return Stamp{JTI: uuid.NewString(), IssuedAt: now.Unix(), ExpiresAt: now.Add(i.ttl), now: now,
		key: i.keys.Current().Signing()}
}

// MintStamped signs the token of st for a. The caller has checked what
// MintAccess would adjust: a.NotAfter is not before st.ExpiresAt and
// a.MinIssuedAt not after st.IssuedAt; a stamp that does not fit a is
// refused rather than signed with other claims than the ones recorded.
func (i *Signer) MintStamped(a Access, st Stamp) (Minted, error) {
	if st.key == nil || a.NotAfter.Before(st.ExpiresAt) || a.MinIssuedAt > st.IssuedAt {
		return Minted{}, errors.New("token: the stamp does not fit the session")
	}
	return i.sign(a, st)
}

func (i *Signer) sign(a Access, st Stamp) (Minted, error) {
	if a.ClientID == "" {
		a.ClientID = DefaultClientID
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   a.Subject,
			Audience:  jwt.ClaimStrings{i.audience},
			IssuedAt:  jwt.NewNumericDate(time.Unix(st.IssuedAt, 0)),
			NotBefore: jwt.NewNumericDate(st.now),
			ExpiresAt: jwt.NewNumericDate(st.ExpiresAt),
			ID:        st.JTI,
		},
		SID:      a.SID,
		Role:     a.Role,
		ClientID: a.ClientID,
	}
	if a.Status != nil {
		claims.Status = &verifier.Status{StatusList: a.Status}
	}
	t := jwt.NewWithClaims(st.key.Method(), claims)
	t.Header["kid"] = st.key.ID
	t.Header["typ"] = Type
	s, err := t.SignedString(st.key.Private())
	if err != nil {
		return Minted{}, fmt.Errorf("token: sign: %w", err)
	}
	return Minted{Token: s, JTI: st.JTI, ExpiresAt: st.ExpiresAt, IssuedAt: st.IssuedAt}, nil
}

// ErrInvalid is returned for any token that does not verify. The reason is
// wrapped for logs; callers answer every case the same way.
var ErrInvalid = errors.New("token: invalid access token")

// Parse verifies an access token's signature, type and claims. It accepts
// only the form Mint writes and verifier.Verify accepts (verifier.CheckCompact):
// the compact serialization without whitespace, no crit header, numeric
// dates as JSON numbers, no duplicate claims; and sid and sub must be UUIDs,
// since authd looks sessions and users up by them.
func (i *Signer) Parse(s string) (*Claims, error) {
	if err := verifier.CheckCompact(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var c Claims
	_, err := i.parser.ParseWithClaims(s, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != Type {
			return nil, fmt.Errorf("typ %q is not %s", typ, Type)
		}
		kid, _ := t.Header["kid"].(string)
		k, ok := i.keys.Current().Lookup(kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		// The key decides the algorithm, not the token (RFC 8725 3.1).
		if t.Method.Alg() != k.Alg {
			return nil, errors.New("algorithm does not match key")
		}
		return k.Public(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !isUUID(c.SID) || !isUUID(c.Subject) || c.ID == "" {
		return nil, fmt.Errorf("%w: sid and sub must be UUIDs, jti must be set", ErrInvalid)
	}
	// iat is checked here, not by the parser: a token minted in the second
	// after a cutoff carries that second (Access.MinIssuedAt), so it may be
	// up to a second ahead of the clock that minted it, and that clock up to
	// MaxClockSkew ahead of this one. (A token without iat counts as minted
	// at 0, so every cutoff denies it.)
	if c.IssuedAt != nil && c.IssuedAt.Unix() > i.clock.Now().Add(MaxClockSkew).Unix()+1 {
		return nil, fmt.Errorf("%w: iat in the future", ErrInvalid)
	}
	return &c, nil
}

// isUUID reports whether s is a UUID in the canonical 8-4-4-4-12
// hexadecimal form (either case), the form authd writes and the only one
// the verifier's sid check accepts: uuid.Parse alone also takes
// "urn:uuid:", braces and 32 bare hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// NewRefresh returns a fresh opaque refresh token: 256 bits from crypto/rand.
func NewRefresh() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: refresh: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashRefresh is what the database stores instead of the refresh token. A
// plain SHA-256 suffices: the token has 256 bits of entropy, so there is
// nothing to brute-force, and equality lookups stay indexable.
func HashRefresh(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
