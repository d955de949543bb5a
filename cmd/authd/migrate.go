package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func migrateCmd() *command {
	leaf := func(action, summary, detail string) *command {
		return &command{
			name: action, summary: summary, detail: detail + needsDB,
			define: func(*flag.FlagSet) runFunc {
				return func(ctx context.Context, _ []string, e env) error { return migrate(ctx, action, e) }
			},
		}
	}
	return &command{
		name:    "migrate",
		summary: "manage the database schema",
		detail: `
The schema steps are embedded in the binary. Each subcommand prints the
resulting version and whether it is dirty (a step failed half-way). up and
down take a session-level advisory lock: connect directly or through a
session-mode pool, never a transaction-mode PgBouncer. AUTHD_DATABASE_DIRECT_URL,
when set, is used instead of DATABASE_URL.`,
		subs: []*command{
			leaf("up", "apply every pending migration",
				"Apply every pending migration; nothing pending is success."),
			leaf("down", "revert the newest migration",
				"Revert the newest applied migration (one step)."),
			leaf("version", "print the schema version",
				"Print the schema version and whether it is dirty; change nothing."),
		},
	}
}

func migrate(_ context.Context, action string, e env) error {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return err
	}
	dbURL, err := cfg.MigrationURL()
	if err != nil {
		return err
	}
	m, err := postgres.NewMigrator(dbURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch action {
	case "up":
		err = m.Up()
	case "down":
		err = m.Down()
	}
	if err != nil {
		return err
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "version: %d\ndirty: %t\n", v, dirty)
	return nil
}
