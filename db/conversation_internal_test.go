package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"sync/atomic"
	"testing"

	"modernc.org/sqlite"

	"github.com/confab/confab/app/chat/storetest"
)

// TestConversations_FixedNumberOfQueries counts the statements that reach
// SQLite: three to list a page of a viewer's conversations however many
// there are (how many, up to a bound; the page; its participants), and two
// to read one.
func TestConversations_FixedNumberOfQueries(t *testing.T) {
	s, n := mustOpenCounted(t)
	storetest.ConversationReadsFixed(t, s, storetest.Counter{Name: "statements", Count: n.Load, Want: 2, WantPage: 3})
}

// mustOpenCounted opens a migrated store on a new file whose connections
// count every statement they run into n.
func mustOpenCounted(t *testing.T) (s *Store, n *atomic.Int64) {
	t.Helper()
	n = new(atomic.Int64)
	name := "sqlite-counted-" + t.Name()
	sql.Register(name, countingDriver{n})
	s, err := open(name, filepath.Join(t.TempDir(), "confab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background(), "up"); err != nil {
		t.Fatal(err)
	}
	return s, n
}

// countingDriver is modernc's driver, counting each statement run (a
// query or an exec, prepared or not) into n.
type countingDriver struct{ n *atomic.Int64 }

func (d countingDriver) Open(name string) (driver.Conn, error) {
	c, err := (&sqlite.Driver{}).Open(name)
	if err != nil {
		return nil, err
	}
	return countedConn{c.(sqliteConn), d.n}, nil
}

type sqliteConn interface {
	driver.Conn
	driver.QueryerContext
	driver.ExecerContext
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

type countedConn struct {
	sqliteConn
	n *atomic.Int64
}

func (c countedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.sqliteConn.QueryContext(ctx, query, args)
}

func (c countedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.sqliteConn.ExecContext(ctx, query, args)
}

func (c countedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return countedStmt{st.(sqliteStmt), c.n}, nil
}

type sqliteStmt interface {
	driver.Stmt
	driver.StmtQueryContext
	driver.StmtExecContext
}

type countedStmt struct {
	sqliteStmt
	n *atomic.Int64
}

func (s countedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	return s.sqliteStmt.QueryContext(ctx, args)
}

func (s countedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.n.Add(1)
	return s.sqliteStmt.ExecContext(ctx, args)
}

// TestConversationPages_FixedNumberOfQueries: a page of 50 conversations,
// the first or one after a cursor, is three statements whether the viewer
// is in 1, 100 or 10,000 conversations (each plan of the page is met).
func TestConversationPages_FixedNumberOfQueries(t *testing.T) {
	s, n := mustOpenCounted(t)
	storetest.ConversationPagesFixed(t, s, s.exec, storetest.Counter{Name: "statements", Count: n.Load, Want: 3})
}

// exec runs a statement on the write pool, for tests that seed.
func (s *Store) exec(ctx context.Context, query string, args ...any) error {
	_, err := s.write.ExecContext(ctx, query, args...)
	return err
}

// BenchmarkConversationPage is a page of 50 conversations of a user in
// 10,000 (storetest.BenchConversationPage).
func BenchmarkConversationPage(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "confab.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchConversationPage(b, s, s.exec)
}
