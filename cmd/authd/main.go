// Command authd is the token service: `authd serve` runs it, and the other
// subcommands administer keys, the schema and users.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: authd <command> [flags]

commands:
  serve [--no-migrate] [--bootstrap-admin]   run the HTTP server
  migrate up|down|version                     manage the database schema
  user create --username U --role R [--generate-password]
                                              create a user (password: first line of stdin)
  user disable|enable USERNAME                disable (revoking every session) or re-enable a user
  user set-role USERNAME ROLE                 change a user's role (revokes every session)
  user reset-password USERNAME                set a new password (first line of stdin; revokes every session)
  session list --user USERNAME [--include-revoked]
                                              list a user's sessions
  session revoke SID [--reason R]             revoke one session
  keys generate --out FILE [--alg EdDSA|ES256]
                                              write a new signing key (mode 0600)

Configuration comes from the environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "authd: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + "\n\n" + usage }

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// env bundles the process surfaces run receives, so tests can call run.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		return &usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, e)
	case "migrate":
		return migrateCmd(ctx, rest, e)
	case "user":
		return userCmd(ctx, rest, e)
	case "session":
		return sessionCmd(ctx, rest, e)
	case "keys":
		return keysCmd(rest, e)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// newFlagSet returns a FlagSet whose errors become usage errors.
func newFlagSet(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return &usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
