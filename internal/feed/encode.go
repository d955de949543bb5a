package feed

import (
	"strconv"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

// AppendJSON appends entries as the JSON array the feed serves, each one a
// verifier.Revocation ({"jti","sid","exp"}), straight from the rows the
// query scanned, so the hot path neither converts nor reflects. It exists
// because the full snapshot is the feed's largest answer and encoding/json's
// reflection was a third of its server time. jti and sid are UUIDs rendered
// by PostgreSQL (hex digits and dashes), so they need no escaping; the
// contract test decodes this output with encoding/json to keep it honest.
func AppendJSON(buf []byte, entries []postgres.RevokedSession) []byte {
	buf = append(buf, '[')
	for i, e := range entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"jti":"`...)
		buf = append(buf, e.JTI...)
		buf = append(buf, `","sid":"`...)
		buf = append(buf, e.SID...)
		buf = append(buf, `","exp":`...)
		buf = strconv.AppendInt(buf, e.Exp, 10)
		buf = append(buf, '}')
	}
	return append(buf, ']', '\n')
}

// V2 is the feed's format-2 answer: sessions revoked on their own, user
// cutoffs, and the issuer-wide cutoff (nil: none), with the cursor of the
// next poll in the body.
type V2 struct {
	Cursor   int64
	Sessions []postgres.RevokedSession
	Users    []postgres.Cutoff
	Issuer   *postgres.Cutoff
}

// AppendJSON appends v as the object GET /sessions/revoked?format=2 serves:
//
//	{"format":2,"cursor":"…","sessions":[{"sid","jti","exp"}…],
//	 "users":[{"sub","nbf","exp"}…],"issuer":{"nbf","exp"}|null}
//
// Hand-encoded for the reason AppendJSON of v1 is; every string is a UUID
// or decimal digits, so none needs escaping, and the contract test decodes
// the output with encoding/json.
func (v V2) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"format":2,"cursor":"`...)
	buf = strconv.AppendInt(buf, v.Cursor, 10)
	buf = append(buf, `","sessions":[`...)
	for i, e := range v.Sessions {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"sid":"`...)
		buf = append(buf, e.SID...)
		buf = append(buf, `","jti":"`...)
		buf = append(buf, e.JTI...)
		buf = append(buf, `","exp":`...)
		buf = strconv.AppendInt(buf, e.Exp, 10)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"users":[`...)
	for i, c := range v.Users {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"sub":"`...)
		buf = append(buf, c.UserID...)
		buf = append(buf, `","nbf":`...)
		buf = strconv.AppendInt(buf, c.NBF, 10)
		buf = append(buf, `,"exp":`...)
		buf = strconv.AppendInt(buf, c.Exp, 10)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"issuer":`...)
	if v.Issuer == nil {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, `{"nbf":`...)
		buf = strconv.AppendInt(buf, v.Issuer.NBF, 10)
		buf = append(buf, `,"exp":`...)
		buf = strconv.AppendInt(buf, v.Issuer.Exp, 10)
		buf = append(buf, '}')
	}
	return append(buf, '}', '\n')
}
