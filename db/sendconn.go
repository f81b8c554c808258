package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/confab/confab/db/sqlq"
)

// sendConn is the write connection as the group commit uses it: at the
// driver's level, with the send's statements prepared on it once and kept
// for the connection's life.
//
// Through database/sql, every statement of a batch went through its
// locks, a Rows and its close-watching, and (with a context that can end)
// modernc's watcher goroutine and progress handler, which it sets up and
// tears down around each statement: twice per message, on the one writer
// goroutine every sender waits for. Here the statements run with no
// context. Once BEGIN IMMEDIATE holds the write lock they wait for no
// lock, and an interrupt could not cut a slow disk read short anyway; the
// batch's context bounds BEGIN and COMMIT (the lock wait and the fsync),
// and InsertMessages checks it between messages.
//
// Only the goroutine holding the write pool's one connection (inside
// sql.Conn.Raw) uses a sendConn, so it needs no lock of its own.
type sendConn struct {
	dc                                any // the driver connection the statements belong to
	member, insert, byClientID, touch driver.Stmt
	readOwnStmt, replyTo, clock       driver.Stmt
	upload, attach                    driver.Stmt
	hook                              driver.Stmt         // only with webhooks on
	args                              []driver.NamedValue // scratch, reused by every statement
	row                               []driver.Value      // scratch
}

// sendConn returns the send statements of the driver connection dc,
// preparing them the first time dc is seen. Callers hold dc (Raw).
func (s *Store) sendConn(ctx context.Context, dc any) (*sendConn, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.send != nil && s.send.dc == dc {
		return s.send, nil
	}
	// A new connection (the first, or one database/sql opened after
	// discarding the last): the old one's statements went with it.
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("driver connection %T cannot prepare with a context", dc)
	}
	sc := &sendConn{dc: dc}
	for _, q := range []struct {
		dst   *driver.Stmt
		query string
	}{{&sc.member, sqlMember}, {&sc.insert, sqlInsertMessage}, {&sc.byClientID, sqlOriginal}, {&sc.touch, sqlTouchConversation}, {&sc.readOwnStmt, sqlq.ReadOwn}, {&sc.replyTo, sqlReplyTo}, {&sc.clock, sqlTakeVersions},
		{&sc.upload, sqlFreeUpload}, {&sc.attach, sqlAttachUpload}, {&sc.hook, sqlKeepWebhook}} {
		st, err := p.PrepareContext(ctx, q.query)
		if err != nil {
			sc.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		*q.dst = st
	}
	s.send = sc
	return sc, nil
}

// close finalizes the statements. Callers hold the connection.
func (sc *sendConn) close() error {
	var errs []error
	for _, st := range []driver.Stmt{sc.member, sc.insert, sc.byClientID, sc.touch, sc.readOwnStmt, sc.replyTo, sc.clock, sc.upload, sc.attach, sc.hook} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// closeSendConn finalizes the send statements on the write connection,
// before the pool closes it.
func (s *Store) closeSendConn(ctx context.Context) error {
	s.sendMu.Lock()
	sc := s.send
	s.send = nil
	s.sendMu.Unlock()
	if sc == nil {
		return nil
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if dc != sc.dc {
			return nil // that connection is gone, and its statements with it
		}
		return sc.close()
	})
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN's
// _txlock) and commits it; ctx bounds the BEGIN and the COMMIT. A full
// disk is chat.CodeStorageFull (storageFull).
func (sc *sendConn) tx(ctx context.Context, fn func() error) error {
	b, ok := sc.dc.(driver.ConnBeginTx)
	if !ok {
		return fmt.Errorf("driver connection %T cannot begin with a context", sc.dc)
	}
	tx, err := b.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return storageFull(fmt.Errorf("begin: %w", err))
	}
	if err := fn(); err != nil {
		tx.Rollback()
		return storageFull(err)
	}
	if err := tx.Commit(); err != nil {
		return storageFull(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// bind sets the scratch arguments to args.
func (sc *sendConn) bind(args []any) []driver.NamedValue {
	sc.args = sc.args[:0]
	for i, a := range args {
		sc.args = append(sc.args, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return sc.args
}

// query runs st and reads its first row into dst (which may be shorter
// than the row, or nil). found is false when there is no row.
func (sc *sendConn) query(st driver.Stmt, dst []driver.Value, args ...any) (found bool, err error) {
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), sc.bind(args))
	if err != nil {
		return false, err
	}
	n := len(rows.Columns())
	if cap(sc.row) < n {
		sc.row = make([]driver.Value, n)
	}
	row := sc.row[:n]
	switch err = rows.Next(row); {
	case err == io.EOF:
		err = nil
	case err == nil:
		found = true
		copy(dst, row)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return found, err
}

func (sc *sendConn) exec(st driver.Stmt, args ...any) error {
	_, err := sc.execResult(st, args...)
	return err
}

func (sc *sendConn) execResult(st driver.Stmt, args ...any) (driver.Result, error) {
	return st.(driver.StmtExecContext).ExecContext(context.Background(), sc.bind(args))
}

// valuesRow is a row read at the driver's level, scanned into the
// sql.Scanner destinations sqlq uses (sql.NullInt64, sql.NullString).
type valuesRow []driver.Value

func (r valuesRow) Scan(dst ...any) error {
	if len(dst) != len(r) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dst), len(r))
	}
	for i, d := range dst {
		sc, ok := d.(sql.Scanner)
		if !ok {
			return fmt.Errorf("scan: destination %T is not a sql.Scanner", d)
		}
		if err := sc.Scan(r[i]); err != nil {
			return fmt.Errorf("scan column %d: %w", i, err)
		}
	}
	return nil
}
