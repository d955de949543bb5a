package verifier

// The form check is authd's as well as the verifier's: authd's own bearer
// check (internal/token) calls CheckCompact, so the two can never refuse
// different tokens. Extend the shared table in internal/jwtcases with
// every rule.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCompactBytes bounds the token checkCompact accepts; authd's tokens are
// about 600 bytes.
const maxCompactBytes = 8 << 10

// CheckCompact reports why token is not in the one form an authd access
// token takes, before any signature is checked: a compact JWS of exactly
// three canonical base64url segments (no whitespace, no padding, at most
// MaxTokenBytes), a header without crit or b64 and with alg, kid and typ at
// most once, and claims whose registered names appear once each, spelt
// exactly, with exp, nbf and iat as JSON numbers. Verify applies it first;
// authd's own bearer check applies the same function.
func CheckCompact(token string) error { return checkCompact(token) }

// checkCompact refuses a token that is not in the one form authd writes,
// before any JWT library reads it. It checks no signature and no claim
// value, only form:
//
//   - the JWS compact serialization (RFC 7515 section 7.1), at most 8 KiB:
//     exactly three segments of base64url without padding
//     (RFC 7515 section 2), canonically encoded, so no whitespace, which
//     base64 decoders skip, can hide anywhere in a token, and one token has
//     one spelling;
//   - a header that is a JSON object without "crit" (authd uses no critical
//     extension, and a recipient must refuse one it does not understand,
//     RFC 7515 section 4.1.11) and without "b64" (RFC 7797, which needs
//     crit);
//   - claims that are a JSON object whose "exp", "nbf" and "iat" are JSON
//     numbers, as NumericDate is defined (RFC 7519 section 2): golang-jwt
//     would read "1893456000", a string, as a date;
//   - no member the decoders read given twice, or spelt otherwise than it is
//     registered: encoding/json keeps the last of two duplicates where other
//     parsers keep the first, and it matches claim names case-insensitively
//     ("SID", "ſub"), where JWT claim names are case-sensitive.
func checkCompact(token string) error {
	if len(token) > maxCompactBytes {
		return fmt.Errorf("longer than %d bytes", maxCompactBytes)
	}
	// CR and LF first: they are the bytes base64 decoders skip. Anything
	// else outside the alphabet the strict decoder refuses in the header and
	// claims, and the loop below in the signature.
	if strings.IndexByte(token, '\n') >= 0 || strings.IndexByte(token, '\r') >= 0 {
		return errors.New("line break in the token")
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return errors.New("fewer than three segments")
	}
	dot2 := strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return errors.New("fewer than three segments")
	}
	dot2 += dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return errors.New("more than three segments")
	}
	header, claims, sig := token[:dot1], token[dot1+1:dot2], token[dot2+1:]
	if header == "" || claims == "" {
		return errors.New("empty segment")
	}
	for i := 0; i < len(sig); i++ {
		if !isBase64URL[sig[i]] {
			return fmt.Errorf("byte %#02x in the signature is not base64url", sig[i])
		}
	}
	// An empty signature (alg "none") is for the signature check to refuse.
	if sig != "" && !canonicalBase64URL(sig) {
		return errors.New("signature is not canonical base64url")
	}
	// One buffer for both segments; it does not escape, and most tokens fit.
	var stack [1024]byte
	buf := stack[:]
	if n := base64URL.DecodedLen(len(header)) + base64URL.DecodedLen(len(claims)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := base64URL.Decode(buf, []byte(header))
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	h, rest := buf[:n], buf[n:]
	n, err = base64URL.Decode(rest, []byte(claims))
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	c := rest[:n]
	if err := checkMembers(h, headerNames[:], false, checkHeaderMember); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if err := checkMembers(c, claimNames[:], true, checkClaimMember); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	return nil
}

// base64URL is RFC 4648 section 5 without padding, refusing any byte
// outside the alphabet but CR and LF (which checkCompact has refused) and
// non-zero unused bits.
var base64URL = base64.RawURLEncoding.Strict()

var isBase64URL = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// canonicalBase64URL reports whether seg, all base64url characters, is the
// one encoding of the bytes it decodes to: a length that is not 1 mod 4,
// and zero bits in the last character beyond the encoded bytes.
func canonicalBase64URL(seg string) bool {
	last := seg[len(seg)-1]
	var v byte
	switch {
	case 'A' <= last && last <= 'Z':
		v = last - 'A'
	case 'a' <= last && last <= 'z':
		v = last - 'a' + 26
	case '0' <= last && last <= '9':
		v = last - '0' + 52
	case last == '-':
		v = 62
	default: // '_'
		v = 63
	}
	switch len(seg) % 4 {
	case 1:
		return false
	case 2:
		return v&0x0f == 0
	case 3:
		return v&0x03 == 0
	}
	return true
}

// The members of the header the JOSE header map is read for, and of the
// claims the claims struct decodes, by index.
var (
	headerNames = [...]string{"alg", "kid", "typ", "crit", "b64"}
	claimNames  = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "role"}
)

func checkHeaderMember(name string, _ byte) error {
	if name == "crit" || name == "b64" {
		return fmt.Errorf("%q: no critical or unencoded-payload extension is supported", name)
	}
	return nil
}

func checkClaimMember(name string, value byte) error {
	switch name {
	case "exp", "nbf", "iat":
		if value != '-' && (value < '0' || value > '9') {
			return fmt.Errorf("%q is not a JSON number", name)
		}
	}
	return nil
}

// checkMembers walks the members of the JSON object b. Each member whose
// name is one of known (equal to it under encoding/json's case folding if
// fold, exactly otherwise: struct fields are matched case-insensitively,
// map keys are not) must be spelt exactly as known says, JSON escapes
// aside, and occur once; then check gets the known name and the first byte
// of the value.
//
// It is not a JSON validator: encoding/json decodes b after it and refuses
// what is not JSON. For JSON it sees exactly the object's members. It takes
// time linear in len(b) and allocates only for a name with escapes.
func checkMembers(b []byte, known []string, fold bool, check func(name string, value byte) error) error {
	var seen uint32 // bit i: known[i] was a member
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errors.New("not a JSON object")
		}
		end, escaped := skipString(b, i)
		if end < 0 {
			return errors.New("not a JSON object")
		}
		name := b[i+1 : end-1]
		if escaped {
			var s string // a copy: b must not escape, it may be on the stack
			if err := json.Unmarshal(bytes.Clone(b[i:end]), &s); err != nil {
				return errors.New("not a JSON object")
			}
			name = []byte(s)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errors.New("not a JSON object")
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return errors.New("not a JSON object")
		}
		k := -1
		for j, want := range known {
			if string(name) == want {
				k = j
				break
			}
		}
		if k < 0 && fold {
			for _, want := range known {
				if foldEqual(name, want) {
					return fmt.Errorf("member %q is not spelt %q", string(name), want)
				}
			}
		}
		if k >= 0 {
			if seen&(1<<k) != 0 {
				return fmt.Errorf("member %q given twice", known[k])
			}
			seen |= 1 << k
			if err := check(known[k], b[i]); err != nil {
				return err
			}
		}
		if i = skipValue(b, i); i < 0 {
			return errors.New("not a JSON object")
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return errors.New("not a JSON object")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return errors.New("not a JSON object")
		}
	}
}

// foldEqual reports whether name matches want, a lower-case ASCII name, as
// encoding/json matches a member name to a struct field's: rune by rune,
// each mapped by unicode.ToUpper(unicode.ToLower(r)), so that "ſ" (U+017F)
// matches "s" and "K" (U+212A) matches "k".
func foldEqual(name []byte, want string) bool {
	j := 0
	for i := 0; i < len(name); j++ {
		if j >= len(want) {
			return false
		}
		if c := name[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != want[j] {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		if unicode.ToUpper(unicode.ToLower(r)) != unicode.ToUpper(rune(want[j])) {
			return false
		}
		i += n
	}
	return j == len(want)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] (a '"'),
// or -1 if it does not end, and whether it holds an escape.
func skipString(b []byte, i int) (end int, escaped bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index after the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, _ := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	// A number or a literal: up to the next delimiter.
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}
