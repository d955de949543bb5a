package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/console"
	"github.com/seedc5a8123e/authd/internal/fleet"
)

// The console declares what it reads of the audit log and the fleet
// (console.AuditLog, console.Fleet), so that its pages are built and tested
// against those contracts; these adapters satisfy them with the services
// the API uses, and are the only place the two shapes meet.

type consoleAudit struct{ s *auditlog.Service }

func (a consoleAudit) AuditPage(ctx context.Context, f console.AuditFilter, cursor string, limit int) (console.AuditPage, error) {
	p, err := a.s.List(ctx, auditlog.Filter{
		UserID: f.UserID, SessionID: f.SessionID, Type: f.Type, Since: f.Since, Until: f.Until,
	}, cursor, limit)
	if errors.Is(err, auditlog.ErrBadFilter) || errors.Is(err, auditlog.ErrBadCursor) || errors.Is(err, auditlog.ErrBadLimit) {
		return console.AuditPage{}, fmt.Errorf("%w: %w", console.ErrBadFilter, err)
	}
	if err != nil {
		return console.AuditPage{}, err
	}
	out := console.AuditPage{NextCursor: p.NextCursor, Items: make([]console.AuditEvent, len(p.Items))}
	for i, e := range p.Items {
		out.Items[i] = console.AuditEvent{
			ID: e.ID, At: e.At, Type: e.Type, Actor: e.Actor, SubjectUserID: e.SubjectUserID,
			SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent, Detail: e.Detail,
		}
	}
	return out, nil
}

type consoleFleet struct{ t *fleet.Tracker }

func (f consoleFleet) Fleet(context.Context) (console.FleetView, error) {
	var v console.FleetView
	active := 0
	for _, x := range f.t.Verifiers() {
		v.Verifiers = append(v.Verifiers, console.Verifier{ClientID: x.ClientID, LastPoll: x.LastPoll, Lag: x.Lag, State: x.State})
		if x.State != fleet.StateSilent {
			active++
		}
	}
	for _, p := range f.t.Recent() {
		v.Revocations = append(v.Revocations, console.Propagation{
			At: p.RevokedAt, Count: p.Count, Waiting: p.Waiting, ReachedAll: p.Propagated,
			Active: active, Reached: max(active-len(p.Waiting), 0),
		})
	}
	return v, nil
}
