// Package db is Confab's storage: SQLite through modernc.org/sqlite (pure
// Go, no cgo), schema migrations embedded as goose SQL files, and the
// hand-written queries behind chat.Store. The reads it shares with the
// PostgreSQL store (package postgres) are in db/sqlq; what is here is what
// SQLite needs of its own: the writes, the group commit, the statement and
// user caches.
//
// SQLite has one writer. Store keeps a single-connection write pool, so
// writers queue in Go rather than on SQLite's lock, beside a pool of
// read-only connections that WAL lets run while the writer writes.
// synchronous=FULL: a commit is on disk before it is acknowledged, so
// neither a killed process nor a power cut loses an acknowledged message;
// throughput comes from group commit (InsertMessages), not from weaker sync.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ chat.Store = (*Store)(nil)

// Store implements chat.Store on one SQLite file.
type Store struct {
	sqlq.Reader // on the read pool

	write *sql.DB // exactly one connection
	read  *sql.DB // query_only pool
	path  string

	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt // see stmt

	sendMu sync.Mutex
	send   *sendConn // the group commit's statements on the write connection

	users userCache

	indexer searchIndexer // see searchindex.go

	hooks atomic.Uint32 // the webhook.Set of events written (webhook.go)
}

// Open opens (creating it and its folder if needed) the SQLite file at path
// and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	s, err := open("sqlite", path)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		s.Close()
		return nil, err
	}
	s.startSearchIndexer()
	return s, nil
}

// OpenNoMigrate opens the file without applying migrations (for
// `confab migrate`).
func OpenNoMigrate(path string) (*Store, error) { return open("sqlite", path) }

// open opens the file through the database/sql driver registered as
// driverName: modernc's "sqlite", or in tests one that wraps it.
func open(driverName, path string) (*Store, error) {
	// busy_timeout first, so that even the journal_mode switch waits
	// rather than failing when another process holds the file.
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	u := "file:" + (&url.URL{Path: path}).EscapedPath()
	w, err := sql.Open(driverName, u+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open(driverName, u+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)

	if err := w.Ping(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return &Store{
		Reader: sqlq.Reader{Q: readPool{r}, ByteOrder: sqlq.ByteOrderSQLite},
		write:  w, read: r, path: path, stmts: map[stmtKey]*sql.Stmt{},
	}, nil
}

// Migrate runs goose in direction "up", "down" (one step) or "status"
// (returned as text through the error-free path of MigrationStatus).
func (s *Store) Migrate(ctx context.Context, direction string) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	switch direction {
	case "up":
		if _, err = p.Up(ctx); err == nil {
			err = s.foldDisplayKeys(ctx)
		}
	case "down":
		_, err = p.Down(ctx)
	default:
		return fmt.Errorf("migrate: unknown direction %q", direction)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", direction, err)
	}
	return nil
}

// foldDisplayKeys gives display_key to the users whose name migration
// 00003_display_key left for Go to fold (it has a non-ASCII character).
// Run after every "up": once done, one index lookup on a reader that
// finds nothing, and the writer is not taken.
func (s *Store) foldDisplayKeys(ctx context.Context) error {
	const unfolded = `FROM users WHERE display_key = '' AND display_name <> ''`
	var pending bool
	if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 `+unfolded+`)`).Scan(&pending); err != nil || !pending {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, display_name `+unfolded)
		if err != nil {
			return fmt.Errorf("fold display names: %w", err)
		}
		type name struct {
			id   int64
			name string
		}
		names, err := sqlq.Collect(rows, 0, func(r sqlq.Row) (name, error) {
			var n name
			return n, r.Scan(&n.id, &n.name)
		})
		rows.Close()
		if err != nil {
			return fmt.Errorf("fold display names: %w", err)
		}
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET display_key = ? WHERE id = ?`, sqlq.Fold(n.name), n.id); err != nil {
				return fmt.Errorf("fold display names: %w", err)
			}
		}
		return nil
	})
}

// MigrationStatus lists every migration with whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]*goose.MigrationStatus, error) {
	p, err := s.provider()
	if err != nil {
		return nil, err
	}
	return p.Status(ctx)
}

func (s *Store) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.write, sub)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Ping checks that a read connection answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// Backup writes a consistent copy of the database to dst while it stays
// in use (VACUUM INTO). dst must not exist.
func (s *Store) Backup(ctx context.Context, dst string) error {
	// VACUUM INTO is refused on the query_only read pool ("attempt to
	// write a readonly database"), and on the writer it would hold every
	// send for the length of the copy. A connection of its own reads one
	// snapshot like any reader and writes only dst.
	b, err := sql.Open("sqlite", "file:"+(&url.URL{Path: s.path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer b.Close()
	if _, err := b.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return b.Close()
}

// DB returns the read pool, for tests and tools that inspect the file.
func (s *Store) DB() *sql.DB { return s.read }

// Close checkpoints the WAL into the main file and closes every connection.
func (s *Store) Close() error {
	s.stopSearchIndexer()
	s.stmtMu.Lock()
	for k, st := range s.stmts {
		st.Close()
		delete(s.stmts, k)
	}
	s.stmtMu.Unlock()
	serr := s.closeSendConn(context.Background())
	_, cerr := s.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	rerr := s.read.Close()
	werr := s.write.Close()
	return errors.Join(serr, cerr, rerr, werr)
}

// stmt returns query prepared on pool (s.read or s.write), preparing it
// on first use. modernc's driver keeps no statement cache, and parsing the
// same SQL again was a fifth of the CPU of a send — on the one writer
// goroutine, where it is every sender's latency. database/sql prepares a
// Stmt again by itself on any new connection of the pool.
//
// For the write pool, call it before s.tx and bind the statement with
// tx.StmtContext: inside a transaction the pool's one connection is busy,
// and preparing on the pool would wait for it forever.
func (s *Store) stmt(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	key := stmtKey{pool, query}
	s.stmtMu.Lock()
	st := s.stmts[key]
	s.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	// Prepared without the lock: on the write pool it may wait for a
	// transaction to end, and nobody else should wait with it.
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if first := s.stmts[key]; first != nil { // prepared meanwhile
		st.Close()
		return first, nil
	}
	s.stmts[key] = st
	return st, nil
}

type stmtKey struct {
	pool  *sql.DB
	query string
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
// A full disk is chat.CodeStorageFull (storageFull).
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storageFull(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return storageFull(err)
	}
	if err := tx.Commit(); err != nil {
		return storageFull(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// storageFull returns err as chat.StorageFull when SQLite says the disk
// is full (SQLITE_FULL, whatever its extended code: a write to the WAL,
// or a page the file could not grow by), else err as it is. The
// transaction it ended was rolled back, by SQLite or by the caller (a
// failed COMMIT too: the driver rolls back what it leaves open), so the
// write connection is ready for the next one once space is freed.
func storageFull(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return chat.StorageFull(err)
	}
	return err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// readPool is the read pool as sqlq.Reader reads it.
type readPool struct{ db *sql.DB }

func (p readPool) Query(ctx context.Context, query string, args ...any) (sqlq.ClosingRows, error) {
	rows, err := p.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return closingRows{rows}, nil
}

func (p readPool) QueryRow(ctx context.Context, query string, args ...any) sqlq.Row {
	return foundRow{p.db.QueryRowContext(ctx, query, args...)}
}

type closingRows struct{ *sql.Rows }

func (r closingRows) Close() { r.Rows.Close() }

// foundRow returns chat.ErrNotFound for no row.
type foundRow struct{ row *sql.Row }

func (r foundRow) Scan(dst ...any) error { return notFound(r.row.Scan(dst...)) }

// notFound maps sql.ErrNoRows to chat.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return chat.ErrNotFound
	}
	return err
}
