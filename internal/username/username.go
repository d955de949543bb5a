// Package username is the one rule for usernames, applied the same way when
// a user is created and when someone logs in: the PRECIS UsernameCaseMapped
// profile of RFC 8265 (width-mapped, case-folded, NFC, letters and digits
// and symbols only: no spaces, controls, bidi overrides or invisible
// characters), plus authd's own limits. Because both sides map the same way,
// look-alike spellings of one name are one name, and uniqueness holds after
// mapping.
package username

import (
	"fmt"
	"strings"

	"golang.org/x/text/secure/precis"
)

// MaxLen is the longest username, in bytes, after mapping.
const MaxLen = 256

// Error says why a name cannot be a username.
type Error struct{ Rule string }

func (e *Error) Error() string { return e.Rule }

var (
	errEmpty   = &Error{"username must not be empty"}
	errTooLong = &Error{fmt.Sprintf("username must be at most %d bytes", MaxLen)}
	errClass   = &Error{"username must be letters, digits and symbols only (RFC 8265 UsernameCaseMapped): " +
		"no spaces, control, formatting or invisible characters"}
	errColon = &Error{"username must not contain ':' (it separates the name from the password in HTTP Basic)"}
)

// Map returns the canonical form of name, or an *Error naming the rule it
// breaks. Map(Map(x)) == Map(x).
func Map(name string) (string, error) {
	if name == "" {
		return "", errEmpty
	}
	if len(name) > 4*MaxLen { // not worth mapping: no rule can shrink it enough
		return "", errTooLong
	}
	m, err := precis.UsernameCaseMapped.String(name)
	if err != nil {
		if strings.TrimSpace(name) == "" {
			return "", errEmpty
		}
		return "", errClass
	}
	switch {
	case len(m) > MaxLen:
		return "", errTooLong
	case strings.ContainsRune(m, ':'):
		return "", errColon
	}
	return m, nil
}
