package main

import (
	"context"
	"fmt"

	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func migrateCmd(_ context.Context, args []string, e env) error {
	if len(args) != 1 {
		return &usageError{"migrate: want one of up, down, version"}
	}
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return err
	}
	m, err := postgres.NewMigrator(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "up":
		if err := m.Up(); err != nil {
			return err
		}
	case "down":
		if err := m.Down(); err != nil {
			return err
		}
	case "version":
	default:
		return &usageError{fmt.Sprintf("migrate: unknown action %q (want up, down or version)", args[0])}
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "version: %d\ndirty: %t\n", v, dirty)
	return nil
}
