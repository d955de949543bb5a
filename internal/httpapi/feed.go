package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/feed"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/verifier"
)

// revokedFeed is GET /sessions/revoked[?format=2][&since=…]: the revocation
// feed, answered from the replica's memory (internal/feed). Without format
// it is the v1 array, byte for byte as it always was. A full snapshot (no
// since) carries a strong ETag, and If-None-Match naming it answers 304.
func (h *handlers) revokedFeed(c echo.Context) error {
	format, since, full, err := feedQuery(c.Request().URL.RawQuery)
	if err != nil {
		return err
	}
	inm, ok := parseIfNoneMatch(c.Request().Header.Values("If-None-Match"))
	if !ok {
		return errBadIfNoneMatch
	}
	a, err := h.Feed.Poll(c.Request().Context(), format, since, full)
	if err != nil {
		return err
	}
	if p := principal(c); p.Role == session.RoleService && h.Fleet != nil {
		h.Fleet.Polled(p.UserID, c.Request().UserAgent(), a.Cursor)
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set(verifier.CursorHeader, strconv.FormatInt(a.Cursor, 10))
	if a.ETag != "" {
		hd.Set("ETag", a.ETag)
		if inm.match(a.ETag) {
			return c.NoContent(http.StatusNotModified)
		}
	}
	h.Metrics.FeedPolled(a.Entries)
	if full && acceptsGzip(c.Request()) {
		// Compressed once per snapshot (Answer.Gzip); deltas go through
		// the route's gzip middleware, which skips full snapshots.
		hd.Set(echo.HeaderContentEncoding, "gzip")
		hd.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, a.Gzip())
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, a.Body)
}

// fullSnapshot tells the gzip middleware which polls the handler
// compresses itself: those without since (or with since 0).
func fullSnapshot(c echo.Context) bool {
	_, _, full, err := feedQuery(c.Request().URL.RawQuery)
	return err == nil && full
}

// acceptsGzip reports whether Accept-Encoding names gzip with a q above 0.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values(echo.HeaderAcceptEncoding) {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// errBadFormat: a format other than 1 or 2.
var errBadFormat = newProblem(http.StatusBadRequest, "format must be 2, or absent for the v1 array")

// feedQuery reads format and since from the raw query string. A query string
// that does not parse is a 400, never an absent since (which would widen the
// answer to the full snapshot), and so is a repeated parameter.
func feedQuery(rawQuery string) (format int, since time.Time, full bool, err error) {
	q, err := parseQuery(rawQuery)
	if err != nil {
		return 0, time.Time{}, false, err
	}
	f, fPresent, err := singleParam(q, "format")
	if err != nil {
		return 0, time.Time{}, false, err
	}
	format = feed.FormatV1
	switch {
	case !fPresent:
	case f == "2":
		format = feed.FormatV2
	default:
		return 0, time.Time{}, false, errBadFormat
	}
	raw, present, err := singleParam(q, "since")
	if err != nil {
		return 0, time.Time{}, false, err
	}
	since, err = feed.ParseSince(raw, present)
	return format, since, err == nil && since.Unix() == 0, err
}

// sinceFromQuery reads since alone (the fuzz target's contract).
func sinceFromQuery(rawQuery string) (time.Time, error) {
	_, since, _, err := feedQuery(rawQuery)
	return since, err
}
