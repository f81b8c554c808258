// Package cli is confab's command line: one file per command (serve,
// migrate, createuser, staff, backup, healthcheck, version), the dispatcher that
// picks one, and the flags they share. bench, a client of any server, lives
// in app/bench and is only dispatched from here, with the one bench tool
// that writes a database (app/bench/seed) passed in.
//
//	confab [serve]                   run the server (the default)
//	confab migrate up|down|status    manage the database schema
//	confab createuser --username N   create an account (password from stdin; --staff for a moderator)
//	confab staff grant|revoke NAME   make an account staff, or not
//	confab backup PATH               copy the live database, consistently
//	confab healthcheck               exit 0 when the local server answers
//	confab version                   print the version
//	confab bench SCENARIO            load a server over its API, or seed a database
//
// Every command takes --help. A command parses its flags and arguments and
// calls the packages that do the work (app/server, db, app/auth); it holds
// no logic of its own beyond what its output needs. Nothing here touches the
// process (os.Args, os.Exit, signals): main passes them in, so that tests
// can run the whole command line in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/confab/confab/app/bench"
	"github.com/confab/confab/app/bench/seed"
	"github.com/confab/confab/app/config"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2 // bad configuration or usage (healthcheck never uses it: Docker reserves 2)
)

// Env is what the command line may use of the process it runs in.
type Env struct {
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string
	// Stdin is read only by createuser; nil is empty.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Revision is the VCS revision given at link time, for builds without
	// VCS information; empty: the build info's, if any.
	Revision string
}

// cli is what every command may use of the process.
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	revision       string
}

// command is one subcommand of confab.
type command struct {
	name, args, summary, help string
	// flags adds the command's flags to fs and returns the function that
	// runs it once fs is parsed.
	flags func(fs *flag.FlagSet, c *cli) func(ctx context.Context, args []string) int
	// failCode is the exit status of a usage error.
	failCode int
}

func commands() []command {
	return []command{serveCmd(), migrateCmd(), createUserCmd(), staffCmd(), backupCmd(), healthcheckCmd(), versionCmd()}
}

// Run runs the command line args (without the program name) and returns
// the exit status.
func Run(ctx context.Context, args []string, env Env) int {
	c := &cli{getenv: env.Getenv, stdin: env.Stdin, stdout: env.Stdout, stderr: env.Stderr, revision: env.Revision}
	if c.getenv == nil {
		c.getenv = func(string) string { return "" }
	}
	if c.stdin == nil {
		c.stdin = strings.NewReader("")
	}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			fmt.Fprint(c.stdout, usage())
			return exitOK
		case "-v", "-version", "--version":
			name, args = "version", args[1:]
		}
		// Any other flag belongs to serve, the default command.
	}
	if name == "help" {
		if len(args) == 0 {
			fmt.Fprint(c.stdout, usage())
			return exitOK
		}
		name, args = args[0], []string{"--help"}
	}
	switch name {
	case "bench": // a client of any server, with scenarios and flags of its own
		return bench.Run(ctx, args, c.stdout, c.stderr, bench.Tool{Name: "seed", Summary: seed.Summary, Run: seed.Run})
	}
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd.run(ctx, c, args)
		}
	}
	fmt.Fprintf(c.stderr, "confab: unknown command %q\n\n%s", name, usage())
	return exitConfig
}

func usage() string {
	var b strings.Builder
	b.WriteString("Usage: confab [command] [flags]\n\nCommands:\n")
	for _, cmd := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(&b, "  %-12s %s\n", "bench", "load a server over its API: idle, fanout, send, chat, reads; seed a database")
	b.WriteString("\nWithout a command, confab serves. Run 'confab COMMAND --help' for a command's flags.\n" +
		"Settings come from environment variables (PORT, DATABASE_PATH, JWT_SECRET, ...): see README.md.\n")
	return b.String()
}

// run parses the command's flags, which may come before or after its
// arguments, and runs it.
func (cmd command) run(ctx context.Context, c *cli, args []string) int {
	fs := flag.NewFlagSet("confab "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {} // --help prints to stdout below; errors are printed by flag
	runFn := cmd.flags(fs, c)
	var rest []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			cmd.printHelp(c.stdout, fs)
			return exitOK
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "Run 'confab %s --help' for usage.\n", cmd.name)
			return cmd.failCode
		}
		if fs.NArg() == 0 {
			break
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
	return runFn(ctx, rest)
}

func (cmd command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: confab %s", cmd.name)
	if cmd.args != "" {
		fmt.Fprintf(w, " %s", cmd.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", cmd.help)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// usageError reports a wrong use of cmd and returns exitConfig.
func (c *cli) usageError(cmd, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "confab %s: %s\nRun 'confab %s --help' for usage.\n", cmd, fmt.Sprintf(format, args...), cmd)
	return exitConfig
}

// fail reports an error of cmd and returns exitFail.
func (c *cli) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "confab %s: %v\n", cmd, err)
	return exitFail
}

// envFlags are flags that stand for environment variables: a flag that is
// set wins over the variable, and config.Load validates both alike.
type envFlags map[string]*string

func (e envFlags) add(fs *flag.FlagSet, name, variable, help string) {
	e[variable] = fs.String(name, "", help+" (overrides "+variable+")")
}

// getenv returns the environment as the flags amend it.
func (e envFlags) getenv(base func(string) string) func(string) string {
	return func(k string) string {
		if v, ok := e[k]; ok && *v != "" {
			return *v
		}
		return base(k)
	}
}

// loadConfig loads the configuration as amended by flags, printing a bad
// setting the way serve does.
func (c *cli) loadConfig(cmd string, flags envFlags) (config.Config, int) {
	cfg, err := config.Load(flags.getenv(c.getenv))
	if err != nil {
		fmt.Fprintf(c.stderr, "confab %s: %v\n", cmd, err)
		return config.Config{}, exitConfig
	}
	return cfg, exitOK
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
