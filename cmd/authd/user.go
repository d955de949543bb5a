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
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func userCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return &usageError{"user: want a subcommand (create, disable, enable, set-role, reset-password)"}
	}
	switch args[0] {
	case "create":
		return userCreate(ctx, args[1:], e)
	case "disable", "enable":
		return userSetDisabled(ctx, args[0] == "disable", args[1:], e)
	case "set-role":
		return userSetRole(ctx, args[1:], e)
	case "reset-password":
		return userResetPassword(ctx, args[1:], e)
	default:
		return &usageError{fmt.Sprintf("user: unknown subcommand %q", args[0])}
	}
}

func userCreate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("user create", e)
	username := fs.String("username", "", "the new user's name")
	role := fs.String("role", "user", "user, admin or service")
	generate := fs.Bool("generate-password", false, "generate a password and print it once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *username == "" {
		return &usageError{"user create: --username is required"}
	}
	pw := ""
	if *generate {
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
	a, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.Accounts.Create(ctx, *username, *role, pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, u.ID)
	if *generate {
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
// is set) exactly as the API's would be.
func openApp(ctx context.Context, e env) (*app.App, error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return app.New(ctx, cfg, app.Deps{Log: log})
}

// The commands below change existing users exactly as the admin endpoints
// do, through account.Service, with no acting user (revoked_by_user_id NULL).

func userSetDisabled(ctx context.Context, disable bool, args []string, e env) error {
	name := "user enable"
	if disable {
		name = "user disable"
	}
	pos, err := parsePositional(newFlagSet(name, e), args, "USERNAME")
	if err != nil {
		return err
	}
	return withUser(ctx, e, pos[0], func(m *account.Service, u postgres.User) error {
		u, n, err := m.Update(ctx, u.ID, account.Change{Disabled: &disable}, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: disabled=%t, %d sessions revoked\n", u.Username, u.DisabledAt != nil, n)
		return nil
	})
}

func userSetRole(ctx context.Context, args []string, e env) error {
	pos, err := parsePositional(newFlagSet("user set-role", e), args, "USERNAME", "ROLE")
	if err != nil {
		return err
	}
	return withUser(ctx, e, pos[0], func(m *account.Service, u postgres.User) error {
		u, n, err := m.Update(ctx, u.ID, account.Change{Role: &pos[1]}, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: role=%s, %d sessions revoked\n", u.Username, u.Role, n)
		return nil
	})
}

func userResetPassword(ctx context.Context, args []string, e env) error {
	pos, err := parsePositional(newFlagSet("user reset-password", e), args, "USERNAME")
	if err != nil {
		return err
	}
	pw, err := readPasswordLine(e)
	if err != nil {
		return errors.New("no password on stdin")
	}
	return withUser(ctx, e, pos[0], func(m *account.Service, u postgres.User) error {
		n, err := m.ResetPassword(ctx, u.ID, pw, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: password reset, %d sessions revoked\n", u.Username, n)
		return nil
	})
}

// parsePositional parses fs over args whose flags may come before, between
// or after the positional arguments, which must be exactly want.
func parsePositional(fs *flag.FlagSet, args []string, want ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != len(want) {
		return nil, &usageError{fmt.Sprintf("%s: want %s", fs.Name(), strings.Join(want, " "))}
	}
	return pos, nil
}

// withUser runs fn with the user called username.
func withUser(ctx context.Context, e env, username string, fn func(*account.Service, postgres.User) error) error {
	a, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.Accounts.UserByName(ctx, username)
	if err != nil {
		return fmt.Errorf("user %q: %w", username, err)
	}
	return fn(a.Accounts, u)
}
