package httpapi

import (
	"net/http"
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

// pageParams reads ?cursor= and ?limit=; an absent limit is 0 (the default).
func pageParams(c echo.Context) (cursor string, limit int, err error) {
	if raw := c.QueryParam("limit"); raw != "" {
		if limit, err = strconv.Atoi(raw); err != nil || limit < 1 {
			return "", 0, newProblem(http.StatusBadRequest, "limit must be an integer from 1 to 200")
		}
	}
	return c.QueryParam("cursor"), limit, nil
}

// includeRevoked reads ?include=, whose one value is "revoked".
func includeRevoked(c echo.Context) (bool, error) {
	switch c.QueryParam("include") {
	case "":
		return false, nil
	case "revoked":
		return true, nil
	}
	return false, newProblem(http.StatusBadRequest, "include must be \"revoked\" or absent")
}
