package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// readJSON decodes the request's JSON object body into v. An empty body is
// a 400 when required, and leaves v as it is otherwise. Unknown fields,
// trailing data and whatever checkJSONText refuses are 400s; the error never
// echoes the input.
func readJSON(c echo.Context, v any, required bool) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return newProblem(http.StatusBadRequest, "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			return newProblem(http.StatusBadRequest, "a JSON body is required")
		}
		return nil
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newProblem(http.StatusBadRequest, "the body must be a JSON object with the documented fields: "+jsonErrorText(err))
	}
	// Not dec.More(): it reports false before a stray '}' or ']', which
	// would let "{...}]" through.
	if _, err := dec.Token(); err != io.EOF {
		return newProblem(http.StatusBadRequest, "the body must hold one JSON object")
	}
	return nil
}

func jsonEncode(w http.ResponseWriter, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// jsonErrorText describes a decoding error without echoing the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "malformed JSON"
	case errors.As(err, &te):
		return "field " + safeName(te.Field) + " has the wrong type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	if msg := err.Error(); len(msg) > len("json: unknown field ") && msg[:20] == "json: unknown field " {
		return "unknown field " + safeName(msg[20:])
	}
	return "invalid JSON"
}

var (
	errJSONNotUTF8 = newProblem(http.StatusBadRequest, "the body must be valid UTF-8 (no unpaired surrogate escapes)")
	errJSONNUL     = newProblem(http.StatusBadRequest, "JSON strings must not contain U+0000")
	errJSONSyntax  = newProblem(http.StatusBadRequest, "the body must be a JSON object with the documented fields: malformed JSON")
)

// checkJSONText refuses, before anything is decoded, what encoding/json
// would otherwise let through altered or PostgreSQL would refuse: bytes that
// are not UTF-8 and \u escapes of unpaired surrogates (the decoder turns
// both into U+FFFD), any string or key holding U+0000 (text columns refuse
// it), and a key repeated in one object (the decoder keeps the last one).
// It checks the first JSON value only; the decoder refuses trailing data.
func checkJSONText(body []byte) error {
	if !jsonTextIsUTF8(body) {
		return errJSONNotUTF8
	}
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return errJSONSyntax
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
			} else {
				k, _ := tok.(string)
				if strings.IndexByte(k, 0) >= 0 {
					return errJSONNUL
				}
				if stack[n-1].keys[k] {
					return newProblem(http.StatusBadRequest, "field "+safeName(k)+" is repeated")
				}
				stack[n-1].keys[k] = true
				stack[n-1].expectKey = false
				continue
			}
		} else {
			switch t := tok.(type) {
			case json.Delim:
				switch t {
				case '{':
					stack = append(stack, frame{object: true, expectKey: true, keys: map[string]bool{}})
					continue
				case '[':
					stack = append(stack, frame{})
					continue
				default: // ']': '}' after a value arrives as a key position above
					stack = stack[:len(stack)-1]
				}
			case string:
				if strings.IndexByte(t, 0) >= 0 {
					return errJSONNUL
				}
			}
		}
		// A value is complete: the enclosing object wants a key next.
		if len(stack) == 0 {
			return nil
		}
		if top := &stack[len(stack)-1]; top.object {
			top.expectKey = true
		}
	}
}

// jsonTextIsUTF8 reports whether body is UTF-8 and every \u escape in it
// stands for a Unicode scalar value: a high surrogate escape must be followed
// by a low one, and a low one never stands alone. It assumes nothing about
// the rest of the syntax. The /token JSON reader needs the same check.
func jsonTextIsUTF8(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if i+1 >= len(body) {
				return true // truncated: the decoder refuses it
			}
			if body[i+1] != 'u' {
				i++ // skip the escaped character
				continue
			}
			r, ok := hex4(body, i+2)
			if !ok {
				return true // malformed escape: the decoder refuses it
			}
			i += 5
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low must follow
				if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
					return false
				}
				r2, ok := hex4(body, i+3)
				if !ok || r2 < 0xdc00 || r2 > 0xdfff {
					return false
				}
				i += 6
			case utf16.IsSurrogate(r): // a lone low surrogate
				return false
			}
		}
	}
	return true
}

// hex4 parses the four hex digits at body[i:].
func hex4(body []byte, i int) (rune, bool) {
	if i+4 > len(body) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(body[i:i+4]), 16, 16)
	return rune(n), err == nil
}
