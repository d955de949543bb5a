package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type verifierJSON struct {
	ClientID   string    `json:"client_id"`
	UserID     string    `json:"user_id"`
	State      string    `json:"state"`
	LastPollAt time.Time `json:"last_poll_at"`
	Cursor     int64     `json:"cursor"`
	LagSeconds float64   `json:"lag_seconds"`
	UserAgent  string    `json:"user_agent,omitempty"`
}

type propagationJSON struct {
	RevokedAt    time.Time  `json:"revoked_at"`
	Transactions int        `json:"transactions"`
	PropagatedAt *time.Time `json:"propagated_at"`
	// Seconds is null while Waiting names a verifier.
	Seconds *float64 `json:"propagation_seconds"`
	Waiting []string `json:"waiting_for"`
}

type verifiersResponse struct {
	Verifiers   []verifierJSON    `json:"verifiers"`
	Revocations []propagationJSON `json:"revocations"`
}

// listVerifiers is GET /verifiers: every service identity that polls the
// feed, with its state, and this replica's newest revocations with their
// propagation.
func (h *handlers) listVerifiers(c echo.Context) error {
	out := verifiersResponse{Verifiers: []verifierJSON{}, Revocations: []propagationJSON{}}
	for _, v := range h.Fleet.Verifiers() {
		out.Verifiers = append(out.Verifiers, verifierJSON{
			ClientID: v.ClientID, UserID: v.UserID, State: v.State, LastPollAt: v.LastPoll.UTC(), Cursor: v.Cursor,
			LagSeconds: math.Round(v.Lag.Seconds()*1000) / 1000, UserAgent: v.UserAgent,
		})
	}
	for _, p := range h.Fleet.Recent() {
		j := propagationJSON{RevokedAt: p.RevokedAt.UTC(), Transactions: p.Count, Waiting: p.Waiting}
		if j.Waiting == nil {
			j.Waiting = []string{}
		}
		if !p.Propagated.IsZero() {
			at, s := p.Propagated.UTC(), math.Round(p.Seconds()*1000)/1000
			j.PropagatedAt, j.Seconds = &at, &s
		}
		out.Revocations = append(out.Revocations, j)
	}
	return c.JSON(http.StatusOK, out)
}
