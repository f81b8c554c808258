package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/confab/confab/db"
)

// backupCmd is `confab backup PATH`; the copy itself is db.Backup.
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
				n, err := db.Backup(ctx, cfg.DatabasePath, args[0])
				if err != nil {
					return c.fail("backup", err)
				}
				fmt.Fprintf(c.stdout, "backup written: %s (%d bytes, integrity ok)\n", args[0], n)
				return exitOK
			}
		},
	}
}
