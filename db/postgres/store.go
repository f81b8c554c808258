// Package postgres is Confab's storage on PostgreSQL: the same schema and
// the same behaviour as package db (SQLite) behind chat.Store, for several
// identical nodes that share one database.
//
// It uses pgx natively (pgxpool), not database/sql: a group commit of up to
// 256 messages is then a handful of pipelined round trips (pgx.Batch)
// instead of a few per message, and pgx prepares and caches every statement
// per connection by itself. database/sql (pgx/v5/stdlib, over the same pool)
// is used only to hand goose the *sql.DB its migrations need.
//
// Because other nodes write the same rows, Store must never keep rows in
// memory between calls (no user cache, unlike package db), and every write
// that depends on what it read takes the row locks it needs, in a fixed
// order (users, then conversations by ascending id) so that two nodes'
// transactions never deadlock on each other; a transaction that still ends
// in a deadlock or serialization failure is run again. A statement that
// fails aborts the whole transaction in PostgreSQL, so no statement here may
// fail for a reason that concerns one message of a batch: those are checked
// first, or absorbed by ON CONFLICT DO NOTHING.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ chat.Store = (*Store)(nil)

// Store implements chat.Store on a PostgreSQL database.
type Store struct {
	sqlq.Reader // on the pool
	pool        *pgxpool.Pool
	indexer     searchIndexer
	hooks       atomic.Uint32 // the webhook.Set of events written (webhook.go)
}

// Open connects to the database at url (a postgres:// URL or key=value
// DSN, as pgx accepts; pool_max_conns and search_path may be set in it)
// and applies pending migrations. Nodes that start at once migrate one
// after the other. The search indexer runs from then until Close.
func Open(ctx context.Context, url string) (*Store, error) {
	s, err := OpenNoMigrate(ctx, url)
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

// OpenNoMigrate connects without applying migrations (for `confab migrate`)
// and without the background search indexer: a search still brings the
// index up to date itself.
func OpenNoMigrate(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("open database: the PostgreSQL URL does not parse")
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	return openPool(ctx, cfg)
}

// connectTimeout bounds making one connection (dial, TLS, startup) when
// the URL sets no connect_timeout. pgxpool finishes a connection attempt
// in the background after the call that wanted it gave up, for up to two
// minutes by default: against a database that swallows packets, every
// slot of the pool would hang that long, and the node would stay
// unavailable long after the database came back.
const connectTimeout = 5 * time.Second

// openPool connects with cfg (in tests, one that traces every statement).
func openPool(ctx context.Context, cfg *pgxpool.Config) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return &Store{Reader: sqlq.Reader{Q: reader{pool}, ByteOrder: sqlq.ByteOrderPostgres}, pool: pool}, nil
}

// Migrate runs goose in direction "up" (every pending migration) or
// "down" (one step), holding an advisory lock so that nodes starting at
// once do not migrate over each other.
func (s *Store) Migrate(ctx context.Context, direction string) error {
	if direction != "up" && direction != "down" {
		return fmt.Errorf("migrate: unknown direction %q", direction)
	}
	p, db, err := s.provider(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if direction == "up" {
		_, err = p.Up(ctx)
	} else {
		_, err = p.Down(ctx)
	}
	// Statements prepared before no longer describe the tables: start
	// from fresh connections.
	s.pool.Reset()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", direction, err)
	}
	return nil
}

// MigrationStatus lists every migration with whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]*goose.MigrationStatus, error) {
	p, db, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return p.Status(ctx)
}

// migrationLockBase is mixed into the advisory lock id of migrations.
const migrationLockBase = "confab migrations "

func (s *Store) provider(ctx context.Context) (*goose.Provider, interface{ Close() error }, error) {
	// The lock is per schema (goose keeps its version table in the
	// current schema): databases that hold one Confab per schema, such
	// as the tests', do not queue behind each other.
	var schema *string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	if schema == nil {
		return nil, nil, errors.New("migrations: no schema of search_path exists")
	}
	h := fnv.New64a()
	h.Write([]byte(migrationLockBase + *schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64())),
		lock.WithLockTimeout(1, 300), // every second, for five minutes
	)
	if err != nil {
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	return p, db, nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
}

// Pool returns the connection pool, for tests and tools that inspect the
// database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the search indexer and closes every connection. It always
// returns nil; the error is there so that Store closes like db.Store.
func (s *Store) Close() error {
	s.stopSearchIndexer()
	s.pool.Close()
	return nil
}

// maxAttempts bounds how often tx runs a transaction that failed on a
// deadlock or a serialization failure.
const maxAttempts = 5

// tx runs fn in a transaction and commits it, running it again (up to
// maxAttempts times in all) when PostgreSQL gave up on it because of
// another transaction. fn must start from scratch each time: whatever it
// wrote outside the transaction must be reset at its start.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) || !backoff(ctx, attempt) {
			return err
		}
	}
}

// backoff waits before attempt+1 of a transaction, a little longer each
// time and with some jitter, so that the two that collided do not collide
// again. It reports false when ctx ended first.
func backoff(ctx context.Context, attempt int) bool {
	t := time.NewTimer(time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryable reports a deadlock or a serialization failure: nothing wrong
// with the transaction, only with its timing.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// reader is the pool as sqlq.Reader reads it.
type reader struct{ pool *pgxpool.Pool }

func (r reader) Query(ctx context.Context, query string, args ...any) (sqlq.ClosingRows, error) {
	return r.pool.Query(ctx, query, args...)
}

func (r reader) QueryRow(ctx context.Context, query string, args ...any) sqlq.Row {
	return foundRow{r.pool.QueryRow(ctx, query, args...)}
}

// foundRow returns chat.ErrNotFound for no row.
type foundRow struct{ row pgx.Row }

func (r foundRow) Scan(dst ...any) error { return notFound(r.row.Scan(dst...)) }

// notFound maps pgx.ErrNoRows to chat.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.ErrNotFound
	}
	return err
}

// querier is what a pool and a transaction have in common.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
