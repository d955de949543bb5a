package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/seedc5a8123e/authd/internal/account"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func sessionCmd() *command {
	return &command{
		name:    "session",
		summary: "list and revoke sessions",
		detail:  "List and revoke sessions as the admin endpoints do." + needsDB,
		subs: []*command{{
			name:     "list",
			synopsis: "--user USERNAME [--include-revoked]",
			summary:  "list a user's sessions",
			detail: `
Print a user's sessions, newest first, one per line: id, creation, expiry,
revocation time and reason, client IP and user agent.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				username := fs.String("user", "", "the `USERNAME` whose sessions to list (required)")
				all := fs.Bool("include-revoked", false, "list revoked and expired sessions too")
				return func(ctx context.Context, _ []string, e env) error { return sessionList(ctx, *username, *all, e) }
			},
		}, {
			name:     "revoke",
			synopsis: "SID [--reason REASON]",
			summary:  "revoke one session",
			args:     []string{"SID"},
			detail: `
Revoke the session SID as POST /sessions/{sid}/revoke does, with the
--actor user as the acting user (default none); its tokens are refused from
then on.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				reason := fs.String("reason", "", "the `REASON` recorded with the revocation (default admin_revoke)")
				return func(ctx context.Context, pos []string, e env) error { return sessionRevoke(ctx, pos[0], *reason, e) }
			},
		}, {
			name:     "revoke-all",
			synopsis: "[--reason REASON]",
			summary:  "deny every token of every user minted until now (incident response)",
			detail: `
Record an issuer-wide cutoff as POST /sessions/revoke-all does, with the
--actor user as the acting user (default none): every access and refresh token of every user minted before it is
refused from then on, by authd at once and by verifiers with their next poll
or push; users must log in again. Then mark the sessions it covers revoked,
in batches (the running servers also do this every 10 s), and print the
cutoff's nbf and how many sessions were marked.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				reason := fs.String("reason", "", "the `REASON` recorded with the cutoff (default issuer_cutoff)")
				return func(ctx context.Context, _ []string, e env) error { return sessionRevokeAll(ctx, *reason, e) }
			},
		}},
	}
}

// sessionList prints a user's sessions, newest first, one per line.
func sessionList(ctx context.Context, username string, all bool, e env) error {
	if username == "" {
		return &usageError{msg: "session list: --user is required"}
	}
	return withUser(ctx, e, username, func(ctx context.Context, m *account.Service, u postgres.User) error {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SID\tCREATED\tEXPIRES\tREVOKED\tREASON\tIP\tUSER AGENT")
		cursor := ""
		for {
			p, err := m.Sessions(ctx, u.ID, all, cursor, account.MaxLimit)
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
func sessionRevoke(ctx context.Context, sid, reason string, e env) error {
	a, ctx, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	already, err := a.Accounts.RevokeSession(ctx, sid, reason, actorID(ctx))
	if err != nil {
		return fmt.Errorf("session %s: %w", sid, err)
	}
	if already {
		fmt.Fprintf(e.stdout, "%s: already revoked\n", sid)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: revoked\n", sid)
	return nil
}

// sessionRevokeAll records the issuer-wide cutoff and sweeps its sessions.
func sessionRevokeAll(ctx context.Context, reason string, e env) error {
	a, ctx, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Sessions.RevokeAll(ctx, reason, actorID(ctx))
	if err != nil {
		return fmt.Errorf("revoke-all: %w", err)
	}
	fmt.Fprintf(e.stdout, "cutoff recorded: every token with iat before %d (%s) is denied until %s\n",
		c.NBF, time.Unix(c.NBF, 0).UTC().Format(time.RFC3339), time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	n, err := a.Sessions.SweepCutoffs(ctx)
	if err != nil {
		return fmt.Errorf("revoke-all: the cutoff holds, but marking its sessions stopped after %d (the servers go on): %w", n, err)
	}
	fmt.Fprintf(e.stdout, "%d sessions marked revoked\n", n)
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
