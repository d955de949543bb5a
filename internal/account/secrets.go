package account

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

// ErrSecretNotFound: the service identity holds no secret with this id.
var ErrSecretNotFound = errors.New("the service identity holds no secret with this id")

// Secret is a service secret just added: the only time it is shown.
type Secret struct {
	ID        string
	Secret    string
	CreatedAt time.Time
}

// AddSecret gives the service identity id a second, generated secret, so
// its verifiers can move to it before the old one is removed
// (RemoveSecret). Both authenticate until then. No session is revoked:
// tokens the verifiers hold stay valid, so a rotation is never an outage.
func (m *Service) AddSecret(ctx context.Context, id string) (Secret, error) {
	if err := checkUserID(id); err != nil {
		return Secret{}, err
	}
	pw, err := GeneratePassword()
	if err != nil {
		return Secret{}, err
	}
	hash, err := m.hasher.Hash(pw)
	if err != nil {
		return Secret{}, err
	}
	s := postgres.ServiceSecret{ID: uuid.NewString(), UserID: id, Hash: hash, CreatedAt: m.clock.Now()}
	if err := m.db.AddServiceSecret(ctx, s); err != nil {
		return Secret{}, userErr(err)
	}
	return Secret{ID: s.ID, Secret: pw, CreatedAt: s.CreatedAt}, nil
}

// RemoveSecret removes the secret secretID of the service identity id:
// postgres.PrimarySecret (the password, which the other secret then
// replaces) or the id AddSecret returned. No session is revoked.
func (m *Service) RemoveSecret(ctx context.Context, id, secretID string) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	if secretID != postgres.PrimarySecret {
		if _, err := uuid.Parse(secretID); err != nil || len(secretID) != 36 {
			return ErrSecretNotFound
		}
	}
	err := m.db.RemoveServiceSecret(ctx, id, secretID, m.clock.Now())
	if errors.Is(err, postgres.ErrNoSuchSecret) {
		return ErrSecretNotFound
	}
	return userErr(err)
}
