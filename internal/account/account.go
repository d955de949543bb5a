// Package account manages users: creation, the rules every username and
// password must follow, changes of role, state and password with the session
// revocations each implies, and the lists of users and sessions.
package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
	"github.com/seedc5a8123e/authd/internal/username"
)

// Limits on what a user may choose.
const (
	MaxUsernameLen    = session.MaxUsernameLen // bytes
	MinPasswordRunes  = 12                     // characters
	MaxPasswordBytes  = 1024                   // bytes; argon2 would hash more, but nobody types more
	generatedPassword = 24                     // random bytes in a generated password
)

var (
	// ErrUsernameTaken: another user has the name in some letter case.
	ErrUsernameTaken = errors.New("username is taken")
	// ErrUserNotFound: no such user.
	ErrUserNotFound = errors.New("user not found")
)

// errBadRole names the roles there are.
var errBadRole = &PolicyError{"role must be one of " + strings.Join(session.Roles, ", ")}

// PolicyError says which rule a username, role or password broke.
type PolicyError struct {
	Rule string
}

func (e *PolicyError) Error() string { return e.Rule }

// CheckUsername enforces the username rules (internal/username: RFC 8265
// UsernameCaseMapped) and returns the name as it is stored and matched.
func CheckUsername(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", &PolicyError{"username must be valid UTF-8"}
	}
	m, err := username.Map(name)
	if err != nil {
		return "", &PolicyError{err.Error()}
	}
	return m, nil
}

// CheckPassword enforces the password policy for a password being set.
func CheckPassword(username, pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return &PolicyError{"password must be valid UTF-8"}
	case len(pw) > MaxPasswordBytes:
		return &PolicyError{fmt.Sprintf("password must be at most %d bytes", MaxPasswordBytes)}
	case utf8.RuneCountInString(pw) < MinPasswordRunes:
		return &PolicyError{fmt.Sprintf("password must be at least %d characters", MinPasswordRunes)}
	case !normalizable(pw):
		// /token would refuse such a password forever (NUL), or it would not
		// survive normalization: the account could never log in.
		return &PolicyError{"password must not contain control characters such as U+0000 (RFC 8265 OpaqueString)"}
	case strings.EqualFold(pw, username):
		return &PolicyError{"password must not equal the username"}
	}
	return nil
}

func normalizable(pw string) bool {
	_, err := password.Normalize(pw)
	return err == nil
}

// GeneratePassword returns a random password from crypto/rand.
func GeneratePassword() (string, error) {
	b := make([]byte, generatedPassword)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create makes a user after checking every rule, and returns it.
func (s *Service) Create(ctx context.Context, name, role, pw string) (postgres.User, error) {
	name, err := CheckUsername(name)
	if err != nil {
		return postgres.User{}, err
	}
	if !session.ValidRole(role) {
		return postgres.User{}, errBadRole
	}
	if err := CheckPassword(name, pw); err != nil {
		return postgres.User{}, err
	}
	hash, err := s.hasher.Hash(pw)
	if err != nil {
		return postgres.User{}, err
	}
	now := s.clock.Now()
	u := postgres.User{ID: uuid.NewString(), Username: name, PasswordHash: hash, Role: role, CreatedAt: now, UpdatedAt: now}
	if err := s.db.CreateUser(ctx, u); err != nil {
		if errors.Is(err, postgres.ErrConflict) {
			return postgres.User{}, ErrUsernameTaken
		}
		return postgres.User{}, err
	}
	return u, nil
}
