package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/app"
	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func userCmd() *command {
	setDisabled := func(disable bool) func(*flag.FlagSet) runFunc {
		return func(*flag.FlagSet) runFunc {
			return func(ctx context.Context, pos []string, e env) error { return userSetDisabled(ctx, disable, pos[0], e) }
		}
	}
	return &command{
		name:    "user",
		summary: "manage users",
		detail: `
Create and change users as the admin endpoints do, with the --actor user
as the acting user (default none: the audit log records "cli").
Disabling, role changes and password resets revoke every session of the
user. USERNAME matches case-insensitively.` + needsDB,
		subs: []*command{{
			name:     "create",
			synopsis: "--username NAME [--role user|admin|service] [--generate-password]",
			summary:  "create a user (password: first line of stdin)",
			detail: `
Create a user and print its id. The password is the first line of stdin
(at least 12 characters), or with --generate-password a generated one,
printed once after the id.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				username := fs.String("username", "", "the new user's `NAME` (required)")
				role := fs.String("role", "user", "`ROLE`: user, admin or service")
				generate := fs.Bool("generate-password", false, "generate a password and print it once, instead of reading stdin")
				return func(ctx context.Context, _ []string, e env) error {
					return userCreate(ctx, *username, *role, *generate, e)
				}
			},
		}, {
			name:     "disable",
			synopsis: "USERNAME",
			summary:  "disable a user, revoking its sessions",
			args:     []string{"USERNAME"},
			detail:   "Disable a user: it can no longer log in, and every session it has is revoked.\nThe last enabled admin cannot be disabled." + needsDB,
			define:   setDisabled(true),
		}, {
			name:     "enable",
			synopsis: "USERNAME",
			summary:  "re-enable a disabled user",
			args:     []string{"USERNAME"},
			detail:   "Re-enable a disabled user; its revoked sessions stay revoked." + needsDB,
			define:   setDisabled(false),
		}, {
			name:     "set-role",
			synopsis: "USERNAME ROLE",
			summary:  "change a user's role (revokes its sessions)",
			args:     []string{"USERNAME", "ROLE"},
			detail: `
Change a user's role to ROLE (user, admin or service) and revoke every
session it has. The last enabled admin cannot be demoted.` + needsDB,
			define: func(*flag.FlagSet) runFunc {
				return func(ctx context.Context, pos []string, e env) error { return userSetRole(ctx, pos[0], pos[1], e) }
			},
		}, {
			name:     "reset-password",
			synopsis: "USERNAME",
			summary:  "set a new password from stdin (revokes sessions)",
			args:     []string{"USERNAME"},
			detail: `
Set a user's password to the first line of stdin and revoke every session
it has.` + needsDB,
			define: func(*flag.FlagSet) runFunc {
				return func(ctx context.Context, pos []string, e env) error { return userResetPassword(ctx, pos[0], e) }
			},
		}, {
			name:     "add-secret",
			synopsis: "USERNAME",
			summary:  "give a service identity a second secret (revokes nothing)",
			args:     []string{"USERNAME"},
			detail: `
Give the service identity USERNAME a second, generated secret, and print its
id and the secret, once. Both secrets authenticate until one is removed, so
a verifier's secret is rotated without an outage: add, deploy the verifiers
with the new secret, then remove the old one (remove-secret USERNAME
primary). No session is revoked.` + needsDB,
			define: func(*flag.FlagSet) runFunc {
				return func(ctx context.Context, pos []string, e env) error { return userAddSecret(ctx, pos[0], e) }
			},
		}, {
			name:     "remove-secret",
			synopsis: "USERNAME SECRET_ID",
			summary:  "remove one of a service identity's two secrets (revokes nothing)",
			args:     []string{"USERNAME", "SECRET_ID"},
			detail: `
Remove a secret of the service identity USERNAME: "primary" (its password,
which the added secret then replaces) or the id add-secret printed. The only
secret cannot be removed. No session is revoked.` + needsDB,
			define: func(*flag.FlagSet) runFunc {
				return func(ctx context.Context, pos []string, e env) error { return userRemoveSecret(ctx, pos[0], pos[1], e) }
			},
		}},
	}
}

func userAddSecret(ctx context.Context, username string, e env) error {
	return withUser(ctx, e, username, func(ctx context.Context, m *account.Service, u postgres.User) error {
		s, err := m.AddSecret(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "secret id: %s\nsecret: %s\n", s.ID, s.Secret)
		return nil
	})
}

func userRemoveSecret(ctx context.Context, username, secretID string, e env) error {
	return withUser(ctx, e, username, func(ctx context.Context, m *account.Service, u postgres.User) error {
		if err := m.RemoveSecret(ctx, u.ID, secretID); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: secret %s removed\n", u.Username, secretID)
		return nil
	})
}

func userCreate(ctx context.Context, username, role string, generate bool, e env) error {
	if username == "" {
		return &usageError{msg: "user create: --username is required"}
	}
	pw := ""
	if generate {
		var err error
		if pw, err = account.GeneratePassword(); err != nil {
			return err
		}
	} else {
		var err error
		if pw, err = readPasswordLine(e); err != nil {
			return err
		}
	}
	a, ctx, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.Accounts.Create(ctx, username, role, pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, u.ID)
	if generate {
		fmt.Fprintf(e.stdout, "password: %s\n", pw)
	}
	return nil
}

// readPasswordLine reads the first line of stdin, without its line ending.
func readPasswordLine(e env) (string, error) {
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on stdin (or use --generate-password)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// openApp builds authd's graph for one admin command, as serve builds it, so
// a change made here is announced (metrics, Redis push when AUTHD_REDIS_URL
// is set) exactly as the API's would be. The context it returns names the
// operator as the actor of the audit rows: the user --actor names, or
// audit.ActorCLI.
func openApp(ctx context.Context, e env) (*app.App, context.Context, error) {
	return openAppWith(ctx, e, app.Deps{})
}

// openAppWith is openApp with d's parts instead of those the configuration
// names (d.Log is replaced).
func openAppWith(ctx context.Context, e env, d app.Deps) (*app.App, context.Context, error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return nil, ctx, err
	}
	d.Log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, d)
	if err != nil {
		return nil, ctx, err
	}
	if e.actor == "" {
		return a, audit.WithActor(ctx, audit.ActorCLI), nil
	}
	u, err := a.Accounts.UserByName(ctx, e.actor)
	if err != nil {
		a.Close()
		return nil, ctx, fmt.Errorf("--actor %q: %w", e.actor, err)
	}
	return a, audit.WithActor(ctx, u.ID), nil
}

// actorID is the acting user that ctx names (openApp), nil for
// audit.ActorCLI: the revoked_by_user_id of the revocations the command
// writes.
func actorID(ctx context.Context) *string {
	if a := audit.From(ctx).Actor; a != audit.ActorCLI && a != audit.ActorSystem {
		return &a
	}
	return nil
}

// The commands below change existing users exactly as the admin endpoints
// do, through account.Service, with the --actor user as the acting user
// (none, revoked_by_user_id NULL, without --actor).

func userSetDisabled(ctx context.Context, disable bool, username string, e env) error {
	return withUser(ctx, e, username, func(ctx context.Context, m *account.Service, u postgres.User) error {
		u, n, err := m.Update(ctx, u.ID, account.Change{Disabled: &disable}, actorID(ctx))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: disabled=%t, %d sessions revoked\n", u.Username, u.DisabledAt != nil, n)
		return nil
	})
}

func userSetRole(ctx context.Context, username, role string, e env) error {
	return withUser(ctx, e, username, func(ctx context.Context, m *account.Service, u postgres.User) error {
		u, n, err := m.Update(ctx, u.ID, account.Change{Role: &role}, actorID(ctx))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: role=%s, %d sessions revoked\n", u.Username, u.Role, n)
		return nil
	})
}

func userResetPassword(ctx context.Context, username string, e env) error {
	pw, err := readPasswordLine(e)
	if err != nil {
		return errors.New("no password on stdin")
	}
	return withUser(ctx, e, username, func(ctx context.Context, m *account.Service, u postgres.User) error {
		n, err := m.ResetPassword(ctx, u.ID, pw, actorID(ctx))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: password reset, %d sessions revoked\n", u.Username, n)
		return nil
	})
}

// withUser runs fn with the user called username.
func withUser(ctx context.Context, e env, username string, fn func(context.Context, *account.Service, postgres.User) error) error {
	a, ctx, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.Accounts.UserByName(ctx, username)
	if err != nil {
		return fmt.Errorf("user %q: %w", username, err)
	}
	return fn(ctx, a.Accounts, u)
}
