// Command confab is a real-time chat backend in one binary: accounts,
// conversations and messages in embedded SQLite, live events over
// WebSockets, and a built-in web console.
//
//	confab [serve]                   run the server (the default)
//	confab migrate up|down|status    manage the database schema
//	confab createuser --username N   create an account (password from stdin)
//	confab backup PATH               copy the live database, consistently
//	confab healthcheck               exit 0 when the local server answers
//	confab version                   print the version
//	confab bench SCENARIO            load a server over its API
//
// Every command takes --help. main is wiring only: run is the whole
// program without the process, so that tests can call it.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	"golang.org/x/term"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/bench"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/db"
	"github.com/confab/confab/db/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts the graceful shutdown, a second
		// one kills at once, as people expect of Ctrl-C.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2 // bad configuration or usage (healthcheck never uses it: Docker reserves 2)
)

// cli is what every command may use of the process.
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
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
	return []command{serveCmd(), migrateCmd(), createUserCmd(), backupCmd(), healthcheckCmd(), versionCmd()}
}

// run is main without the process: it returns the exit status. stdin is
// read only by createuser.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, usage())
			return exitOK
		case "-v", "-version", "--version":
			name, args = "version", args[1:]
		}
		// Any other flag belongs to serve, the default command.
	}
	if name == "help" {
		if len(args) == 0 {
			fmt.Fprint(stdout, usage())
			return exitOK
		}
		name, args = args[0], []string{"--help"}
	}
	switch name {
	case "bench": // a client of any server, with scenarios and flags of its own
		return bench.Run(ctx, args, stdout, stderr)
	}
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd.run(ctx, c, args)
		}
	}
	fmt.Fprintf(stderr, "confab: unknown command %q\n\n%s", name, usage())
	return exitConfig
}

func usage() string {
	var b strings.Builder
	b.WriteString("Usage: confab [command] [flags]\n\nCommands:\n")
	for _, cmd := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(&b, "  %-12s %s\n", "bench", "load a server over its API: idle, fanout, send, chat")
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

// serve

func serveCmd() command {
	return command{
		name: "serve", summary: "run the server (the default)", failCode: exitConfig,
		help: `Serves the REST API, the WebSockets and the web console until SIGTERM or
SIGINT, then shuts down gracefully: it stops accepting, closes sockets with
1001, finishes in-flight requests, checkpoints the database and exits 0
within SHUTDOWN_TIMEOUT. Pending migrations are applied at start.

Settings are environment variables, each with a default that works on a
laptop: PORT, HOST, DATABASE_PATH, JWT_SECRET, ACCESS_TOKEN_TTL,
REFRESH_TOKEN_TTL, ALLOWED_ORIGINS, LOG_LEVEL, LOG_FORMAT, TRUST_PROXY,
METRICS_TOKEN, SHUTDOWN_TIMEOUT and more (README.md lists them all). A bad
value stops the start with one line naming the variable, exit status 2.`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "host", "HOST", "listen `address`")
			env.add(fs, "port", "PORT", "listen `port`")
			env.add(fs, "db", "DATABASE_PATH", "SQLite database `file`")
			return func(ctx context.Context, args []string) int {
				if len(args) > 0 {
					return c.usageError("serve", "unexpected argument %q", args[0])
				}
				return c.serve(ctx, env)
			}
		},
	}
}

func (c *cli) serve(ctx context.Context, env envFlags) int {
	cfg, code := c.loadConfig("serve", env)
	if code != exitOK {
		return code
	}
	log := newLogger(cfg, c.stderr)
	if cfg.RunAs {
		if err := runAs(cfg.RunAsUID, cfg.RunAsGID, filepath.Dir(cfg.DatabasePath)); err != nil {
			log.Error("start failed", "err", err)
			return exitFail
		}
	}
	where := cfg.DatabasePath
	if cfg.DatabaseURL != "" {
		where = "postgres (DATABASE_URL)" // the URL holds a password
	}
	log.Info("starting", "version", version(), "database", where, "redis", cfg.RedisURL != "", "uid", os.Getuid())
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		log.Error("start failed", "err", err)
		if hint := writableHint(cfg.DatabasePath); hint != "" {
			log.Error(hint)
		}
		return exitFail
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		srv.Close()
		log.Error("listen failed", "err", err)
		return exitFail
	}
	if cfg.PprofAddr != "" {
		if err := servePprof(ctx, cfg.PprofAddr, log); err != nil {
			srv.Close()
			ln.Close()
			log.Error("pprof listen failed", "err", err)
			return exitFail
		}
	}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("server stopped", "err", err)
		return exitFail
	}
	return exitOK
}

// writableHint explains the most common failed start in a container: a
// volume mounted owned by root while confab runs as an unprivileged user.
func writableHint(dbPath string) string {
	dir := filepath.Dir(dbPath)
	f, err := os.CreateTemp(dir, ".confab-write-check-*")
	if err == nil {
		f.Close()
		os.Remove(f.Name())
		return ""
	}
	return fmt.Sprintf("the database folder %s is not writable by this process (uid %d): "+
		"give it to that user (e.g. chown %d:%d %s) or set DATABASE_PATH to a writable place",
		dir, os.Getuid(), os.Getuid(), os.Getgid(), dir)
}

// migrate

func migrateCmd() command {
	return command{
		name: "migrate", args: "up|down|status", summary: "apply, roll back or list schema migrations", failCode: exitConfig,
		help: `up      applies every pending migration (serve does this at start too).
down    rolls back the latest applied migration. DESTRUCTIVE: rolling back
        a migration drops what it created, with the data in it; rolling
        back the first one drops every table. It needs --yes. Take a
        backup first (confab backup PATH), and stop the server.
status  lists the migrations and whether each is applied.`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "db", "DATABASE_PATH", "SQLite database `file`")
			yes := fs.Bool("yes", false, "confirm a destructive down")
			return func(ctx context.Context, args []string) int {
				if len(args) != 1 {
					return c.usageError("migrate", "want exactly one of up, down or status")
				}
				switch args[0] {
				case "up", "down", "status":
				default:
					return c.usageError("migrate", "unknown direction %q: want up, down or status", args[0])
				}
				if args[0] == "down" && !*yes {
					return c.usageError("migrate", "down drops the tables of the latest migration and the data in them; "+
						"back up first (confab backup PATH), then run 'confab migrate down --yes'")
				}
				cfg, code := c.loadConfig("migrate", env)
				if code != exitOK {
					return code
				}
				if err := c.migrate(ctx, cfg, args[0]); err != nil {
					return c.fail("migrate", err)
				}
				return exitOK
			}
		},
	}
}

// migrator is what `confab migrate` needs of either store.
type migrator interface {
	Migrate(ctx context.Context, direction string) error
	MigrationStatus(ctx context.Context) ([]*goose.MigrationStatus, error)
	Close() error
}

func (c *cli) migrate(ctx context.Context, cfg config.Config, direction string) error {
	var (
		store migrator
		err   error
	)
	if cfg.DatabaseURL != "" {
		store, err = postgres.OpenNoMigrate(ctx, cfg.DatabaseURL)
	} else {
		store, err = openSQLiteNoMigrate(cfg.DatabasePath, direction)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return c.migrateStatus(ctx, store, direction)
}

// openSQLiteNoMigrate opens the SQLite file for `confab migrate`: up may
// create it, down and status need it to exist.
func openSQLiteNoMigrate(path, direction string) (*db.Store, error) {
	if direction == "up" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no database at %s: %w", path, err)
	}
	return db.OpenNoMigrate(path)
}

func (c *cli) migrateStatus(ctx context.Context, store migrator, direction string) error {
	if direction != "status" {
		if err := store.Migrate(ctx, direction); err != nil {
			return err
		}
	}
	status, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%-8s %-8s %-24s %s\n", "VERSION", "STATE", "APPLIED_AT", "SOURCE")
	for _, s := range status {
		at := "-"
		if !s.AppliedAt.IsZero() {
			at = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(c.stdout, "%-8d %-8s %-24s %s\n", s.Source.Version, s.State, at, s.Source.Path)
	}
	return nil
}

// createuser

func createUserCmd() command {
	return command{
		name: "createuser", args: "--username NAME", summary: "create an account", failCode: exitConfig,
		help: `Creates an account with the same rules as POST /api/auth/register/. The
password is never an argument (argv is visible to every user of the
machine): it is read from standard input (its first line), or asked for
twice without echo when standard input is a terminal.

  printf '%s\n' "$PASSWORD" | confab createuser --username alice`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "db", "DATABASE_PATH", "SQLite database `file`")
			username := fs.String("username", "", "the new account's `name` (required)")
			display := fs.String("display-name", "", "display `name` (default: the username)")
			return func(ctx context.Context, args []string) int {
				if len(args) > 0 {
					return c.usageError("createuser", "unexpected argument %q (the password is read from stdin, never argv)", args[0])
				}
				if *username == "" {
					return c.usageError("createuser", "--username is required")
				}
				cfg, code := c.loadConfig("createuser", env)
				if code != exitOK {
					return code
				}
				password, err := c.readPassword()
				if err != nil {
					return c.fail("createuser", err)
				}
				u, err := createUser(ctx, cfg, *username, password, *display)
				if err != nil {
					return c.fail("createuser", describe(err))
				}
				fmt.Fprintf(c.stdout, "created user %s (id %d)\n", u.Username, u.ID)
				return exitOK
			}
		},
	}
}

// readPassword reads the password from a terminal without echo (twice),
// or the first line of any other stdin.
func (c *cli) readPassword() (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(c.stderr, "Password (again): ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords do not match")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

func createUser(ctx context.Context, cfg config.Config, username, password, display string) (chat.User, error) {
	store, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return chat.User{}, err
	}
	defer store.Close()
	// Register also logs the account in; those tokens are thrown away, so
	// they are signed with a throwaway key and their login is revoked.
	key := make([]byte, 32)
	rand.Read(key)
	a := auth.NewService(store, auth.NewHasher(0), auth.NewTokens(key, time.Minute, time.Minute, nil), auth.Options{})
	u, pair, err := a.Register(ctx, username, password, display)
	if err != nil {
		return chat.User{}, err
	}
	if err := a.Logout(ctx, pair.Refresh); err != nil {
		return chat.User{}, fmt.Errorf("revoke the registration's login: %w", err)
	}
	return u, nil
}

// describe turns a validation error into one line per field.
func describe(err error) error {
	var ce *chat.Error
	if !errors.As(err, &ce) || len(ce.Fields) == 0 {
		return err
	}
	keys := make([]string, 0, len(ce.Fields))
	for k := range ce.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+": "+strings.Join(ce.Fields[k], " "))
	}
	return errors.New(strings.Join(lines, "; "))
}

// backup

func backupCmd() command {
	return command{
		name: "backup", args: "PATH", summary: "write a consistent copy of the live database", failCode: exitConfig,
		help: `Writes a consistent snapshot of the database (DATABASE_PATH) to PATH while
the server keeps running (SQLite's VACUUM INTO, inside one read
transaction): it holds every message acknowledged before it began. The
copy is checked with PRAGMA integrity_check and synced before it takes
its name, so PATH is either complete or absent. PATH must not exist.

To restore, stop the server and start it with DATABASE_PATH=PATH (or
move PATH to DATABASE_PATH; remove any old -wal and -shm files beside it).`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "db", "DATABASE_PATH", "SQLite database `file` to copy")
			return func(ctx context.Context, args []string) int {
				if len(args) != 1 {
					return c.usageError("backup", "want exactly one PATH to write")
				}
				cfg, code := c.loadConfig("backup", env)
				if code != exitOK {
					return code
				}
				if cfg.DatabaseURL != "" {
					return c.fail("backup", errors.New("DATABASE_URL is set: back Postgres up with its own tools (pg_dump, or the provider's snapshots); this command copies the SQLite file"))
				}
				n, err := backup(ctx, cfg.DatabasePath, args[0])
				if err != nil {
					return c.fail("backup", err)
				}
				fmt.Fprintf(c.stdout, "backup written: %s (%d bytes, integrity ok)\n", args[0], n)
				return exitOK
			}
		},
	}
}

// backup copies src to dst through a temporary file in dst's folder, so
// that dst appears only once the copy is whole, checked and on disk.
func backup(ctx context.Context, src, dst string) (int64, error) {
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("no database at %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("%s already exists; choose a new path", dst)
	}
	store, err := db.OpenNoMigrate(src)
	if err != nil {
		return 0, err
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	tmp := fmt.Sprintf("%s.partial-%x", dst, suffix)
	defer removeDB(tmp)
	err = store.Backup(ctx, tmp)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := checkIntegrity(ctx, tmp); err != nil {
		return 0, err
	}
	if err := syncFile(tmp); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	if err := syncFile(filepath.Dir(dst)); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func checkIntegrity(ctx context.Context, path string) error {
	s, err := db.OpenNoMigrate(path)
	if err != nil {
		return err
	}
	defer s.Close()
	var res string
	if err := s.DB().QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check of the copy failed: %s", res)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// removeDB removes an SQLite file with its -wal and -shm companions.
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}

// healthcheck

func healthcheckCmd() command {
	return command{
		name: "healthcheck", summary: "exit 0 when the server on this machine is healthy", failCode: exitFail,
		help: `Asks GET http://127.0.0.1:$PORT/healthz (HOST when it names one address)
and exits 0 on 200, 1 otherwise: a container HEALTHCHECK needs no curl.
It never exits 2, which Docker reserves.`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "port", "PORT", "the server's `port`")
			timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
			return func(ctx context.Context, args []string) int {
				cfg, err := config.Load(env.getenv(c.getenv))
				if err != nil || len(args) > 0 {
					fmt.Fprintln(c.stderr, "unhealthy: bad configuration or arguments:", err, args)
					return exitFail
				}
				if err := healthcheck(ctx, cfg, *timeout); err != nil {
					fmt.Fprintln(c.stderr, "unhealthy:", err)
					return exitFail
				}
				fmt.Fprintln(c.stdout, "ok")
				return exitOK
			}
		},
	}
}

func healthcheck(ctx context.Context, cfg config.Config, timeout time.Duration) error {
	host := cfg.Host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening on every address: loopback is one of them
	}
	url := "http://" + net.JoinHostPort(host, fmt.Sprint(cfg.Port)) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// version

func versionCmd() command {
	return command{
		name: "version", summary: "print the version and the revision it was built from", failCode: exitConfig,
		help: "Prints the module version, the VCS revision (and whether the tree was modified) and the Go version.",
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			return func(context.Context, []string) int {
				fmt.Fprintln(c.stdout, version())
				return exitOK
			}
		},
	}
}

// revision is the VCS revision given at link time, for builds without
// VCS information (a Docker build, whose context has no .git):
// -ldflags "-X main.revision=<commit>". When set it wins over the build
// info. It is a link-time constant, the one package-level variable here.
var revision string

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "confab (unknown version)"
	}
	v, rev, modified := "confab "+info.Main.Version, revision, false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if revision == "" {
				rev = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	v += " revision " + rev
	if modified {
		v += " (modified)"
	}
	return v + " " + info.GoVersion
}
