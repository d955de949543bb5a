package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// command is one node of the command line: a group, which only dispatches
// to its subcommands, or a leaf, which parses its flags and runs.
//
// Every command answers -h, -help and --help with its own usage on stdout
// and exit status 0, before it reads any configuration.
type command struct {
	name string
	// synopsis follows the command's path on the usage line: its flags and
	// positional arguments, e.g. "--out FILE [--alg EdDSA|ES256]".
	synopsis string
	// summary is one line for the parent's list of commands.
	summary string
	// detail is printed under the usage line: what the command does, what
	// it reads, what it prints. Optional.
	detail string
	// args names the positional arguments a leaf requires, in order.
	args []string
	// define, on a leaf, defines its flags on fs and returns the function
	// that runs it with the positional arguments. It must do nothing else:
	// the usage calls it to list the flags.
	define func(fs *flag.FlagSet) runFunc
	// subs, on a group, are its subcommands.
	subs []*command
	// admin, on a leaf, adds --actor: the operator's username, recorded as
	// the actor of the audit rows the command writes (env.actor).
	admin bool
}

// admin marks every leaf below c an admin command, and returns c.
func admin(c *command) *command {
	c.walk(nil, func(_ []string, l *command) {
		if l.define != nil {
			l.admin = true
		}
	})
	return c
}

// flags defines c's flags on fs, --actor included on an admin command, and
// returns its runFunc.
func (c *command) flags(fs *flag.FlagSet) runFunc {
	run := c.define(fs)
	if !c.admin {
		return run
	}
	actor := fs.String("actor", "", "the operator's `USERNAME`, recorded as the actor in the audit log (default: cli)")
	return func(ctx context.Context, args []string, e env) error {
		e.actor = *actor
		return run(ctx, args, e)
	}
}

type runFunc func(ctx context.Context, args []string, e env) error

// usageError is a mistake in the command line; it exits 2. Its text ends
// with the usage of the command it concerns.
type usageError struct {
	msg   string
	usage string // the command's short usage; empty: filled in by exec
}

func (e *usageError) Error() string { return e.msg + "\n\n" + e.usage }

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// exec runs c, reached through path (["authd", "user", "create"]), with the
// arguments after its name.
func (c *command) exec(ctx context.Context, path, args []string, e env) error {
	err := c.dispatch(ctx, path, args, e)
	var ue *usageError
	if errors.As(err, &ue) && ue.usage == "" {
		ue.usage = c.usageText(path, false)
	}
	return err
}

func (c *command) dispatch(ctx context.Context, path, args []string, e env) error {
	// Messages name the command without "authd": main prefixes "authd: ".
	name := strings.Join(path[1:], " ")
	if c.define == nil { // a group
		switch {
		case len(args) == 0:
			if len(path) == 1 {
				return &usageError{msg: "no command given"}
			}
			return &usageError{msg: fmt.Sprintf("%s: want a subcommand (%s)", name, c.subNames())}
		case isHelp(args[0]):
			fmt.Fprint(e.stdout, c.usage(path))
			return nil
		case args[0] == "help":
			return c.help(path, args[1:], e)
		}
		s := c.sub(args[0])
		if s == nil {
			if len(path) == 1 {
				return &usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
			}
			return &usageError{msg: fmt.Sprintf("%s: unknown subcommand %q (want %s)", name, args[0], c.subNames())}
		}
		return s.exec(ctx, append(slices.Clone(path), s.name), args[1:], e)
	}

	fs := newFlagSet(strings.Join(path, " "))
	runner := c.flags(fs)
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, c.usage(path))
		return nil
	}
	if err != nil {
		return &usageError{msg: fmt.Sprintf("%s: %v", name, err)}
	}
	if len(pos) != len(c.args) {
		if len(c.args) == 0 {
			return &usageError{msg: fmt.Sprintf("%s: unexpected argument %q", name, pos[0])}
		}
		return &usageError{msg: fmt.Sprintf("%s: want %s", name, strings.Join(c.args, " "))}
	}
	return runner(ctx, pos, e)
}

// help prints the usage of the command that args names below c:
// `authd help user create` prints `authd user create --help`.
func (c *command) help(path, args []string, e env) error {
	node, nodePath := c, path
	for _, a := range args {
		s := node.sub(a)
		if s == nil {
			what := strings.Join(append(slices.Clone(path[1:]), args...), " ")
			return &usageError{msg: fmt.Sprintf("help: unknown command %q", what)}
		}
		node, nodePath = s, append(slices.Clone(nodePath), s.name)
	}
	fmt.Fprint(e.stdout, node.usage(nodePath))
	return nil
}

func (c *command) subNames() string {
	var names []string
	for _, s := range c.subs {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// newFlagSet returns a FlagSet that reports errors instead of printing them:
// exec prints the usage itself.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses fs over args whose flags may come before, between or
// after the positional arguments, which it returns. Everything after "--"
// is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usage is c's help text: the usage line, the detail, and the flags of a
// leaf or the subcommands of a group.
func (c *command) usage(path []string) string { return c.usageText(path, true) }

// usageText is c's usage, with the detail paragraphs or without (after the
// message of a usage error).
func (c *command) usageText(path []string, detail bool) string {
	var b strings.Builder
	name := strings.Join(path, " ")
	if c.define == nil {
		what := "<subcommand>"
		if len(path) == 1 {
			what = "<command>"
		}
		fmt.Fprintf(&b, "usage: %s %s [flags] [arguments]\n", name, what)
	} else {
		fmt.Fprintf(&b, "usage: %s\n", strings.TrimSpace(name+" "+c.synopsis))
	}
	if detail && c.detail != "" {
		b.WriteString("\n" + strings.TrimSpace(c.detail) + "\n")
	}

	if c.define != nil {
		fs := newFlagSet(name)
		c.flags(fs)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			b.WriteString("\nflags:\n")
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fs.VisitAll(func(f *flag.Flag) {
				arg, help := flag.UnquoteUsage(f)
				if arg != "" {
					arg = " " + arg
				}
				if f.DefValue != "" && f.DefValue != "false" {
					help += fmt.Sprintf(" (default %q)", f.DefValue)
				}
				fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, help)
			})
			tw.Flush()
		}
		if detail {
			b.WriteString("\n-h, --help prints this text.\n")
		} else {
			fmt.Fprintf(&b, "\nRun `%s --help` for more.\n", name)
		}
		return b.String()
	}

	what := "subcommands"
	if len(path) == 1 {
		what = "commands"
	}
	fmt.Fprintf(&b, "\n%s:\n", what)
	c.list(&b, nil)
	one := strings.TrimSuffix(what, "s")
	fmt.Fprintf(&b, "\nRun `%s <%s> --help` (or `%s help <%s>`) for its flags and arguments.\n", name, one, name, one)
	return b.String()
}

// list writes one entry per leaf below c, named by its path below c.
func (c *command) list(b *strings.Builder, prefix []string) {
	for _, s := range c.subs {
		p := append(slices.Clone(prefix), s.name)
		if s.define == nil {
			s.list(b, p)
			continue
		}
		syn := strings.TrimSpace(strings.Join(p, " ") + " " + s.synopsis)
		const col = 44
		if len(syn) <= col-2 {
			fmt.Fprintf(b, "  %-*s%s\n", col, syn, s.summary)
		} else {
			fmt.Fprintf(b, "  %s\n  %*s%s\n", syn, col, "", s.summary)
		}
	}
}

// walk calls fn with the path of c and of every command below it.
func (c *command) walk(path []string, fn func(path []string, c *command)) {
	fn(path, c)
	for _, s := range c.subs {
		s.walk(append(slices.Clone(path), s.name), fn)
	}
}
