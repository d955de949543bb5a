package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

type helpCase struct {
	path  []string
	flags []string // leaves
	subs  []string // groups
}

// helpCases is every command path, with the flags (leaves) or subcommands
// (groups) its usage must name. TestHelpCoversEveryCommand keeps it complete.
var helpCases = []helpCase{
	{path: nil, subs: []string{"serve", "migrate up", "migrate down", "migrate version", "user create", "user disable",
		"user enable", "user set-role", "user reset-password", "user add-secret", "user remove-secret", "session list", "session revoke", "session revoke-all", "audit list", "keys generate", "keys kek",
		"keys list", "keys rotate", "keys import", "version"}},
	{path: []string{"serve"}, flags: []string{"--no-migrate", "--bootstrap-admin"}},
	{path: []string{"migrate"}, subs: []string{"up", "down", "version"}},
	{path: []string{"migrate", "up"}},
	{path: []string{"migrate", "down"}},
	{path: []string{"migrate", "version"}},
	{path: []string{"user"}, subs: []string{"create", "disable", "enable", "set-role", "reset-password", "add-secret", "remove-secret"}},
	{path: []string{"user", "create"}, flags: []string{"--username", "--role", "--generate-password", "--actor"}},
	{path: []string{"user", "disable"}, flags: []string{"--actor"}},
	{path: []string{"user", "enable"}, flags: []string{"--actor"}},
	{path: []string{"user", "set-role"}, flags: []string{"--actor"}},
	{path: []string{"user", "reset-password"}, flags: []string{"--actor"}},
	{path: []string{"user", "add-secret"}, flags: []string{"--actor"}},
	{path: []string{"user", "remove-secret"}, flags: []string{"--actor"}},
	{path: []string{"session"}, subs: []string{"list", "revoke", "revoke-all"}},
	{path: []string{"session", "list"}, flags: []string{"--user", "--include-revoked", "--actor"}},
	{path: []string{"session", "revoke"}, flags: []string{"--reason", "--actor"}},
	{path: []string{"session", "revoke-all"}, flags: []string{"--reason", "--actor"}},
	{path: []string{"audit"}, subs: []string{"list"}},
	{path: []string{"audit", "list"}, flags: []string{"--user", "--session", "--type", "--since", "--until", "--json", "--actor"}},
	{path: []string{"keys"}, subs: []string{"generate", "kek", "list", "rotate", "import"}},
	{path: []string{"keys", "generate"}, flags: []string{"--out", "--alg"}},
	{path: []string{"keys", "kek"}},
	{path: []string{"keys", "list"}},
	{path: []string{"keys", "rotate"}, flags: []string{"--actor"}},
	{path: []string{"keys", "import"}, flags: []string{"--files", "--actor"}},
	{path: []string{"version"}},
}

// noEnv is a getenv that fails the test: help needs no configuration.
func noEnv(t *testing.T) func(string) string {
	return func(k string) string {
		t.Errorf("help read the environment variable %s", k)
		return ""
	}
}

type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("help read stdin")
	return 0, errors.New("no stdin")
}

// TestHelp: every command and subcommand answers --help, -h and `authd help
// PATH` with its own usage on stdout, naming it and each of its flags or
// subcommands, exits 0, and touches neither the environment nor stdin.
func TestHelp(t *testing.T) {
	for _, tc := range helpCases {
		name := strings.Join(append([]string{"authd"}, tc.path...), " ")
		for _, args := range [][]string{
			append(slices.Clone(tc.path), "--help"),
			append(slices.Clone(tc.path), "-h"),
			append([]string{"help"}, tc.path...),
		} {
			t.Run(strings.Join(args, "_"), func(t *testing.T) {
				var out, errOut bytes.Buffer
				err := run(context.Background(), args, noEnv(t), failReader{t}, &out, &errOut)
				if err != nil {
					t.Fatalf("authd %s: %v (exit %d), want exit 0", strings.Join(args, " "), err, exitCode(err))
				}
				if errOut.Len() > 0 {
					t.Errorf("stderr: %q", errOut.String())
				}
				usage := out.String()
				if !strings.HasPrefix(usage, "usage: "+name+" ") && !strings.HasPrefix(usage, "usage: "+name+"\n") {
					t.Fatalf("usage does not start with %q:\n%s", "usage: "+name, usage)
				}
				for _, f := range tc.flags {
					if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(f) + `\b`).MatchString(usage) {
						t.Errorf("usage does not describe flag %s:\n%s", f, usage)
					}
				}
				for _, s := range tc.subs {
					if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(s) + `\b`).MatchString(usage) {
						t.Errorf("usage does not list %q:\n%s", s, usage)
					}
				}
			})
		}
	}
}

// TestHelpCoversEveryCommand: helpCases names every command of the tree,
// and every flag a leaf defines, so a new one cannot go untested.
func TestHelpCoversEveryCommand(t *testing.T) {
	want := map[string]bool{}
	rootCmd().walk(nil, func(path []string, c *command) {
		want[strings.Join(path, " ")] = true
		if c.define == nil {
			return
		}
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.flags(fs)
		fs.VisitAll(func(f *flag.Flag) {
			i := slices.IndexFunc(helpCases, func(h helpCase) bool { return slices.Equal(h.path, path) })
			if i < 0 || !slices.Contains(helpCases[i].flags, "--"+f.Name) {
				t.Errorf("authd %s: flag --%s is not in helpCases", strings.Join(path, " "), f.Name)
			}
		})
	})
	for _, tc := range helpCases {
		p := strings.Join(tc.path, " ")
		if !want[p] {
			t.Errorf("helpCases names %q, which is no command", p)
		}
		delete(want, p)
	}
	for p := range want {
		t.Errorf("command %q is not in helpCases", p)
	}
}

// TestHelpAfterArguments: --help wins wherever it stands, even after
// positional arguments or a flag whose value is wrong.
func TestHelpAfterArguments(t *testing.T) {
	for _, args := range [][]string{
		{"user", "disable", "bob", "--help"},
		{"session", "revoke", "sid", "--reason", "x", "-h"},
		{"keys", "generate", "--alg", "HS256", "--help"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, noEnv(t), failReader{t}, &out, &out); err != nil {
			t.Errorf("authd %s: %v", strings.Join(args, " "), err)
		}
		if !strings.HasPrefix(out.String(), "usage: authd "+args[0]+" "+args[1]) {
			t.Errorf("authd %s printed %q", strings.Join(args, " "), out.String())
		}
	}
}

// TestUsageErrorsShowTheCommandsUsage: a command-line mistake exits 2 with
// the usage of the command it concerns, not the global one.
func TestUsageErrorsShowTheCommandsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: authd <command>"},
		{[]string{"frobnicate"}, "usage: authd <command>"},
		{[]string{"help", "frobnicate"}, "usage: authd <command>"},
		{[]string{"user"}, "usage: authd user <subcommand>"},
		{[]string{"user", "frobnicate"}, "usage: authd user <subcommand>"},
		{[]string{"migrate", "sideways"}, "usage: authd migrate <subcommand>"},
		{[]string{"migrate", "up", "extra"}, "usage: authd migrate up"},
		{[]string{"user", "set-role", "bob"}, "usage: authd user set-role USERNAME ROLE"},
		{[]string{"keys", "generate"}, "usage: authd keys generate --out FILE"},
		{[]string{"session", "list", "--nope"}, "usage: authd session list --user USERNAME"},
		{[]string{"version", "--short"}, "usage: authd version"},
	} {
		err := run(context.Background(), tc.args, noEnv(t), failReader{t}, &bytes.Buffer{}, &bytes.Buffer{})
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "\n\n"+tc.want) {
			t.Errorf("authd %s: err = %v (exit %d), want exit 2 with %q", strings.Join(tc.args, " "), err, exitCode(err), tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, noEnv(t), failReader{t}, &out, &out); err != nil {
		t.Fatal(err)
	}
	// A test binary has no VCS stamp: the version is (devel), the commit unknown.
	re := regexp.MustCompile(`^version: \S+\ncommit: \S+\ngo: (\S+)\n$`)
	m := re.FindStringSubmatch(out.String())
	if m == nil || m[1] != runtime.Version() {
		t.Fatalf("authd version printed %q", out.String())
	}
}
