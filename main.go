// Command confab is a real-time chat backend in one binary: accounts,
// conversations and messages in embedded SQLite (or Postgres), live events
// over WebSockets, and a built-in web console.
//
//	confab [serve]                   run the server (the default)
//	confab migrate up|down|status    manage the database schema
//	confab createuser --username N   create an account (password from stdin)
//	confab backup PATH               copy the live database, consistently
//	confab healthcheck               exit 0 when the local server answers
//	confab version                   print the version
//	confab bench SCENARIO            load a server over its API
//
// Every command takes --help; the commands live in app/cli. main is wiring
// only: it hands the process (arguments, environment, standard streams,
// signals) to the command line and exits with its status.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/confab/confab/app/cli"
)

// revision is the VCS revision given at link time, for builds without
// VCS information (a Docker build, whose context has no .git):
// -ldflags "-X main.revision=<commit>". When set it wins over the build
// info. It is a link-time constant, the one package-level variable here.
var revision string

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

// run is main without the process: it returns the exit status. stdin is
// read only by createuser.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cli.Run(ctx, args, cli.Env{Getenv: getenv, Stdin: stdin, Stdout: stdout, Stderr: stderr, Revision: revision})
}
