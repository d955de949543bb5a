package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/verifier"
)

// revokedFeed is GET /sessions/revoked: the auto-pruned revocation snapshot.
func (h *handlers) revokedFeed(c echo.Context) error {
	since, err := sinceFromQuery(c.Request().URL.RawQuery)
	if err != nil {
		return err
	}
	entries, cursor, err := h.Feed.Snapshot(c.Request().Context(), since)
	if err != nil {
		return err
	}
	h.Metrics.FeedPolled(len(entries))
	hd := c.Response().Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set(verifier.CursorHeader, strconv.FormatInt(cursor, 10))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, feed.AppendJSON(make([]byte, 0, 16+len(entries)*100), entries))
}

// sinceFromQuery reads since from the raw query string. A query string that
// does not parse is a 400, never an absent since (which would widen the
// answer to the full snapshot), and so is a repeated since.
func sinceFromQuery(rawQuery string) (time.Time, error) {
	q, err := parseQuery(rawQuery)
	if err != nil {
		return time.Time{}, err
	}
	raw, present, err := singleParam(q, "since")
	if err != nil {
		return time.Time{}, err
	}
	return feed.ParseSince(raw, present)
}
