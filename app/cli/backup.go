package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/confab/confab/app/attach"
	"github.com/confab/confab/app/blob"
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
The attachments' files the snapshot names are copied from FILES_PATH to
the folder PATH.files first (not with S3_ENDPOINT: the object store keeps
them, back it up with its own tools).

To restore, stop the server and start it with DATABASE_PATH=PATH and
FILES_PATH=PATH.files (or move them into place; remove any old -wal and
-shm files beside the database).`,
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
				dst := args[0]
				if _, err := os.Lstat(dst); err == nil {
					return c.fail("backup", fmt.Errorf("%s already exists; choose a new path", dst))
				}
				// The database first, under a temporary name; then the
				// files it names; then the database takes its name: PATH
				// exists only once the whole backup does.
				tmp := dst + ".partial-db"
				n, err := db.Backup(ctx, cfg.DatabasePath, tmp)
				if err != nil {
					return c.fail("backup", err)
				}
				defer os.Remove(tmp)
				files := 0
				if cfg.S3Endpoint == "" {
					// Read beside the server, which may be storing
					// files meanwhile; a server never started on this
					// database has none.
					var dir blob.Store = emptyStore{}
					if d, err := blob.ReadDir(cfg.Files()); err == nil {
						dir = d
					} else if !errors.Is(err, os.ErrNotExist) {
						return c.fail("backup", err)
					}
					if files, err = attach.BackupFiles(ctx, tmp, dir, dst+".files"); err != nil {
						return c.fail("backup", err)
					}
				}
				if err := os.Rename(tmp, dst); err != nil {
					return c.fail("backup", err)
				}
				fmt.Fprintf(c.stdout, "backup written: %s (%d bytes, integrity ok), %d files in %s.files\n", dst, n, files, dst)
				return exitOK
			}
		},
	}
}

// emptyStore is a file store with no files.
type emptyStore struct{}

func (emptyStore) Put(context.Context, string, io.Reader, int64) error {
	return errors.New("read only")
}
func (emptyStore) Open(context.Context, string) (blob.Object, error) { return nil, blob.ErrNotFound }
func (emptyStore) Delete(context.Context, string) error              { return nil }
func (emptyStore) Walk(context.Context, func(string, int64) error) error {
	return nil
}
