package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func sessionCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return &usageError{"session: want a subcommand (list, revoke)"}
	}
	switch args[0] {
	case "list":
		return sessionList(ctx, args[1:], e)
	case "revoke":
		return sessionRevoke(ctx, args[1:], e)
	default:
		return &usageError{fmt.Sprintf("session: unknown subcommand %q", args[0])}
	}
}

// sessionList prints a user's sessions, newest first, one per line.
func sessionList(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("session list", e)
	username := fs.String("user", "", "the user whose sessions to list")
	all := fs.Bool("include-revoked", false, "list revoked and expired sessions too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *username == "" {
		return &usageError{"session list: --user is required"}
	}
	return withUser(ctx, e, *username, func(m *account.Service, u postgres.User) error {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SID\tCREATED\tEXPIRES\tREVOKED\tREASON\tIP\tUSER AGENT")
		cursor := ""
		for {
			p, err := m.Sessions(ctx, u.ID, *all, cursor, account.MaxLimit)
			if err != nil {
				return err
			}
			for _, s := range p.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, stamp(&s.CreatedAt), stamp(&s.ExpiresAt),
					stamp(s.RevokedAt), orDash(s.RevokedReason), orDash(s.IP), orDash(s.UserAgent))
			}
			if cursor = p.NextCursor; cursor == "" {
				return tw.Flush()
			}
		}
	})
}

// sessionRevoke revokes one session as POST /sessions/{sid}/revoke does,
// with no acting user.
func sessionRevoke(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("session revoke", e)
	reason := fs.String("reason", "", "why (default admin_revoke)")
	pos, err := parsePositional(fs, args, "SID")
	if err != nil {
		return err
	}
	a, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	already, err := a.Accounts.RevokeSession(ctx, pos[0], *reason)
	if err != nil {
		return fmt.Errorf("session %s: %w", pos[0], err)
	}
	if already {
		fmt.Fprintf(e.stdout, "%s: already revoked\n", pos[0])
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: revoked\n", pos[0])
	return nil
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}
