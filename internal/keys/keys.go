// Package keys loads, generates and publishes the keys that sign access
// tokens. The first key of a Set signs; the others are retired keys still
// published so that tokens they signed keep verifying until they expire.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithms authd signs with. Verifiers accept exactly these.
const (
	EdDSA = "EdDSA"
	ES256 = "ES256"
)

// Key is one signing key.
type Key struct {
	ID      string // RFC 7638 JWK thumbprint
	Alg     string // EdDSA or ES256
	private crypto.Signer
}

// Public returns the public half of the key.
func (k *Key) Public() crypto.PublicKey { return k.private.Public() }

// Method returns the golang-jwt signing method for the key's algorithm.
func (k *Key) Method() jwt.SigningMethod {
	if k.Alg == ES256 {
		return jwt.SigningMethodES256
	}
	return jwt.SigningMethodEdDSA
}

// Private returns the signing key in the form golang-jwt expects.
func (k *Key) Private() crypto.Signer { return k.private }

// Set is the signing key plus every retired key still published.
type Set struct {
	keys []*Key
	byID map[string]*Key
}

// NewSet builds a Set; keys[0] signs. Duplicate keys are an error.
func NewSet(keys ...*Key) (*Set, error) {
	if len(keys) == 0 {
		return nil, errors.New("keys: empty key set")
	}
	s := &Set{keys: keys, byID: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("keys: key %s listed twice", k.ID)
		}
		s.byID[k.ID] = k
	}
	return s, nil
}

// Signing returns the key that signs new tokens.
func (s *Set) Signing() *Key { return s.keys[0] }

// Lookup returns the key named kid, or false if the set does not hold it.
func (s *Set) Lookup(kid string) (*Key, bool) {
	k, ok := s.byID[kid]
	return k, ok
}

// All returns every key, the signing key first.
func (s *Set) All() []*Key { return s.keys }

// Generate makes a new key for alg (EdDSA or ES256) from crypto/rand.
func Generate(alg string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q (want EdDSA or ES256)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	return newKey(priv)
}

func newKey(priv crypto.Signer) (*Key, error) {
	k := &Key{private: priv}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		k.Alg = EdDSA
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("keys: only P-256 ECDSA keys are supported")
		}
		k.Alg = ES256
	default:
		return nil, fmt.Errorf("keys: unsupported key type %T (want Ed25519 or P-256)", priv)
	}
	k.ID = thumbprint(k.JWK())
	return k, nil
}

// ParsePEM reads one PKCS#8 "PRIVATE KEY" PEM block.
func ParsePEM(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("keys: want a PKCS#8 PEM block of type PRIVATE KEY")
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("keys: parse PKCS#8: %w", err)
	}
	return fromPKCS8(raw)
}

// fromPKCS8 is the Key of what x509.ParsePKCS8PrivateKey returned.
func fromPKCS8(raw any) (*Key, error) {
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: unsupported key type %T", raw)
	}
	return newKey(signer)
}

// LoadFiles reads each path as a PKCS#8 PEM key; the first one signs.
// Errors name the file, never its content.
func LoadFiles(paths []string) (*Set, error) {
	var ks []*Key
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("keys: read %s: %w", p, err)
		}
		k, err := ParsePEM(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		ks = append(ks, k)
	}
	return NewSet(ks...)
}

// MarshalPEM encodes the private key as PKCS#8 PEM.
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFile writes the key to path with mode 0600, refusing to overwrite.
func (k *Key) WriteFile(path string) error {
	data, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys: create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	return f.Close()
}

// JWK is one public key in RFC 7517 form.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// JWKS is a JWK Set document (RFC 7517 section 5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

var b64 = base64.RawURLEncoding

// JWK returns the public key with only the members RFC 7638 hashes.
func (k *Key) JWK() JWK {
	switch p := k.private.Public().(type) {
	case ed25519.PublicKey:
		return JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(p)}
	case *ecdsa.PublicKey:
		// Coordinates are fixed-width (32 bytes for P-256), as RFC 7518 6.2.1.2 requires.
		raw, _ := p.ECDH() // P-256 always converts
		b := raw.Bytes()   // 0x04 || X || Y
		return JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(b[1:33]), Y: b64.EncodeToString(b[33:65])}
	}
	panic("keys: unreachable key type")
}

// thumbprint is the RFC 7638 SHA-256 thumbprint: the required members in
// lexicographic order, no whitespace.
func thumbprint(j JWK) string {
	var canon string
	if j.Kty == "EC" {
		canon = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, j.Crv, j.Kty, j.X, j.Y)
	} else {
		canon = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q}`, j.Crv, j.Kty, j.X)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

// Document returns the JWKS of every key in the set.
func (s *Set) Document() JWKS {
	doc := JWKS{Keys: make([]JWK, 0, len(s.keys))}
	for _, k := range s.keys {
		j := k.JWK()
		j.Kid, j.Alg, j.Use = k.ID, k.Alg, "sig"
		doc.Keys = append(doc.Keys, j)
	}
	return doc
}
