package console

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Fleet describes the verifiers that poll the feed and how far the newest
// revocations have reached them (GET /verifiers). Declared here, as
// AuditLog is, for internal/app to satisfy with the fleet's tracker.
type Fleet interface {
	Fleet(ctx context.Context) (FleetView, error)
}

// FleetView is the fleet at one moment.
type FleetView struct {
	Verifiers []Verifier
	// Revocations are the newest revocations, newest first.
	Revocations []Propagation
}

// Verifier is one service identity's polling.
type Verifier struct {
	ClientID string
	LastPoll time.Time
	// Lag is now minus the cursor its last poll received.
	Lag time.Duration
	// State is current, lagging or silent.
	State string
}

// Propagation is one committed revocation (a transaction, which may end
// several sessions) and how many of the active verifiers have polled past
// it.
type Propagation struct {
	At time.Time
	// Count is how many sessions or cutoffs it revoked.
	Count int
	// Reached of Active verifiers have polled with a cursor past it;
	// Waiting names the others. ReachedAll is when the last of them did
	// (zero: not yet).
	Reached, Active int
	Waiting         []string
	ReachedAll      time.Time
}

// fleetRefresh is how often the fleet page reloads itself (a meta refresh:
// no script, so the strict CSP needs no exception).
const fleetRefresh = 3

type fleetData struct {
	Available bool
	Refresh   int
	View      FleetView
}

func (c *Console) fleet(ec echo.Context) error {
	d := fleetData{Available: c.Fleet != nil, Refresh: fleetRefresh}
	v := view{Title: "Verifier fleet", Nav: "fleet", Data: &d}
	if c.Fleet == nil {
		return c.render(ec, http.StatusOK, "fleet", v)
	}
	fv, err := c.Fleet.Fleet(ec.Request().Context())
	if err != nil {
		return c.fail(ec, "fleet", v, err)
	}
	d.View = fv
	return c.render(ec, http.StatusOK, "fleet", v)
}
