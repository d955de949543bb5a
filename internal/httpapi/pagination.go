package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
)

// listResponse is every paginated list: next_cursor is null on the last page.
type listResponse[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next string) listResponse[T] {
	l := listResponse[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// errMalformedQuery answers a query string url.ParseQuery refuses. Echo's
// c.QueryParam silently drops what it cannot parse, so handlers read
// parameters through parseQuery instead.
var errMalformedQuery = newProblem(http.StatusBadRequest,
	"the query string is malformed (use & between parameters and %XX escapes)")

// parseQuery parses a raw query string, refusing one that does not parse
// and any repeated parameter: c.QueryParam would use the first of them, a
// proxy or cache in front may use the last.
func parseQuery(rawQuery string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errMalformedQuery
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, newProblem(http.StatusBadRequest, safeName(k)+" must be given at most once")
		}
	}
	return q, nil
}

// singleParam returns name's value and whether it is present.
func singleParam(q url.Values, name string) (string, bool, error) {
	vs, ok := q[name]
	switch {
	case !ok:
		return "", false, nil
	case len(vs) != 1:
		return "", false, newProblem(http.StatusBadRequest, name+" must be given at most once")
	}
	return vs[0], true, nil
}

// pageParams reads ?cursor= and ?limit=; an absent limit is 0 (the default).
// The whole query string must parse and repeat no parameter (parseQuery).
func pageParams(c echo.Context) (cursor string, limit int, err error) {
	q, err := parseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return "", 0, err
	}
	if raw := q.Get("limit"); raw != "" {
		if limit, err = strconv.Atoi(raw); err != nil || limit < 1 {
			return "", 0, newProblem(http.StatusBadRequest, "limit must be an integer from 1 to 200")
		}
	}
	return q.Get("cursor"), limit, nil
}

// includeRevoked reads ?include=, whose one value is "revoked".
func includeRevoked(c echo.Context) (bool, error) {
	q, err := parseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return false, err
	}
	switch q.Get("include") {
	case "":
		return false, nil
	case "revoked":
		return true, nil
	}
	return false, newProblem(http.StatusBadRequest, "include must be \"revoked\" or absent")
}
