package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/clock"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/password"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func userCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return &usageError{"user: want a subcommand (create)"}
	}
	switch args[0] {
	case "create":
		return userCreate(ctx, args[1:], e)
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
