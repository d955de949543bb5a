package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KEKSize is the length of a key-encryption key: AES-256.
const KEKSize = 32

// KEK is the key-encryption key that seals signing keys stored in the
// database (AES-256-GCM). The database alone never holds a usable private
// key: whoever reads its rows (a backup, a replica, a support dump) needs
// the KEK too, which lives only in authd's environment or a file.
type KEK struct {
	aead cipher.AEAD
	id   string
}

// ErrWrongKEK means a sealed key was sealed under another key-encryption key.
var ErrWrongKEK = errors.New("keys: the signing key was sealed with a different AUTHD_KEY_ENCRYPTION_KEY")

// NewKEK returns a fresh key-encryption key from crypto/rand, in the form
// ParseKEK reads: base64url without padding, so it never starts with "/"
// or "./" and reads as a value, not a path.
func NewKEK() (string, error) {
	b := make([]byte, KEKSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keys: generate KEK: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ParseKEK reads AUTHD_KEY_ENCRYPTION_KEY: the base64 (standard or URL
// alphabet, padded or not) of 32 random bytes, or else the path of a file
// holding that (absolute, or starting with "./"; surrounding whitespace is
// ignored). A value that decodes to 32 bytes is the key even if it starts
// with "/" (a third of standard base64 keys do). Errors never quote the
// value, nor a path that may be a mistyped key.
func ParseKEK(v string) (*KEK, error) {
	v = strings.TrimSpace(v)
	raw, err := decodeBase64(v)
	if (err != nil || len(raw) != KEKSize) && (strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./")) {
		data, ferr := os.ReadFile(v)
		if ferr != nil {
			var pe *fs.PathError
			if errors.As(ferr, &pe) {
				ferr = pe.Err
			}
			return nil, fmt.Errorf("keys: AUTHD_KEY_ENCRYPTION_KEY is neither a key nor a readable file: %w", ferr)
		}
		raw, err = decodeBase64(strings.TrimSpace(string(data)))
	}
	if err != nil || len(raw) != KEKSize {
		return nil, fmt.Errorf("keys: the key-encryption key must be the base64 of %d random bytes (generate one with `authd keys kek`)", KEKSize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: key-encryption key: %w", err)
	}
	// The id names the KEK without revealing it, so a row sealed under
	// another KEK is reported as such rather than as a corrupt row.
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("authd key-encryption key id"))
	return &KEK{aead: aead, id: hex.EncodeToString(mac.Sum(nil)[:8])}, nil
}

func decodeBase64(v string) ([]byte, error) {
	v = strings.TrimRight(v, "=")
	if strings.ContainsAny(v, "-_") {
		return base64.RawURLEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// ID names the KEK; it is stored beside each sealed key.
func (k *KEK) ID() string { return k.id }

// sealAAD binds a sealed key to its kid and algorithm, so a row's
// ciphertext cannot be moved to another row.
func sealAAD(kid, alg string) []byte {
	return []byte("authd signing key\x00" + kid + "\x00" + alg)
}

// Seal encrypts key's PKCS#8 form: a 12-byte random nonce, then the
// AES-256-GCM ciphertext and tag.
func (k *KEK) Seal(key *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key.private)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal: %w", err)
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(der)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, der, sealAAD(key.ID, key.Alg)), nil
}

// Open decrypts what Seal wrote for kid and alg, sealed under the KEK named
// kekID, and checks that the key is the one kid names.
func (k *KEK) Open(kid, alg, kekID string, sealed []byte) (*Key, error) {
	if kekID != k.id {
		return nil, fmt.Errorf("%w (key %s was sealed with KEK %s, this one is %s)", ErrWrongKEK, kid, kekID, k.id)
	}
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, fmt.Errorf("keys: sealed key %s is truncated", kid)
	}
	der, err := k.aead.Open(nil, sealed[:n], sealed[n:], sealAAD(kid, alg))
	if err != nil {
		return nil, fmt.Errorf("keys: sealed key %s does not open: altered, or not the row it was sealed for", kid)
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: sealed key %s: parse PKCS#8: %w", kid, err)
	}
	key, err := fromPKCS8(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: sealed key %s: %w", kid, err)
	}
	if key.ID != kid || key.Alg != alg {
		return nil, fmt.Errorf("keys: sealed key %s holds key %s (%s), not %s", kid, key.ID, key.Alg, alg)
	}
	return key, nil
}
