package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// readJSON decodes the request's JSON object body into v. An empty body is
// a 400 when required, and leaves v as it is otherwise. Unknown fields and
// trailing data are refused; the error never echoes the input.
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
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newProblem(http.StatusBadRequest, "the body must be a JSON object with the documented fields: "+jsonErrorText(err))
	}
	if dec.More() {
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
