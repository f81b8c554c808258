package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The search index (message_search, migration 00008) follows the
// messages rather than being written with them: the group commit
// (InsertMessages) never touches it, as computing each message's
// tsvector and adding it to the GIN index in the batch's transaction
// cost the send path about 35 % more per message (docs/performance.md).
// search_indexed.id is the high-water mark: every message with an id up
// to it is in message_search. The indexer adds the messages above it in
// transactions of its own, a batch at a time, moving the mark in the same
// transaction; edits and deletions reach message_search through the
// migration's trigger, whether the message is above the mark or not.
//
// The mark may move past every message it has seen because ids become
// visible in the order they were handed out (see migration 00008 and
// sqlInsertMessages): no message is ever committed below it later.
//
// Every node runs an indexer, nudged by its own sends and woken every
// searchIndexTick for the other nodes'. The mark's row is the indexers'
// lock: one indexes a batch at a time, and the others skip their round
// rather than queue behind it. A search first indexes whatever is above
// the mark (searchReady), waiting for the lock if another holds it, so a
// message is found as soon as its send was answered, on any node.
const (
	// searchIndexBatch is the most messages one indexing transaction
	// adds, so that a search waiting for the lock waits no longer than
	// that takes.
	searchIndexBatch = 1000
	// searchIndexEvery is the least time between two rounds of the
	// background indexer: the sends of that time go into one round.
	searchIndexEvery = 200 * time.Millisecond
	// searchIndexTick is how often the indexer looks for messages that
	// other nodes stored (their own indexers index them too, unless
	// they stopped).
	searchIndexTick = 2 * time.Second
	// searchIndexTimeout bounds one round of indexing (and a search's
	// catching up).
	searchIndexTimeout = 30 * time.Second
)

// searchVector is the tsvector of messages.content, as migration 00007
// defined it and migration 00008's trigger computes it.
const searchVector = `to_tsvector('confab_search', regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))`

const (
	// sqlSearchBehind says whether a message is above the mark (one
	// step of the messages' primary key).
	sqlSearchBehind = `SELECT EXISTS (SELECT 1 FROM messages WHERE id > (SELECT id FROM search_indexed))`
	// sqlSearchLock reads the mark and locks its row until the end of
	// the transaction, waiting for whoever holds it; the other indexer's
	// commit moved the mark, and this reads the mark it left.
	// sqlSearchTryLock does the same, or returns no row at once if
	// another holds it.
	sqlSearchLock    = `SELECT id FROM search_indexed FOR UPDATE`
	sqlSearchTryLock = `SELECT id FROM search_indexed FOR UPDATE SKIP LOCKED`
	// sqlSearchIndex adds the first $2 messages above mark $1 to the
	// index with their content of now, and returns the greatest id and
	// the number of those messages. A message already there was edited
	// since its send (the trigger put its new content's tsvector there)
	// and keeps it: see migration 00008 for why the edit wins whatever
	// the order.
	sqlSearchIndex = `
		WITH batch AS (
			SELECT id, content FROM messages WHERE id > $1 ORDER BY id LIMIT $2
		), ins AS (
			INSERT INTO message_search (message_id, search)
			SELECT id, ` + searchVector + ` FROM batch
			ON CONFLICT (message_id) DO NOTHING
		)
		SELECT coalesce(max(id), 0), count(*) FROM batch`
	// sqlSearchSetMark moves the mark to $1. The lock makes greatest()
	// redundant today; it keeps the mark from ever moving back.
	sqlSearchSetMark = `UPDATE search_indexed SET id = greatest(id, $1)`
)

// searchIndexer is the Store's background indexer.
type searchIndexer struct {
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
	s.nudgeSearchIndexer() // messages left above the mark while no node ran
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
	tick := time.NewTicker(searchIndexTick)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.indexer.nudge:
		case <-tick.C:
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
		// An error (the database out of reach, a schema migrated down)
		// leaves the messages above the mark for the next round or
		// search, which reports it.
		skipped, _ := s.catchUpSearchIndex(ctx, false)
		if skipped {
			// Another node is indexing, perhaps from before this
			// node's last commit: look again next round.
			s.nudgeSearchIndexer()
		}
	}
}

// catchUpSearchIndex indexes every message above the mark, a batch per
// transaction. With wait, it waits for the lock when another indexer
// holds it, and after it returns nil every message committed before it
// was called is in the index. Without, it returns skipped when another
// indexer holds the lock, leaving the messages to that one.
func (s *Store) catchUpSearchIndex(ctx context.Context, wait bool) (skipped bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, searchIndexTimeout)
	defer cancel()
	// Most of the time nothing is above the mark: one read says so
	// without a transaction or a lock.
	var behind bool
	if err := s.pool.QueryRow(ctx, sqlSearchBehind).Scan(&behind); err != nil {
		return false, fmt.Errorf("search index: %w", err)
	}
	for behind {
		var n int
		if err := s.tx(ctx, func(tx pgx.Tx) (err error) {
			n, skipped, err = indexSearchBatch(ctx, tx, wait)
			return err
		}); err != nil {
			return false, fmt.Errorf("search index: %w", err)
		}
		if skipped {
			return true, nil
		}
		behind = n == searchIndexBatch
	}
	return false, nil
}

// indexSearchBatch indexes up to searchIndexBatch messages above the
// mark and moves the mark past them, in tx, and returns how many it
// read. Without wait, it returns skipped, having done nothing, when
// another indexer holds the lock.
func indexSearchBatch(ctx context.Context, tx pgx.Tx, wait bool) (n int, skipped bool, err error) {
	lock := sqlSearchLock
	if !wait {
		lock = sqlSearchTryLock
	}
	var mark, top int64
	if err := tx.QueryRow(ctx, lock).Scan(&mark); err != nil {
		if !wait && errors.Is(err, pgx.ErrNoRows) {
			return 0, true, nil
		}
		return 0, false, err
	}
	if err := tx.QueryRow(ctx, sqlSearchIndex, mark, searchIndexBatch).Scan(&top, &n); err != nil {
		return 0, false, err
	}
	if n == 0 {
		return 0, false, nil
	}
	if _, err := tx.Exec(ctx, sqlSearchSetMark, top); err != nil {
		return 0, false, err
	}
	return n, false, nil
}

// searchReady brings the index up to date for a search.
func (s *Store) searchReady(ctx context.Context) error {
	_, err := s.catchUpSearchIndex(ctx, true)
	return err
}
