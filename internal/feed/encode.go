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
