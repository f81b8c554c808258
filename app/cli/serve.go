package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/confab/confab/app/server"
)

// serveCmd is `confab [serve]`: the server, until a signal stops it.
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
	log.Info("starting", "version", version(c.revision), "database", where, "redis", cfg.RedisURL != "", "uid", os.Getuid())
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
