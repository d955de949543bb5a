package verifier

import "errors"

// Errors returned by [Verifier.Verify], wrapped with detail; test them with
// errors.Is. Every one of them means "do not trust this token"; only
// [ErrStale] says nothing about the token itself.
var (
	// ErrMalformed: the token is not a well-formed authd access token:
	// not exactly three base64url segments (whitespace or padding anywhere,
	// a non-canonical encoding), longer than MaxTokenBytes, a header or
	// claims that are not a JSON object, a "crit" or "b64" header, a member
	// given twice or spelt in another case, an exp, nbf or iat that is not a
	// JSON number, a typ other than "at+jwt", a missing kid, a missing exp,
	// sub or jti, or a sid that is not a UUID in 8-4-4-4-12 form.
	ErrMalformed = errors.New("verifier: malformed token")
	// ErrSignature: the signature does not verify, the algorithm is not
	// EdDSA or ES256, the algorithm does not match the key, or no published
	// key has the token's kid (even after a JWKS refetch).
	ErrSignature = errors.New("verifier: invalid signature")
	// ErrExpired: exp is in the past (beyond the leeway) or missing.
	ErrExpired = errors.New("verifier: token expired")
	// ErrNotYetValid: nbf or iat is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("verifier: token not yet valid")
	// ErrIssuer: iss is not the expected issuer (Config.Issuer or its default).
	ErrIssuer = errors.New("verifier: wrong issuer")
	// ErrAudience: aud does not contain Config.Audience.
	ErrAudience = errors.New("verifier: wrong audience")
	// ErrRevoked: the token's session is on the denylist.
	ErrRevoked = errors.New("verifier: session revoked")
	// ErrStale: the token is otherwise valid, but the last successful poll of
	// the revocation feed is older than Config.MaxStaleness, so revocation
	// cannot be checked. Never returned when Config.FailOpen is set.
	ErrStale = errors.New("verifier: revocation data is stale")
	// ErrClosed: Verify was called after Close.
	ErrClosed = errors.New("verifier: closed")
)
