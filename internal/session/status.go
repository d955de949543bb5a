package session

import (
	"context"
	"errors"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/verifier"
)

// allocateStatus gives a new session its status list entry: the zero Entry
// (none) when the status list is off or the schema predates it (a replica
// that runs before the migration Job). Any other failure fails the grant: a
// token without the claim would be invisible to a verifier that reads only
// the list.
func (s *Service) allocateStatus(ctx context.Context) (statuslist.Entry, error) {
	if s.status == nil {
		return statuslist.Entry{}, nil
	}
	e, err := s.status.Allocate(ctx)
	if errors.Is(err, postgres.ErrNoStatusLists) {
		return statuslist.Entry{}, nil
	}
	return e, err
}

// statusRef is the status claim's status_list member for entry e, nil (no
// claim) when the status list is off or e is none.
func (s *Service) statusRef(e statuslist.Entry) *verifier.StatusListRef {
	if s.status == nil || e.List == 0 {
		return nil
	}
	return e.Ref(s.status.Base())
}
