package verifiertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/verifier"
)

// key is a key in the Server's JWKS; priv is nil for a key only published.
type key struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
	jwk    map[string]string
}

var b64 = base64.RawURLEncoding

// newKey makes a fresh Ed25519 key, authd's default key type.
func (s *Server) newKey() *key {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic("verifiertest: generate key: " + err.Error())
	}
	s.keySeq++
	kid := fmt.Sprintf("key-%d", s.keySeq)
	k, _ := publicKey(kid, priv.Public())
	k.priv = priv
	return k
}

// publicKey is the JWK of pub, with the members authd publishes.
func publicKey(kid string, pub crypto.PublicKey) (*key, error) {
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		return &key{kid: kid, alg: "EdDSA", method: jwt.SigningMethodEdDSA, jwk: map[string]string{
			"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub), "kid": kid, "alg": "EdDSA", "use": "sig",
		}}, nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("verifiertest: only P-256 ECDSA keys can be published")
		}
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, fmt.Errorf("verifiertest: %w", err)
		}
		return &key{kid: kid, alg: "ES256", method: jwt.SigningMethodES256, jwk: map[string]string{
			"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:]),
			"kid": kid, "alg": "ES256", "use": "sig",
		}}, nil
	}
	return nil, fmt.Errorf("verifiertest: cannot publish a %T: authd signs with Ed25519 or P-256 keys", pub)
}

// RotateKey makes a new Ed25519 key the signing key, as authd's key
// rotation does, and returns its key id. The previous keys stay published,
// so their tokens stay valid. A Verifier fetches the new key when it first
// sees a token naming it, at most once per KeyRefetchInterval.
func (s *Server) RotateKey() (kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.newKey()
	s.keys = append([]*key{k}, s.keys...)
	return k.kid
}

// PublishKey adds pub (an ed25519.PublicKey or a P-256 *ecdsa.PublicKey) to
// the JWKS under kid without signing with it, for tests that sign tokens of
// their own: with another algorithm, or with headers Mint would not write.
func (s *Server) PublishKey(kid string, pub crypto.PublicKey) error {
	k, err := publicKey(kid, pub)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	return nil
}

// A MintOption changes the token Mint signs.
type MintOption func(*mintOptions)

type mintOptions struct {
	lifetime time.Duration
	claims   map[string]any
	header   map[string]any
}

// ExpiresIn sets the token's lifetime: exp is d after iat. A negative d
// mints a token that has already expired. Default DefaultTokenLifetime.
func ExpiresIn(d time.Duration) MintOption {
	return func(o *mintOptions) { o.lifetime = d }
}

// WithClaim sets the claim name to value, replacing what Mint writes there
// ("aud", "iss", "exp" as Unix seconds, ...); a nil value removes the
// claim. It is for testing what a Verifier refuses: authd's own tokens
// always carry the claims Mint writes.
func WithClaim(name string, value any) MintOption {
	return func(o *mintOptions) { o.claims[name] = value }
}

// WithHeader sets the JOSE header name to value; a nil value removes it.
// Even "alg" can be set this way: the token is still signed with the
// Server's key, to test that a Verifier refuses a header that does not
// match the key.
func WithHeader(name string, value any) MintOption {
	return func(o *mintOptions) { o.header[name] = value }
}

// Mint signs an access token as authd does at login or refresh: subject
// sub, session sid, role, the Server's issuer and audience, a new jti, iat
// and nbf now (whole seconds, like authd) and exp DefaultTokenLifetime
// later, header typ "at+jwt" and the signing key's kid. A Verifier on s
// accepts it as long as sid is a UUID (authd's are) and the session is not
// revoked. Options change the token to test what a Verifier refuses.
func (s *Server) Mint(sub, sid, role string, opts ...MintOption) string {
	o := mintOptions{lifetime: DefaultTokenLifetime, claims: map[string]any{}, header: map[string]any{}}
	for _, opt := range opts {
		opt(&o)
	}
	now := s.now().Truncate(time.Second)
	jti := newUUID()
	claims := jwt.MapClaims{
		"iss": s.issuer, "sub": sub, "aud": []string{s.audience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(o.lifetime).Unix(),
		"jti": jti, "sid": sid, "role": role,
	}
	overwrite(claims, o.claims)

	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[0]
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	tok.Header["typ"] = verifier.Type
	overwrite(tok.Header, o.header)
	signed, err := tok.SignedString(k.priv)
	if err != nil {
		panic("verifiertest: sign: " + err.Error())
	}

	ses := s.sessions[sid]
	if j, ok := claims["jti"].(string); ok {
		ses.jti = j
	}
	if exp, ok := unixSeconds(claims["exp"]); ok && exp > ses.exp {
		ses.exp = exp
	}
	if ses.jti == "" {
		ses.jti = jti
	}
	if ses.exp == 0 {
		ses.exp = now.Add(DefaultTokenLifetime).Unix()
	}
	s.sessions[sid] = ses
	return signed
}

// overwrite sets dst[k] to v for every entry of src, deleting it for nil.
func overwrite(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

func unixSeconds(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case float64:
		return int64(v), true
	case *jwt.NumericDate:
		return v.Unix(), true
	}
	return 0, false
}

func newUUID() string { return uuid.NewString() }
