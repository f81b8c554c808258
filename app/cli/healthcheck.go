package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/confab/confab/app/config"
)

// healthcheckCmd is `confab healthcheck`, a container's health probe.
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
