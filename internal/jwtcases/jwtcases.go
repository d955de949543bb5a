// Package jwtcases is one table of access tokens, good and hostile, that
// authd's own bearer check (token.Signer.Parse) and the public verifier
// (verifier.Verifier.Verify) must both accept or both refuse. The table
// tests of both packages run it, so the two cannot drift apart again; the
// verifier's fuzz corpus is seeded with its hostile tokens.
//
// Every token is built from raw header and claims JSON and signed, over
// exactly the bytes it carries, with the key under test, so a case can hold
// what no JWT library would write: a string "exp", a "crit" header,
// duplicate member names, whitespace in the compact form.
//
// It is test support only: nothing but tests may import it.
package jwtcases

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The ids of the tokens Cases builds. They are fixed, so that the tokens
// of an Ed25519 key are the same on every run (the fuzz corpus is made of
// them).
const (
	Subject   = "5b0e6f0a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
	SessionID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	TokenID   = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
	Role      = "user"
)

// Lifetime is the lifetime of the valid tokens: exp is Params.Now plus
// Lifetime.
const Lifetime = 10 * time.Minute

// A Key is the key the parser under test verifies with.
type Key struct {
	ID     string        // the kid the parser knows the key by
	Alg    string        // "EdDSA" or "ES256"
	Signer crypto.Signer // an ed25519.PrivateKey or a P-256 *ecdsa.PrivateKey
}

// Params describe the parser under test.
type Params struct {
	Key      Key
	Issuer   string    // the "iss" it expects
	Audience string    // the "aud" it expects
	Now      time.Time // the time on its clock
}

// A Case is one token and the answer both parsers must give.
type Case struct {
	Name  string
	Token string
	// Valid: both token.Signer.Parse and verifier.Verifier.Verify accept
	// the token.
	Valid bool
	// AuthdOnly marks the one rule that only authd enforces: sub must be a
	// UUID, because authd looks its users up by it (a non-UUID made the
	// bearer check answer 500). token.Signer.Parse refuses these tokens;
	// verifier.Verify accepts them, as it always has, since services' tests
	// mint tokens for subjects such as "alice" with verifiertest. Valid is
	// false for them.
	AuthdOnly bool
}

// member is one member of a JSON object: name is written between quotes as
// it is (so it may hold JSON escapes), value is raw JSON.
type member struct{ name, value string }

// object is a JSON object with its members in order, duplicates allowed.
type object []member

// with returns o with the first member called name set to value, or value
// appended as a new member.
func (o object) with(name, value string) object {
	out := append(object(nil), o...)
	for i := range out {
		if out[i].name == name {
			out[i].value = value
			return out
		}
	}
	return append(out, member{name, value})
}

// plus returns o with another member appended, even if o has one of that
// name.
func (o object) plus(name, value string) object {
	return append(append(object(nil), o...), member{name, value})
}

// without returns o without the members called name.
func (o object) without(name string) object {
	var out object
	for _, m := range o {
		if m.name != name {
			out = append(out, m)
		}
	}
	return out
}

// String is o as compact JSON.
func (o object) String() string { return o.join(`{`, `,`, `:`, `}`) }

// spaced is o as JSON with insignificant whitespace around every token.
func (o object) spaced() string { return o.join("{\n  ", " ,\n  ", " : ", "\n}\n") }

func (o object) join(open, sep, colon, end string) string {
	var b strings.Builder
	b.WriteString(open)
	for i, m := range o {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(`"` + m.name + `"` + colon + m.value)
	}
	b.WriteString(end)
	return b.String()
}

// str is s as a JSON string.
func str(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// num is n as a JSON number.
func num(n int64) string { return strconv.FormatInt(n, 10) }

var b64 = base64.RawURLEncoding

// Sign returns the compact JWS of header and claims (raw JSON, used as
// they are) signed with k by the algorithm k.Alg.
func Sign(k Key, header, claims string) string {
	return SignSegments(k, b64.EncodeToString([]byte(header)), b64.EncodeToString([]byte(claims)))
}

// SignSegments returns header + "." + claims + "." + the signature with k
// over exactly those bytes: the segments are used as they are, so they may
// hold what base64url does not (padding, whitespace).
func SignSegments(k Key, header, claims string) string {
	input := header + "." + claims
	sig, err := jwt.GetSigningMethod(k.Alg).Sign(input, k.Signer)
	if err != nil {
		panic(fmt.Sprintf("jwtcases: sign with %s key %q: %v", k.Alg, k.ID, err))
	}
	return input + "." + b64.EncodeToString(sig)
}

// otherEd25519 is a fixed key no parser under test knows.
var otherEd25519 = func() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "jwtcases: a key nobody publishes")
	return ed25519.NewKeyFromSeed(seed)
}()

// otherKey is a key of k's algorithm that is not k, under k's kid.
func otherKey(k Key) Key {
	if k.Alg == "ES256" {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic("jwtcases: " + err.Error())
		}
		return Key{ID: k.ID, Alg: k.Alg, Signer: priv}
	}
	return Key{ID: k.ID, Alg: k.Alg, Signer: otherEd25519}
}

// publicBytes are the bytes of k's public key an HMAC key-confusion forgery
// would use as its secret: the raw Ed25519 key, or the uncompressed P-256
// point.
func publicBytes(k Key) []byte {
	switch pub := k.Signer.Public().(type) {
	case ed25519.PublicKey:
		return pub
	case *ecdsa.PublicKey:
		b, err := pub.Bytes()
		if err != nil {
			panic("jwtcases: " + err.Error())
		}
		return b
	}
	panic(fmt.Sprintf("jwtcases: unsupported key %T", k.Signer))
}

// nonCanonical returns seg, a base64url segment without padding, with the
// unused low bits of its last character set: it decodes to the same bytes
// unless the decoder is strict. It returns "" when seg has no unused bits.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var unused int
	switch len(seg) % 4 {
	case 2:
		unused = 0x0f
	case 3:
		unused = 0x03
	default:
		return ""
	}
	v := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[v|unused])
}

// Cases returns the table for the parser p describes. The valid tokens are
// valid at p.Now and for Lifetime after it; every time-based refusal is an
// hour or more off, beyond any leeway.
func Cases(p Params) []Case {
	k := p.Key
	now := p.Now.Unix()
	hdr := object{{"alg", str(k.Alg)}, {"kid", str(k.ID)}, {"typ", str("at+jwt")}}
	cl := object{
		{"iss", str(p.Issuer)}, {"sub", str(Subject)}, {"aud", `[` + str(p.Audience) + `]`},
		{"iat", num(now)}, {"nbf", num(now)}, {"exp", num(now + int64(Lifetime/time.Second))},
		{"jti", str(TokenID)}, {"sid", str(SessionID)}, {"role", str(Role)},
	}
	tok := func(h, c object) string { return Sign(k, h.String(), c.String()) }
	claims := func(c object) string { return tok(hdr, c) }
	header := func(h object) string { return tok(h, cl) }
	enc := func(s string) string { return b64.EncodeToString([]byte(s)) }

	valid := tok(hdr, cl)
	parts := strings.Split(valid, ".")
	h64, c64, s64 := parts[0], parts[1], parts[2]
	hour := int64(time.Hour / time.Second)
	exp := now + int64(Lifetime/time.Second)

	var cs []Case
	good := func(name, token string) { cs = append(cs, Case{Name: name, Token: token, Valid: true}) }
	bad := func(name, token string) { cs = append(cs, Case{Name: name, Token: token}) }
	authdOnly := func(name, token string) { cs = append(cs, Case{Name: name, Token: token, AuthdOnly: true}) }

	// Tokens both accept.
	good("valid", valid)
	good("valid/aud a string", claims(cl.with("aud", str(p.Audience))))
	good("valid/aud an array with another audience too", claims(cl.with("aud", `["another",`+str(p.Audience)+`]`)))
	good("valid/exp not a whole number", claims(cl.with("exp", num(exp)+".5")))
	good("valid/exp in exponent form", claims(cl.with("exp", num(exp)+"e0")))
	good("valid/no nbf", claims(cl.without("nbf")))
	good("valid/no iat", claims(cl.without("iat")))
	good("valid/unknown claim", claims(cl.plus("scope", str("read"))))
	good("valid/unknown header parameter", header(hdr.plus("x-trace", str("ignored"))))
	good("valid/unknown header parameter spelt like typ", header(hdr.plus("TYP", str("JWT"))))
	good("valid/JSON whitespace inside header and claims", Sign(k, hdr.spaced(), cl.spaced()))
	good("valid/sid in upper case", claims(cl.with("sid", str(strings.ToUpper(SessionID)))))
	good("valid/jti not a UUID", claims(cl.with("jti", str("token-1"))))
	good("valid/sid spelt with an escape", claims(cl.without("sid").plus(`s\u0069d`, str(SessionID))))
	good("valid/a nested object with a string exp", claims(cl.plus("ext", `{"exp":"soon","sub":[1,{"sid":null}]}`)))
	good("valid/a string holding JSON syntax", claims(cl.plus("note", str(`","exp":"1","x":{[`))))

	// Tokens only authd refuses (see Case.AuthdOnly).
	authdOnly("sub/not a UUID", claims(cl.with("sub", str("alice"))))
	authdOnly("sub/a UUID URN", claims(cl.with("sub", str("urn:uuid:"+Subject))))
	authdOnly("sub/a UUID without hyphens", claims(cl.with("sub", str(strings.ReplaceAll(Subject, "-", "")))))

	// The compact serialization (RFC 7515 section 7.1): exactly three
	// base64url segments, no padding, no whitespace anywhere, canonical
	// encodings, at most 8 KiB.
	bad("compact/trailing newline", valid+"\n")
	bad("compact/trailing CRLF", valid+"\r\n")
	bad("compact/trailing space", valid+" ")
	bad("compact/trailing tab", valid+"\t")
	bad("compact/leading space", " "+valid)
	bad("compact/leading newline", "\n"+valid)
	bad("compact/newline inside the signature", h64+"."+c64+"."+s64[:20]+"\n"+s64[20:])
	bad("compact/newline inside the claims, signed over", SignSegments(k, h64, c64[:20]+"\n"+c64[20:]))
	bad("compact/CR inside the header, signed over", SignSegments(k, h64[:10]+"\r"+h64[10:], c64))
	bad("compact/padded segments, signed over", func() string {
		h, c := base64.URLEncoding.EncodeToString([]byte(hdr.String())), base64.URLEncoding.EncodeToString([]byte(cl.String()+"  "))
		if !strings.Contains(h+c, "=") {
			c = base64.URLEncoding.EncodeToString([]byte(cl.String() + " "))
		}
		return SignSegments(k, h, c)
	}())
	bad("compact/padded signature", valid+"==")
	bad("compact/base64 not base64url, signed over", func() string {
		// "~" is 0x7e: wherever it is the last byte of a 3-byte group, its
		// low six bits encode as "+".
		c := base64.RawStdEncoding.EncodeToString([]byte(cl.plus("pad", str("~~~")).String()))
		if !strings.ContainsAny(c, "+/") {
			panic("jwtcases: no + or / in " + c)
		}
		return SignSegments(k, h64, c)
	}())
	if s := nonCanonical(s64); s != "" {
		bad("compact/non-canonical base64url signature", h64+"."+c64+"."+s)
	}
	bad("compact/non-canonical base64url claims, signed over", func() string {
		for pad := ""; len(pad) < 3; pad += "x" { // one of three lengths has unused bits
			if c := nonCanonical(enc(cl.plus("pad", str(pad)).String())); c != "" {
				return SignSegments(k, h64, c)
			}
		}
		panic("jwtcases: unreachable")
	}())
	bad("compact/two segments", h64+"."+c64)
	bad("compact/four segments", valid+"."+s64)
	bad("compact/five segments (JWE form)", h64+"."+c64+".."+s64+"."+s64)
	bad("compact/empty signature", h64+"."+c64+".")
	bad("compact/empty header, signed over", SignSegments(k, "", c64))
	bad("compact/empty", "")
	bad("compact/only dots", "..")
	bad("compact/Bearer prefix", "Bearer "+valid)
	bad("compact/oversized, signed", header(hdr.plus("pad", str(strings.Repeat("A", 8<<10)))))
	bad("compact/JWS JSON serialization, flattened",
		`{"protected":"`+h64+`","payload":"`+c64+`","signature":"`+s64+`"}`)
	bad("compact/JWS JSON serialization, general",
		`{"payload":"`+c64+`","signatures":[{"protected":"`+h64+`","signature":"`+s64+`"}]}`)
	bad("compact/tampered claims", h64+"."+enc(cl.with("role", str("admin")).String())+"."+s64)
	bad("compact/signed by another key under the same kid", Sign(otherKey(k), hdr.String(), cl.String()))

	// The header (RFC 7515 section 4, RFC 9068 section 2.1, RFC 8725).
	other := map[string]string{"EdDSA": "ES256", "ES256": "EdDSA"}[k.Alg]
	bad("header/crit naming a registered claim", header(hdr.plus("crit", `["exp"]`)))
	bad("header/crit empty", header(hdr.plus("crit", `[]`)))
	bad("header/crit b64 with b64 false", header(hdr.plus("b64", "false").plus("crit", `["b64"]`)))
	bad("header/b64 false without crit", header(hdr.plus("b64", "false")))
	bad("header/b64 true", header(hdr.plus("b64", "true")))
	bad("header/typ JWT", header(hdr.with("typ", str("JWT"))))
	bad("header/typ missing", header(hdr.without("typ")))
	bad("header/typ in upper case", header(hdr.with("typ", str("AT+JWT"))))
	bad("header/typ application/at+jwt", header(hdr.with("typ", str("application/at+jwt"))))
	bad("header/typ not a string", header(hdr.with("typ", "1")))
	bad("header/typ twice, the first JWT", tok(object{{"alg", str(k.Alg)}, {"kid", str(k.ID)}, {"typ", str("JWT")}, {"typ", str("at+jwt")}}, cl))
	bad("header/typ twice, the same", header(hdr.plus("typ", str("at+jwt"))))
	bad("header/alg twice, escaped", header(hdr.plus(`a\u006cg`, str(k.Alg))))
	bad("header/kid missing", header(hdr.without("kid")))
	bad("header/kid empty", header(hdr.with("kid", `""`)))
	bad("header/kid unknown", header(hdr.with("kid", str("unknown"))))
	bad("header/kid not a string", header(hdr.with("kid", `{"x":1}`)))
	bad("header/kid twice, the first unknown", tok(object{{"alg", str(k.Alg)}, {"kid", str("unknown")}, {"kid", str(k.ID)}, {"typ", str("at+jwt")}}, cl))
	bad("header/alg none, unsigned", enc(hdr.with("alg", str("none")).String())+"."+c64+".")
	bad("header/alg none, signed", header(hdr.with("alg", str("none"))))
	bad("header/alg missing", header(hdr.without("alg")))
	bad("header/alg in lower case", header(hdr.with("alg", str(strings.ToLower(k.Alg)))))
	bad("header/alg of the other algorithm", header(hdr.with("alg", str(other))))
	bad("header/alg HS256 keyed with the public key", func() string {
		input := enc(hdr.with("alg", str("HS256")).String()) + "." + c64
		sig, err := jwt.SigningMethodHS256.Sign(input, publicBytes(k))
		if err != nil {
			panic("jwtcases: " + err.Error())
		}
		return input + "." + b64.EncodeToString(sig)
	}())
	bad("header/not an object", Sign(k, `["alg","`+k.Alg+`"]`, cl.String()))
	bad("header/not JSON", Sign(k, hdr.String()[1:], cl.String()))

	// The claims (RFC 7519 sections 2 and 4.1, RFC 9068 section 2.2).
	bad("claims/exp a string", claims(cl.with("exp", `"`+num(exp)+`"`)))
	bad("claims/nbf a string", claims(cl.with("nbf", `"`+num(now)+`"`)))
	bad("claims/iat a string", claims(cl.with("iat", `"`+num(now)+`"`)))
	bad("claims/exp null", claims(cl.with("exp", "null")))
	bad("claims/nbf null", claims(cl.with("nbf", "null")))
	bad("claims/exp true", claims(cl.with("exp", "true")))
	bad("claims/exp out of range", claims(cl.with("exp", "1e400")))
	bad("claims/exp missing", claims(cl.without("exp")))
	bad("claims/expired an hour ago", claims(cl.with("exp", num(now-hour))))
	bad("claims/nbf an hour ahead", claims(cl.with("nbf", num(now+hour))))
	bad("claims/iat an hour ahead", claims(cl.with("iat", num(now+hour))))
	bad("claims/exp twice, the first expired", claims(cl.without("exp").plus("exp", num(now-hour)).plus("exp", num(exp))))
	bad("claims/sub twice", claims(cl.plus("sub", str("6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59"))))
	bad("claims/sid twice", claims(cl.plus("sid", str("0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"))))
	bad("claims/sid twice, the second spelt SID", claims(cl.plus("SID", str("0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"))))
	bad("claims/sid twice, the second escaped", claims(cl.plus(`s\u0069d`, str("0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"))))
	bad("claims/exp spelt EXP", claims(cl.without("exp").plus("EXP", num(exp))))
	bad("claims/sub spelt with a long s", claims(cl.without("sub").plus("\u017fub", str(Subject))))
	bad("claims/role twice", claims(cl.plus("role", str("admin"))))
	bad("claims/iss wrong", claims(cl.with("iss", str("https://evil.test"))))
	bad("claims/iss missing", claims(cl.without("iss")))
	bad("claims/aud wrong", claims(cl.with("aud", `["another"]`)))
	bad("claims/aud missing", claims(cl.without("aud")))
	bad("claims/aud empty", claims(cl.with("aud", `[]`)))
	bad("claims/aud a number", claims(cl.with("aud", "1")))
	bad("claims/aud an array with a number", claims(cl.with("aud", `[`+str(p.Audience)+`,1]`)))
	bad("claims/sid not a UUID", claims(cl.with("sid", str("abc"))))
	bad("claims/sid missing", claims(cl.without("sid")))
	bad("claims/sid a UUID in braces", claims(cl.with("sid", str("{"+SessionID+"}"))))
	bad("claims/sid a UUID URN", claims(cl.with("sid", str("urn:uuid:"+SessionID))))
	bad("claims/sid a UUID without hyphens", claims(cl.with("sid", str(strings.ReplaceAll(SessionID, "-", "")))))
	bad("claims/sid a number", claims(cl.with("sid", "1")))
	bad("claims/sub missing", claims(cl.without("sub")))
	bad("claims/sub empty", claims(cl.with("sub", `""`)))
	bad("claims/jti missing", claims(cl.without("jti")))
	bad("claims/not an object", Sign(k, hdr.String(), `["sub"]`))
	bad("claims/null", Sign(k, hdr.String(), `null`))
	bad("claims/trailing data", Sign(k, hdr.String(), cl.String()+`{}`))
	return cs
}
