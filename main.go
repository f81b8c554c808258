// Command confab is a real-time chat backend in one binary: accounts,
// conversations and messages in embedded SQLite, live events over
// WebSockets, and a built-in web console.
//
//	confab [serve]     run the server (the default)
//	confab version     print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2 // bad configuration or usage
)

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, version())
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "confab: unknown command %q\n\n%s", cmd, usage)
		return exitConfig
	}
}

const usage = `Usage: confab [command]

Commands:
  serve      run the server (the default); configured by environment variables
  version    print the version
  help       show this help
`

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "confab:", err)
		return exitConfig
	}
	log := newLogger(cfg, stderr)
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		log.Error("start failed", "err", err)
		return exitFail
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		srv.Close()
		log.Error("listen failed", "err", err)
		return exitFail
	}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("server stopped", "err", err)
		return exitFail
	}
	return exitOK
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "confab (unknown version)"
	}
	v := "confab " + info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v + " " + info.GoVersion
}
