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
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/session"
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
	accounts, closeDB, err := openAccounts(ctx, e)
	if err != nil {
		return err
	}
	defer closeDB()
	u, err := accounts.Create(ctx, *username, *role, pw)
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

func openAccounts(ctx context.Context, e env) (*account.Service, func(), error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return nil, nil, err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	return account.NewService(db, password.New(password.Default), clock.Real{}), db.Close, nil
}

// The commands below change existing users exactly as the admin endpoints
// do, through account.Manager, with no acting user (revoked_by_user_id NULL).

func userSetDisabled(ctx context.Context, disable bool, args []string, e env) error {
	name := "user enable"
	if disable {
		name = "user disable"
	}
	pos, err := parsePositional(newFlagSet(name, e), args, "USERNAME")
	if err != nil {
		return err
	}
	return withUser(ctx, e, pos[0], func(m *account.Manager, u postgres.User) error {
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
	return withUser(ctx, e, pos[0], func(m *account.Manager, u postgres.User) error {
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
	return withUser(ctx, e, pos[0], func(m *account.Manager, u postgres.User) error {
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

// openManager wires account.Manager as serve does, publishing revocations to
// Redis when AUTHD_REDIS_URL is set.
func openManager(ctx context.Context, e env) (*account.Manager, func(), error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	pub, closePub, err := newPublisher(cfg, log, nil)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	hasher := password.New(password.Default)
	clk := clock.Real{}
	// No token is minted here, so the session service needs no issuer.
	sessions := session.NewService(db, hasher, nil, clk, session.Limits{SessionTTL: cfg.SessionTTL, MaxPerUser: cfg.MaxSessionsPerUser}, pub, log)
	return account.NewManager(db, hasher, clk, sessions), func() { closePub(); db.Close() }, nil
}

// withUser runs fn with the user called username.
func withUser(ctx context.Context, e env, username string, fn func(*account.Manager, postgres.User) error) error {
	m, closeAll, err := openManager(ctx, e)
	if err != nil {
		return err
	}
	defer closeAll()
	u, err := m.UserByName(ctx, username)
	if err != nil {
		return fmt.Errorf("user %q: %w", username, err)
	}
	return fn(m, u)
}
