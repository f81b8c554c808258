package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/moderate"
	"github.com/confab/confab/app/server"
)

// staffCmd is `confab staff grant|revoke USERNAME`: who may moderate.
func staffCmd() command {
	return command{
		name: "staff", args: "grant|revoke USERNAME", summary: "make an account staff, or not", failCode: exitConfig,
		help: `Grants or revokes staff: a staff account may moderate (the /api/admin/
routes and the console's Staff view: reports, removing messages,
deactivating and reactivating accounts, the audit log). The audit log
records the change, by the command line. It counts at once, on a running
server too.

  confab staff grant alice
  confab staff revoke alice`,
		flags: func(fs *flag.FlagSet, c *cli) func(context.Context, []string) int {
			env := envFlags{}
			env.add(fs, "db", "DATABASE_PATH", "SQLite database `file`")
			return func(ctx context.Context, args []string) int {
				if len(args) != 2 || args[0] != "grant" && args[0] != "revoke" {
					return c.usageError("staff", "want grant|revoke USERNAME")
				}
				cfg, code := c.loadConfig("staff", env)
				if code != exitOK {
					return code
				}
				grant, name := args[0] == "grant", args[1]
				a, changed, err := setStaff(ctx, cfg, name, grant)
				if errors.Is(err, chat.ErrNotFound) {
					return c.fail("staff", fmt.Errorf("no user named %q", name))
				}
				if err != nil {
					return c.fail("staff", err)
				}
				switch {
				case !changed && grant:
					fmt.Fprintf(c.stdout, "%s (id %d) is staff already\n", a.Username, a.ID)
				case !changed:
					fmt.Fprintf(c.stdout, "%s (id %d) is not staff\n", a.Username, a.ID)
				case grant:
					fmt.Fprintf(c.stdout, "%s (id %d) is now staff\n", a.Username, a.ID)
				default:
					fmt.Fprintf(c.stdout, "%s (id %d) is no longer staff\n", a.Username, a.ID)
				}
				return exitOK
			}
		},
	}
}

func setStaff(ctx context.Context, cfg config.Config, username string, staff bool) (moderate.Account, bool, error) {
	store, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return moderate.Account{}, false, err
	}
	defer store.Close()
	a, changed, err := store.SetStaff(ctx, username, staff, moderate.Actor{}, time.Now())
	return moderate.AccountOf(a), changed, err
}
