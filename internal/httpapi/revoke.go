package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type logoutResponse struct {
	AlreadyRevoked bool `json:"already_revoked"`
}

func (h *handlers) logout(c echo.Context) error {
	already, err := h.Sessions.Logout(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logoutResponse{AlreadyRevoked: already})
}

type logoutAllResponse struct {
	Revoked int `json:"revoked"`
}

func (h *handlers) logoutAll(c echo.Context) error {
	n, err := h.Sessions.LogoutAll(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logoutAllResponse{Revoked: n})
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

type revokeResponse struct {
	SID             string    `json:"sid"`
	RevokedAt       time.Time `json:"revoked_at"`
	RevokedReason   string    `json:"revoked_reason"`
	RevokedByUserID *string   `json:"revoked_by_user_id"`
	AlreadyRevoked  bool      `json:"already_revoked"`
}

func (h *handlers) adminRevoke(c echo.Context) error {
	var req revokeRequest
	if err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	r, err := h.Sessions.AdminRevoke(c.Request().Context(), principal(c), c.Param("sid"), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, revokeResponse{
		SID: r.SID, RevokedAt: r.RevokedAt.UTC(), RevokedReason: r.RevokedReason,
		RevokedByUserID: r.RevokedByUserID, AlreadyRevoked: r.AlreadyRevoked,
	})
}

// decodeOptionalJSON decodes a JSON object body into v; an empty body leaves
// v as it is. Unknown fields and trailing data are refused.
func decodeOptionalJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return newProblem(http.StatusBadRequest, "the request body could not be read")
	}
	if len(body) == 0 {
		return nil
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newProblem(http.StatusBadRequest, "the body must be a JSON object with the documented fields: "+jsonErrorText(err))
	}
	if dec.More() {
		return newProblem(http.StatusBadRequest, "the body must hold one JSON object")
	}
	return nil
}
