package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/verifier"
)

// The status list endpoints serve what internal/statuslist prepared: a
// request is a lookup, a header check and a write of ready bytes.

// maxConditionalHeader bounds Accept and If-None-Match: a client needs a few
// dozen bytes of either, and a longer one is refused before it is parsed.
const maxConditionalHeader = 1024

var (
	errBadListID       = newProblem(http.StatusBadRequest, "the status list id must be a positive decimal integer")
	errUnknownList     = newProblem(http.StatusNotFound, "no status list has this id")
	errHistorical      = newProblem(http.StatusNotImplemented, "historical resolution (the time parameter) is not supported")
	errBadIfNoneMatch  = newProblem(http.StatusBadRequest, "If-None-Match must be * or a list of at most 32 quoted entity tags, at most 1 KiB")
	errBadAccept       = newProblem(http.StatusBadRequest, "Accept is longer than 1 KiB")
	errNotAcceptableSL = newProblem(http.StatusNotAcceptable,
		"the status list is served as "+verifier.StatusListJWTType+" or "+verifier.StatusListJSONType)
)

// statusList is GET /statuslists/:id (draft-ietf-oauth-status-list section
// 8): the Status List Token, or its unsigned claims on Accept:
// application/statuslist+json.
func (h *handlers) statusList(c echo.Context) error {
	q, err := parseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return err
	}
	if _, ok := q["time"]; ok {
		return errHistorical // the draft's answer where it is not supported (section 8.4)
	}
	id, ok := parseListID(c.Param("id"))
	if !ok {
		return errBadListID
	}
	rq := c.Request().Header
	if len(rq.Get("Accept")) > maxConditionalHeader {
		return errBadAccept
	}
	asJSON, ok := negotiateStatusList(rq.Values("Accept"))
	if !ok {
		return errNotAcceptableSL
	}
	tags, ok := parseIfNoneMatch(rq.Values("If-None-Match"))
	if !ok {
		return errBadIfNoneMatch
	}
	sv, found := h.StatusLists.Lookup(id)
	if !found {
		return errUnknownList
	}
	body, ctype, tag := sv.JWT, verifier.StatusListJWTType, sv.JWTETag
	if asJSON {
		body, ctype, tag = sv.JSON, verifier.StatusListJSONType, sv.JSONETag
	}
	hd := c.Response().Header()
	h.statusListCaching(hd)
	hd.Set("ETag", tag)
	if tags.match(tag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, ctype, body)
}

// statusListAggregation is GET /statuslists: the URIs of every list served
// (section 9.3), which status_list_aggregation_endpoint names.
func (h *handlers) statusListAggregation(c echo.Context) error {
	if _, err := parseQuery(c.Request().URL.RawQuery); err != nil {
		return err
	}
	h.statusListCaching(c.Response().Header())
	return c.JSON(http.StatusOK, map[string][]string{"status_lists": h.StatusLists.URIs()})
}

// statusListCaching: any cache may keep a list for its ttl (the draft wants
// CDNs to be able to); the two media types are two representations; any
// origin may read it (section 8.1 asks for CORS).
func (h *handlers) statusListCaching(hd http.Header) {
	hd.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(h.StatusLists.TTL().Seconds()), 10))
	hd.Set("Vary", "Accept")
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Expose-Headers", "ETag")
}

// parseListID accepts what statuslist.URI writes: 1 to 18 decimal digits
// without a leading zero.
func parseListID(s string) (int64, bool) {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// negotiateStatusList picks the representation from the Accept header
// fields (RFC 9110 section 12.5.1): JSON only when the client prefers
// application/statuslist+json to the JWT; the JWT otherwise, and when there
// is no Accept. ok is false when neither is acceptable. Unparsable ranges
// are skipped, as a cache would.
func negotiateStatusList(fields []string) (asJSON, ok bool) {
	if len(fields) == 0 {
		return false, true
	}
	qJWT, qJSON := -1.0, -1.0 // -1: no range matched; specificity decides first
	specJWT, specJSON := -1, -1
	for _, f := range fields {
		for _, r := range strings.Split(f, ",") {
			mt, q, ok := parseMediaRange(r)
			if !ok {
				continue
			}
			for _, t := range []struct {
				name string
				q    *float64
				spec *int
			}{{verifier.StatusListJWTType, &qJWT, &specJWT}, {verifier.StatusListJSONType, &qJSON, &specJSON}} {
				s := specificity(mt, t.name)
				if s > *t.spec {
					*t.spec, *t.q = s, q
				}
			}
		}
	}
	qJWT, qJSON = max(qJWT, 0), max(qJSON, 0)
	switch {
	case qJWT == 0 && qJSON == 0:
		return false, false
	case qJSON > qJWT:
		return true, true
	}
	return false, true
}

// specificity is how closely range mt names media type name: 2 exactly, 1
// by type/*, 0 by */*, -1 not at all.
func specificity(mt, name string) int {
	switch {
	case mt == name:
		return 2
	case mt == "application/*":
		return 1
	case mt == "*/*":
		return 0
	}
	return -1
}

// parseMediaRange reads "type/subtype;q=0.5": the lower-cased range and its
// weight (1 without one).
func parseMediaRange(r string) (string, float64, bool) {
	parts := strings.Split(r, ";")
	mt := strings.ToLower(strings.TrimSpace(parts[0]))
	if !strings.Contains(mt, "/") {
		return "", 0, false
	}
	q := 1.0
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				return "", 0, false
			}
			q = f
		}
	}
	return mt, q, true
}

// entityTags is a parsed If-None-Match: any (*) or the opaque tags.
type entityTags struct {
	any  bool
	tags []string
}

// match is If-None-Match's weak comparison (RFC 9110 section 13.1.2).
func (e entityTags) match(tag string) bool {
	if e.any {
		return true
	}
	for _, t := range e.tags {
		if t == tag {
			return true
		}
	}
	return false
}

// parseIfNoneMatch parses the If-None-Match fields: "*" alone, or up to 32
// entity tags (W/ optional) of visible ASCII in quotes, comma-separated;
// ok false for anything else, or more than 1 KiB in all.
func parseIfNoneMatch(fields []string) (entityTags, bool) {
	var e entityTags
	n := 0
	for _, f := range fields {
		n += len(f)
		if n > maxConditionalHeader {
			return entityTags{}, false
		}
		for _, t := range strings.Split(f, ",") {
			t = strings.Trim(t, " \t")
			switch {
			case t == "" && len(fields) == 1 && strings.TrimSpace(f) == "":
				return entityTags{}, false
			case t == "":
				continue // RFC 9110 list syntax allows empty elements
			case t == "*":
				if len(fields) != 1 || strings.TrimSpace(f) != "*" {
					return entityTags{}, false
				}
				return entityTags{any: true}, true
			}
			t = strings.TrimPrefix(t, "W/")
			if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
				return entityTags{}, false
			}
			for i := 1; i < len(t)-1; i++ {
				if b := t[i]; b < 0x21 || b == '"' || b > 0x7e {
					return entityTags{}, false
				}
			}
			if e.tags = append(e.tags, t); len(e.tags) > 32 {
				return entityTags{}, false
			}
		}
	}
	return e, true
}
