package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/db"
	"github.com/confab/confab/db/postgres"
)

// migrateCmd is `confab migrate up|down|status` on either store.
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
