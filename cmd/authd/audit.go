package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/seedc5a8123e/authd/internal/auditlog"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

func auditCmd() *command {
	return &command{
		name:    "audit",
		summary: "read the audit log",
		detail:  "Read the audit log as GET /audit does." + needsDB,
		subs: []*command{{
			name:     "list",
			synopsis: "[--user USERNAME] [--session SID] [--type TYPE] [--since TIME] [--until TIME] [--json]",
			summary:  "print audit events, newest first",
			detail: `
Print the audit events the filters select, newest first, one per line: time,
type, actor, subject user, session, client IP and detail. --user matches
events about the user or done by it. TIME is RFC 3339 (2026-01-02T15:04:05Z)
or a duration before now (24h). With --json each line is the event as GET
/audit's application/x-ndjson export writes it.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				username := fs.String("user", "", "only events about or by `USERNAME`")
				sid := fs.String("session", "", "only events of session `SID`")
				typ := fs.String("type", "", "only events of `TYPE` (login_succeeded, session_revoked, ...)")
				since := fs.String("since", "", "only events at or after `TIME`")
				until := fs.String("until", "", "only events before `TIME`")
				asJSON := fs.Bool("json", false, "print JSON lines")
				return func(ctx context.Context, _ []string, e env) error {
					return auditList(ctx, auditArgs{*username, *sid, *typ, *since, *until, *asJSON}, e)
				}
			},
		}},
	}
}

type auditArgs struct {
	username, sid, typ, since, until string
	json                             bool
}

// cliTime reads an RFC 3339 time or a duration before now.
func cliTime(v, name string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, &usageError{msg: fmt.Sprintf("audit list: --%s: %q is neither an RFC 3339 time nor a duration such as 24h", name, v)}
}

func auditList(ctx context.Context, args auditArgs, e env) error {
	a, ctx, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	now := a.Clock.Now()
	f := auditlog.Filter{SessionID: args.sid, Type: args.typ}
	if f.Since, err = cliTime(args.since, "since", now); err != nil {
		return err
	}
	if f.Until, err = cliTime(args.until, "until", now); err != nil {
		return err
	}
	if args.username != "" {
		u, err := a.Accounts.UserByName(ctx, args.username)
		if err != nil {
			return fmt.Errorf("user %q: %w", args.username, err)
		}
		f.UserID = u.ID
	}
	enc := json.NewEncoder(e.stdout)
	return a.Audit.Export(ctx, f, func(ev postgres.AuditEvent) error {
		if args.json {
			ev.At = ev.At.UTC()
			return enc.Encode(ev)
		}
		detail, _ := json.Marshal(ev.Detail)
		_, err := fmt.Fprintf(e.stdout, "%s  %-22s actor=%s user=%s session=%s ip=%s %s\n",
			ev.At.UTC().Format(time.RFC3339), ev.Type, ev.Actor, dash(ev.SubjectUserID), dash(ev.SessionID), dash(ev.IP), detail)
		return err
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
