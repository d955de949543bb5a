package verifier

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// The wire types of the IETF Token Status List (draft-ietf-oauth-status-list)
// as authd writes them. authd encodes these very types (internal/token for
// the access token's claim, internal/statuslist for the list), so the server
// and this package cannot disagree about the format.

// Status is an access token's "status" claim (section 6.1 of the draft).
type Status struct {
	// StatusList names the session's entry in a status list.
	StatusList *StatusListRef `json:"status_list,omitempty"`
}

// StatusListRef is the status claim's "status_list" member (section 6.2): the
// index of the token's session in the list served at URI. Every token of one
// session names the same entry.
type StatusListRef struct {
	Idx int64  `json:"idx"`
	URI string `json:"uri"`
}

// StatusListClaims are the claims of a Status List Token (section 5.1), the
// body of GET /statuslists/{id} as application/statuslist+jwt, and the whole
// body as application/statuslist+json.
type StatusListClaims struct {
	// Subject is the list's own URI, equal to the uri of the tokens that
	// name it.
	Subject  string `json:"sub"`
	Issuer   string `json:"iss,omitempty"`
	IssuedAt int64  `json:"iat"`
	// ExpiresAt: the list must not be relied on after it (Unix seconds).
	ExpiresAt int64 `json:"exp"`
	// TTL is how long, in seconds, the list may be cached before it is
	// fetched again.
	TTL        int64      `json:"ttl"`
	StatusList StatusList `json:"status_list"`
}

// StatusList is the Status List object (section 4.2).
type StatusList struct {
	// Bits per entry; authd writes 1 (set: the session is revoked).
	Bits int `json:"bits"`
	// Lst is the base64url (no padding) ZLIB (DEFLATE) stream of the bytes.
	Lst string `json:"lst"`
	// AggregationURI lists every status list of the issuer (section 9).
	AggregationURI string `json:"aggregation_uri,omitempty"`
}

// Media types of GET /statuslists/{id}.
const (
	StatusListJWTType  = "application/statuslist+jwt"
	StatusListJSONType = "application/statuslist+json"
	// StatusListTyp is the JWT "typ" header of a Status List Token.
	StatusListTyp = "statuslist+jwt"
)

// maxStatusListBytes bounds a decompressed list: 2^24 one-bit entries, the
// largest list authd leases, is 2 MiB.
const maxStatusListBytes = 2 << 20

// ErrBadStatusList is wrapped by DecodeStatusList for a list that is not
// base64url, not ZLIB, larger than 2 MiB decompressed, or not 1 bit wide.
var ErrBadStatusList = errors.New("verifier: malformed status list")

// DecodeStatusList returns the bytes of a Status List with bits 1: entry i
// is bit i%8, counting from the least significant, of byte i/8 (section 4.1).
func DecodeStatusList(l StatusList) ([]byte, error) {
	if l.Bits != 1 {
		return nil, fmt.Errorf("%w: bits %d, want 1", ErrBadStatusList, l.Bits)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(l.Lst)
	if err != nil {
		return nil, fmt.Errorf("%w: lst is not base64url: %w", ErrBadStatusList, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: lst is not ZLIB: %w", ErrBadStatusList, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxStatusListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: lst does not inflate: %w", ErrBadStatusList, err)
	}
	if len(out) > maxStatusListBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadStatusList, maxStatusListBytes)
	}
	return out, nil
}

// StatusBit reports entry idx of a decoded 1-bit list, and false for ok when
// idx is out of its bounds (no statement can be made: section 8.3, step 6).
func StatusBit(list []byte, idx int64) (set, ok bool) {
	if idx < 0 || idx >= int64(len(list))*8 {
		return false, false
	}
	return list[idx>>3]&(1<<(idx&7)) != 0, true
}
