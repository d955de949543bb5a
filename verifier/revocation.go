package verifier

// Revocation is one entry of authd's revocation feed (GET /sessions/revoked)
// and one message on the Redis channel auth:revoked. authd encodes this very
// type, so the server and this package cannot disagree about the format.
//
// A verifier denies every token whose sid is SID until Exp: Exp is the expiry
// of the newest access token minted for the session, so no token of the
// session outlives the entry.
type Revocation struct {
	// JTI is the id of the session's newest access token.
	JTI string `json:"jti"`
	// SID is the revoked session.
	SID string `json:"sid"`
	// Exp is when the entry may be forgotten, in Unix seconds.
	Exp int64 `json:"exp"`
}

// PushChannel is the Redis pub/sub channel revocations are published on.
const PushChannel = "auth:revoked"

// CursorHeader is the response header of the feed that carries the value to
// pass as since on the next poll.
const CursorHeader = "X-Revocation-Cursor"

// UserCutoff is a user cutoff: every token of the user Sub whose iat is
// before NBF is denied, and no token whose iat is at or after it. Exp is
// when the last token it denies has expired (Unix seconds); after it the
// entry may be forgotten. A newer cutoff of the same user has a larger NBF.
type UserCutoff struct {
	Sub string `json:"sub"`
	NBF int64  `json:"nbf"`
	Exp int64  `json:"exp"`
}

// IssuerCutoff is the issuer-wide cutoff: every token whose iat is before
// NBF is denied, whoever it belongs to, until Exp.
type IssuerCutoff struct {
	NBF int64 `json:"nbf"`
	Exp int64 `json:"exp"`
}

// Message is one message on PushChannel: either one revoked session (JTI,
// SID and Exp, exactly a Revocation's fields, so subscribers that decode a
// Revocation keep working) or one cutoff (Users or Issuer, the v2 feed's
// shapes). Seq increases with each committed revocation; a verifier that
// sees a number skipped and not filled soon polls the feed at once.
type Message struct {
	JTI    string        `json:"jti,omitempty"`
	SID    string        `json:"sid,omitempty"`
	Exp    int64         `json:"exp,omitempty"`
	Seq    int64         `json:"seq,omitempty"`
	Users  []UserCutoff  `json:"users,omitempty"`
	Issuer *IssuerCutoff `json:"issuer,omitempty"`
}
