package db

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/confab/confab/app/chat"
)

// The search index (messages_fts, migrations 00009 and 00010) follows the messages
// rather than being written with them: the group commit (InsertMessages)
// never touches it, as indexing each send in the batch's transaction
// cost the send path 18–21 % more CPU per message (docs/performance.md).
// search_indexed.id is the high-water mark: every message with an id up
// to it is in the index, none above it is. The indexer adds the messages
// above it in its own write transactions, a batch at a time, moving the
// mark in the same transaction; edits and deletions of messages at or
// below the mark update the index through the migration's triggers, and
// a message above it is indexed later with its content of then.
//
// A search first indexes whatever is above the mark (catchUpSearchIndex),
// so a message is found as soon as its send was answered.
const (
	// searchIndexBatch is the most messages one indexing transaction
	// adds, so that the writer waits for the write connection no longer
	// than that takes.
	searchIndexBatch = 1000
	// searchIndexEvery is the least time between two rounds of the
	// background indexer: the sends of that time go into one round.
	searchIndexEvery = 200 * time.Millisecond
	// searchIndexTimeout bounds one round of indexing (and a search's
	// catching up).
	searchIndexTimeout = 30 * time.Second
)

const (
	// sqlSearchBehind says whether a message is above the mark (one
	// step of the messages' primary key).
	sqlSearchBehind = `SELECT EXISTS (SELECT 1 FROM messages WHERE id > (SELECT id FROM search_indexed))`
	sqlSearchMark   = `SELECT id FROM search_indexed`
	// sqlSearchNext is the top id and number of the next batch above
	// mark $1.
	sqlSearchNext = `SELECT coalesce(max(id), 0), count(*) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)`
	// sqlSearchIndex adds the messages in (mark, top] to the index, with
	// their content of now (a deleted message's is '').
	sqlSearchIndex = `INSERT INTO messages_fts (rowid, body)
		SELECT id, body FROM messages_fts_source WHERE id > ? AND id <= ? ORDER BY id`
	sqlSearchSetMark = `UPDATE search_indexed SET id = ?`
)

// searchIndexer is the Store's background indexer.
type searchIndexer struct {
	mu     sync.Mutex    // held by whoever indexes: the indexer or a search
	nudge  chan struct{} // capacity 1: commits' nudges coalesce
	cancel context.CancelFunc
	done   chan struct{}
	stop   sync.Once
}

// startSearchIndexer starts the background indexer (Open does, once the
// schema is migrated); Close stops it.
func (s *Store) startSearchIndexer() {
	ctx, cancel := context.WithCancel(context.Background())
	s.indexer.nudge = make(chan struct{}, 1)
	s.indexer.cancel = cancel
	s.indexer.done = make(chan struct{})
	go s.runSearchIndexer(ctx)
	s.nudgeSearchIndexer() // messages a previous run left above the mark
}

// stopSearchIndexer stops the background indexer and waits for it; it
// may be called more than once, and on a Store without one.
func (s *Store) stopSearchIndexer() {
	s.indexer.stop.Do(func() {
		if s.indexer.cancel != nil {
			s.indexer.cancel()
			<-s.indexer.done
		}
	})
}

// nudgeSearchIndexer tells the indexer that messages were committed,
// without waiting: a nudge already pending stands for this one too.
func (s *Store) nudgeSearchIndexer() {
	select {
	case s.indexer.nudge <- struct{}{}:
	default: // pending already, or no indexer (a nil channel)
	}
}

func (s *Store) runSearchIndexer(ctx context.Context) {
	defer close(s.indexer.done)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.indexer.nudge:
		}
		// At most one round per searchIndexEvery: the nudges of the
		// meantime coalesce, and their messages go in one batch.
		if wait := searchIndexEvery - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		// An error (a full disk, a schema migrated down) leaves the
		// messages above the mark for the next round or search, which
		// reports it.
		_ = s.catchUpSearchIndex(ctx)
	}
}

// catchUpSearchIndex indexes every message above the mark, a batch per
// transaction, under the indexer's lock: after it returns nil, every
// message committed before it was called is in the index.
func (s *Store) catchUpSearchIndex(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, searchIndexTimeout)
	defer cancel()
	// Most of the time nothing is above the mark: a read says so
	// without taking the write connection.
	behind, err := s.stmt(ctx, s.read, sqlSearchBehind)
	if err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	var b bool
	if err := behind.QueryRowContext(ctx).Scan(&b); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	if !b {
		return nil
	}
	s.indexer.mu.Lock()
	defer s.indexer.mu.Unlock()
	for {
		more, err := s.indexSearchBatch(ctx)
		if err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		if !more {
			return nil
		}
	}
}

// indexSearchBatch indexes up to searchIndexBatch messages above the
// mark and moves the mark past them, in one transaction; more says
// whether it may have left some.
func (s *Store) indexSearchBatch(ctx context.Context) (more bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var mark, top int64
		var n int
		if err := tx.QueryRowContext(ctx, sqlSearchMark).Scan(&mark); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, sqlSearchNext, mark, searchIndexBatch).Scan(&top, &n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, sqlSearchIndex, mark, top); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlSearchSetMark, top); err != nil {
			return err
		}
		more = n == searchIndexBatch
		return nil
	})
	return more, err
}

// searchReady brings the index up to date for a search. On a full disk
// the search reads the index as it is (reads keep working while writes
// cannot): the messages of the last moments are missing from it until
// space is freed.
func (s *Store) searchReady(ctx context.Context) error {
	err := s.catchUpSearchIndex(ctx)
	if err != nil && chat.ErrorCode(err) == chat.CodeStorageFull {
		return nil
	}
	return err
}
