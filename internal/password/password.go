// Package password hashes and verifies passwords with argon2id, stored as PHC
// strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so that parameters can
// be raised later while old hashes keep verifying.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/text/secure/precis"

	"github.com/seedc5a8123e/authd/internal/password/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// Default follows the OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
var Default = Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// ErrMalformedHash means a stored hash is not a PHC string this package can read.
var ErrMalformedHash = errors.New("password: malformed hash")

// Hasher hashes with fixed parameters. The zero value is not usable; use New.
type Hasher struct {
	p     Params
	dummy string
	// works bounds how many argon2 computations run at once, each in a work
	// area of its own taken from here and put back. Each takes Params.Memory
	// (19 MiB by default), so without a bound a flood of logins, even
	// throttled ones spread over many accounts and addresses, could take the
	// process's memory; with it, the hashes' memory is at most that many
	// areas, allocated once and reused (internal/password/argon2 says why).
	works chan *argon2.Work
	// admitted bounds the password checks that hold a connection while
	// they hash (Admit) to as many as may hash at once, so none of them
	// waits for a hashing slot with a transaction open on the database
	// unless another kind of hash (a password change) holds one.
	admitted chan struct{}
}

// New returns a Hasher using p. It precomputes a dummy hash so that a login
// for an unknown user costs the same as one for a real user.
func New(p Params) *Hasher {
	n := 2 * runtime.GOMAXPROCS(0)
	h := &Hasher{p: p, works: make(chan *argon2.Work, n), admitted: make(chan struct{}, n)}
	for range n {
		h.works <- new(argon2.Work) // sized by its first hash
	}
	d, err := h.Hash("authd-dummy-password-for-timing")
	if err != nil {
		panic(err) // only crypto/rand can fail here, and then nothing works
	}
	h.dummy = d
	return h
}

// Normalize is the form of pw that is hashed and verified: the PRECIS
// OpaqueString profile of RFC 8265 (NFC, non-ASCII spaces mapped to U+0020),
// so the same password typed on two keyboards matches. It refuses what the
// profile refuses (control characters such as U+0000 among them); the
// account policy checks a new password with it first.
func Normalize(pw string) (string, error) { return precis.OpaqueString.String(pw) }

// Hash returns the PHC string for pw, normalized, with a fresh random salt.
func (h *Hasher) Hash(pw string) (string, error) {
	pw, err := Normalize(pw)
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	salt := make([]byte, h.p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := h.idKey([]byte(pw), salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return encode(h.p, salt, key), nil
}

// Verify reports whether pw matches the PHC string encoded, and whether the
// hash should be replaced because it was made with other parameters.
//
// pw is normalized first. A hash made before passwords were normalized
// holds the raw text: when normalizing changed pw and the normalized form
// does not match, the raw form is tried too, and a match asks for a rehash
// (which stores the normalized form). Only inputs normalization changes (not
// plain ASCII) pay that second check.
func (h *Hasher) Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	check := func(s string) bool {
		return subtle.ConstantTimeCompare(h.idKey([]byte(s), salt, p.Time, p.Memory, p.Threads, uint32(len(key))), key) == 1
	}
	needsRehash = p.Memory != h.p.Memory || p.Time != h.p.Time || p.Threads != h.p.Threads ||
		uint32(len(key)) != h.p.KeyLen || uint32(len(salt)) != h.p.SaltLen
	norm, nerr := Normalize(pw)
	if nerr == nil && check(norm) {
		return true, needsRehash, nil
	}
	if nerr == nil && norm == pw {
		return false, false, nil
	}
	if check(pw) { // a legacy hash of the raw text
		return true, true, nil
	}
	return false, false, nil
}

// idKey is argon2id in one of the hasher's work areas.
func (h *Hasher) idKey(pw, salt []byte, t, m uint32, threads uint8, keyLen uint32) []byte {
	w := <-h.works
	defer func() { h.works <- w }()
	return w.IDKey(pw, salt, t, m, threads, keyLen)
}

// Admit waits until fewer checks than may hash at once are admitted, or
// ctx ends, and admits one; release ends it. A login takes it before it
// opens the transaction its check runs in (internal/throttle), so the
// logins waiting to hash hold no database connection.
func (h *Hasher) Admit(ctx context.Context) (release func(), err error) {
	select {
	case h.admitted <- struct{}{}:
		return func() { <-h.admitted }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// VerifyDummy spends the time of one Verify and always reports false. Callers
// use it when the user does not exist, so that timing does not reveal that.
func (h *Hasher) VerifyDummy(pw string) {
	_, _, _ = h.Verify(pw, h.dummy)
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) == 0 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
