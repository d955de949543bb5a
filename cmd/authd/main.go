// Command authd is the token service: `authd serve` runs it, and the other
// subcommands administer keys, the schema and users. `authd help` lists them;
// every command explains itself with --help.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "authd: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// env bundles the process surfaces run receives, so tests can call run.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// actor is an admin command's --actor: the operator's username, empty
	// for audit.ActorCLI.
	actor string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	return rootCmd().exec(ctx, []string{"authd"}, args, e)
}

// rootCmd is the whole command line.
func rootCmd() *command {
	return &command{
		name: "authd",
		detail: `
authd issues JWT access tokens and rotating refresh tokens for sessions kept in
PostgreSQL. Configuration comes from the environment (DATABASE_URL and AUTHD_*;
see README.md, Configuration, or ` + "`authd serve --help`" + `).`,
		subs: []*command{serveCmd(), migrateCmd(), admin(userCmd()), admin(sessionCmd()), admin(auditCmd()), keysCmd(), versionCmd()},
	}
}

// needsDB is the detail paragraph of every command that opens the database.
const needsDB = `

Reads DATABASE_URL (required) and the AUTHD_* variables serve reads; with
AUTHD_REDIS_URL set, revocations are pushed to verifiers as the API pushes
them.`
