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
