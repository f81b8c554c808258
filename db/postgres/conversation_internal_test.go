package postgres

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/confab/confab/app/chat/storetest"
	"github.com/confab/confab/db/postgres/pgtest"
)

// TestConversations_FixedNumberOfQueries counts the statements PostgreSQL
// is sent, one by one or in a batch: two, in two round trips (the second
// names the conversations the first found), to list a page of a viewer's
// conversations however many there are, and to read one.
func TestConversations_FixedNumberOfQueries(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	var n counter
	cfg.ConnConfig.Tracer = &n
	s, err := openPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	storetest.ConversationReadsFixed(t, s,
		storetest.Counter{Name: "statements", Count: n.statements.Load, Want: 2},
		storetest.Counter{Name: "round trips", Count: n.trips.Load, Want: 2})
}

// counter counts the statements pgx sends, and the round trips: a query
// alone or a batch.
type counter struct{ statements, trips atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.statements.Add(1)
	c.trips.Add(1)
	return ctx
}

func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}

func (c *counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.statements.Add(1)
}

func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TestConversationPages_FixedNumberOfQueries: a page of 50 conversations,
// the first or one after a cursor, is two statements in two round trips
// whether the viewer is in 1, 100 or 10,000 conversations.
func TestConversationPages_FixedNumberOfQueries(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	var n counter
	cfg.ConnConfig.Tracer = &n
	s, err := openPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	storetest.ConversationPagesFixed(t, s, s.exec,
		storetest.Counter{Name: "statements", Count: n.statements.Load, Want: 2},
		storetest.Counter{Name: "round trips", Count: n.trips.Load, Want: 2})
}

// exec runs a statement on the pool, for tests that seed.
func (s *Store) exec(ctx context.Context, query string, args ...any) error {
	_, err := s.pool.Exec(ctx, query, args...)
	return err
}

// BenchmarkConversationPage is a page of 50 conversations of a user in
// 10,000 (storetest.BenchConversationPage).
func BenchmarkConversationPage(b *testing.B) {
	s, err := Open(context.Background(), pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchConversationPage(b, s, s.exec)
}
