package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/postgres/pgtest"
)

// openWithoutIndexer opens a migrated store on url with no background
// indexer: the tests below index when they choose to.
func openWithoutIndexer(t *testing.T, url string) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := OpenNoMigrate(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	return s
}

// searchFixture makes a user and a group conversation of theirs.
func searchFixture(t *testing.T, s *Store) (chat.User, int64) {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "ann", "", "h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{u.ID}, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return u, conv
}

// mustSend stores contents as one batch (one group commit) and returns
// their ids.
func mustSend(t testing.TB, s *Store, u chat.User, conv int64, contents ...string) []int64 {
	t.Helper()
	batch := make([]chat.NewMessage, len(contents))
	for i, c := range contents {
		batch[i] = chat.NewMessage{ConversationID: conv, Sender: u.Lite(), Content: c, At: time.Now()}
	}
	out, err := s.InsertMessages(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(out))
	for i, in := range out {
		if in.Err != nil {
			t.Fatalf("message %d: %v", i, in.Err)
		}
		ids[i] = in.Message.ID
	}
	return ids
}

// searchIDs returns the ids a search for terms finds, newest first.
func searchIDs(t *testing.T, s *Store, viewer int64, terms ...string) []int64 {
	t.Helper()
	page, err := s.SearchMessages(context.Background(), chat.SearchQuery{Viewer: viewer, Terms: terms, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, h := range page.Hits {
		ids = append(ids, h.Message.ID)
	}
	return ids
}

// checkIndexInStep fails unless message_search holds exactly one row per
// message, the tsvector of its content of now, and the mark is the
// newest message's id.
func checkIndexInStep(t *testing.T, s *Store) {
	t.Helper()
	var messages, wrong, mark, top int64
	err := s.pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM messages),
			(SELECT count(*) FROM messages m FULL JOIN message_search s ON s.message_id = m.id
			 WHERE m.id IS NULL OR s.message_id IS NULL OR s.search <> `+searchVector+`),
			(SELECT id FROM search_indexed), (SELECT coalesce(max(id), 0) FROM messages)`).Scan(&messages, &wrong, &mark, &top)
	if err != nil {
		t.Fatal(err)
	}
	if wrong != 0 || mark != top {
		t.Errorf("of %d messages, %d missing from the index, extra or stale; mark %d, newest message %d", messages, wrong, mark, top)
	}
}

// TestSearch_FoundAsSoonAsSent: with no indexer running, a message is
// above the mark after its send, and a search finds it all the same.
func TestSearch_FoundAsSoonAsSent(t *testing.T) {
	s := openWithoutIndexer(t, pgtest.URL(t))
	u, conv := searchFixture(t, s)
	for i := range 5 {
		word := fmt.Sprint("fresh", i)
		id := mustSend(t, s, u, conv, "something "+word)[0]
		var mark int64
		if err := s.pool.QueryRow(context.Background(), `SELECT id FROM search_indexed`).Scan(&mark); err != nil || mark >= id {
			t.Fatalf("mark %d (%v) before the search, message %d: want the message above it", mark, err, id)
		}
		if got := searchIDs(t, s, u.ID, word); len(got) != 1 || got[0] != id {
			t.Errorf("search for %q right after its send: %v, want [%d]", word, got, id)
		}
	}
	checkIndexInStep(t, s)
}

// TestSearchIndex_EditRacingIndexer edits messages while the indexer adds
// them, in every order the two can meet in: every message ends up found
// by its new text and not by its old.
func TestSearchIndex_EditRacingIndexer(t *testing.T) {
	s := openWithoutIndexer(t, pgtest.URL(t))
	u, conv := searchFixture(t, s)
	ctx := context.Background()
	rounds, perRound := 40, 10
	if testing.Short() {
		rounds = 10
	}
	for r := range rounds {
		contents := make([]string, perRound)
		for i := range contents {
			contents[i] = fmt.Sprintf("old%dx%d", r, i)
		}
		ids := mustSend(t, s, u, conv, contents...)
		var wg sync.WaitGroup
		errs := make(chan error, perRound+2)
		// Two indexers, one that waits for the lock and one that
		// skips, against an edit of every message of the round.
		for _, wait := range []bool{true, false} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.catchUpSearchIndex(ctx, wait); err != nil {
					errs <- err
				}
			}()
		}
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				content := fmt.Sprintf("new%dx%d", r, i)
				if i%5 == 4 { // a deletion is an edit to ''
					_, _, err := s.DeleteMessage(ctx, id, time.Now())
					if err != nil {
						errs <- err
					}
					return
				}
				if _, err := s.EditMessage(ctx, id, content, nil, time.Now()); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i, id := range ids {
			if got := searchIDs(t, s, u.ID, fmt.Sprintf("old%dx%d", r, i)); len(got) != 0 {
				t.Errorf("round %d: message %d found by its old text: %v", r, id, got)
			}
			want := 1
			if i%5 == 4 {
				want = 0
			}
			if got := searchIDs(t, s, u.ID, fmt.Sprintf("new%dx%d", r, i)); len(got) != want {
				t.Errorf("round %d: message %d by its new text: %v, want %d hit", r, id, got, want)
			}
		}
	}
	checkIndexInStep(t, s)
}

// TestSearchIndex_TwoNodesIndexingAtOnce: two stores on one database
// (two nodes) index while messages are sent through both, and neither
// loses a message nor indexes one twice.
func TestSearchIndex_TwoNodesIndexingAtOnce(t *testing.T) {
	url := pgtest.URL(t)
	a := openWithoutIndexer(t, url)
	b := openWithoutIndexer(t, url)
	u, conv := searchFixture(t, a)
	ctx := context.Background()
	batches, perBatch := 30, 100 // past searchIndexBatch: several batches a round
	if testing.Short() {
		batches = 10
	}

	sending := make(chan struct{})
	errs := make(chan error, 6)
	var senders sync.WaitGroup
	for k, s := range []*Store{a, b} {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range batches {
				batch := make([]chat.NewMessage, perBatch)
				for j := range batch {
					batch[j] = chat.NewMessage{ConversationID: conv, Sender: u.Lite(), Content: fmt.Sprintf("node%d %dx%d", k, i, j), At: time.Now()}
				}
				if _, err := s.InsertMessages(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		senders.Wait()
		close(sending)
	}()
	var indexers sync.WaitGroup
	for _, s := range []*Store{a, b} {
		for _, wait := range []bool{true, false} {
			indexers.Add(1)
			go func() {
				defer indexers.Done()
				for {
					select {
					case <-sending:
						return
					default:
					}
					if _, err := s.catchUpSearchIndex(ctx, wait); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	indexers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := b.catchUpSearchIndex(ctx, true); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM message_search`).Scan(&n); err != nil || n != 2*batches*perBatch {
		t.Errorf("%d messages indexed (%v), want %d", n, err, 2*batches*perBatch)
	}
	checkIndexInStep(t, a)
}

// TestSearchIndexer_IndexesInTheBackground: the Store's own indexer moves
// the mark past a send without a search, and Close stops it.
func TestSearchIndexer_IndexesInTheBackground(t *testing.T) {
	s := mustOpenInternal(t)
	u, conv := searchFixture(t, s)
	id := mustSend(t, s, u, conv, "in the background")[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		var mark int64
		if err := s.pool.QueryRow(context.Background(), `SELECT id FROM search_indexed`).Scan(&mark); err != nil {
			t.Fatal(err)
		}
		if mark >= id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mark %d ten seconds after message %d was sent", mark, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkIndexInStep(t, s)
	s.Close()
	s.Close() // a second Close is harmless
}
