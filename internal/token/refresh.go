package token

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// NewRefreshFor returns a fresh refresh token of session sid: the session's
// id (16 bytes, base64url) and 256 bits from crypto/rand, joined by a dot,
// which no token of NewRefresh contains. The id is no secret (every access
// token of the session carries it as sid); it lets a refresh find its
// session by primary key instead of through an index on the token's hash,
// which is what keeps the hash column unindexed and a rotation a HOT
// update once the legacy lookups are gone (issue 14). The stored hash is
// HashRefresh of the whole token, as for NewRefresh's.
func NewRefreshFor(sid string) (string, error) {
	id, err := uuid.Parse(sid)
	if err != nil || len(sid) != 36 {
		return "", fmt.Errorf("token: refresh: session id %q is not a UUID", sid)
	}
	secret, err := NewRefresh()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(id[:]) + "." + secret, nil
}

// RefreshSID returns the session id a refresh token of NewRefreshFor names,
// in canonical form, or "" for any other string (a token of NewRefresh, from
// a release before, or garbage). It says nothing of the token's validity:
// only the stored hash does.
func RefreshSID(tok string) string {
	head, secret, ok := strings.Cut(tok, ".")
	if !ok || len(head) != 22 || len(secret) != 43 {
		return ""
	}
	var id uuid.UUID
	if n, err := base64.RawURLEncoding.Strict().Decode(id[:], []byte(head)); err != nil || n != 16 {
		return ""
	}
	return id.String()
}
