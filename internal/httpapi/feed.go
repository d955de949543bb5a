package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/verifier"
)

// revokedFeed is GET /sessions/revoked: the auto-pruned revocation snapshot.
func (h *handlers) revokedFeed(c echo.Context) error {
	vals, present := c.QueryParams()["since"]
	if len(vals) > 1 {
		return newProblem(http.StatusBadRequest, "since must be given at most once")
	}
	raw := ""
	if present {
		raw = vals[0]
	}
	since, err := feed.ParseSince(raw, present)
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
