package db

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/confab/confab/app/chat"
)

func openIndexed(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "search.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var searchT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func searchMark(t *testing.T, s *Store) int64 {
	t.Helper()
	var mark int64
	if err := s.read.QueryRow(`SELECT id FROM search_indexed`).Scan(&mark); err != nil {
		t.Fatal(err)
	}
	return mark
}

// TestSearchIndex_MatchesMessagesBehindAndCaughtUp: sends, edits and
// deletions (a message's own, and a deleted author's messages going with
// them) keep the index whole whether the messages they touch are indexed
// yet or not: while the indexer is behind, the index is consistent in
// itself; once it caught up, it matches the messages exactly (FTS5's
// integrity-check with rank 1 compares it with them), and edited messages
// are found by their new words only.
func TestSearchIndex_MatchesMessagesBehindAndCaughtUp(t *testing.T) {
	s := openIndexed(t)
	s.stopSearchIndexer() // only this test moves the mark
	ctx := context.Background()
	a, err := s.CreateUser(ctx, "ann", "ann", "h", searchT0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateUser(ctx, "ben", "ben", "h", searchT0)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: searchT0})
	if err != nil {
		t.Fatal(err)
	}
	send := func(from chat.User, content string) int64 {
		t.Helper()
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: from.Lite(), Content: content, At: searchT0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		return res[0].Message.ID
	}
	edit := func(id int64, content string) {
		t.Helper()
		if _, err := s.EditMessage(ctx, id, content, nil, searchT0); err != nil {
			t.Fatal(err)
		}
	}
	del := func(id int64) {
		t.Helper()
		if _, _, err := s.DeleteMessage(ctx, id, searchT0); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string, caughtUp bool) {
		t.Helper()
		q := `INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')`
		if caughtUp {
			if err := s.catchUpSearchIndex(ctx); err != nil {
				t.Fatalf("%s: catch up: %v", when, err)
			}
			q = `INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`
		}
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	find := func(word string) []int64 {
		t.Helper()
		hits, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: a.ID, Terms: []string{word}, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		ids := []int64{}
		for _, h := range hits.Hits {
			ids = append(ids, h.Message.ID)
		}
		return ids
	}

	var ids []int64
	for i, from := range []chat.User{a, b, a, b} {
		ids = append(ids, send(from, fmt.Sprintf("first words %d", i)))
	}
	check("after sends", true)
	if got := searchMark(t, s); got != ids[3] {
		t.Fatalf("mark %d after catching up, want %d", got, ids[3])
	}

	// Behind: new messages wait above the mark while indexed and
	// unindexed ones are edited and deleted.
	for i, from := range []chat.User{a, b, a, b} {
		ids = append(ids, send(from, fmt.Sprintf("later words %d", i)))
	}
	edit(ids[0], "changed indexed")
	edit(ids[4], "changed waiting")
	edit(ids[4], "rewritten waiting")
	del(ids[1])
	del(ids[5])
	del(ids[5]) // a second deletion changes nothing
	check("behind, after edits and deletions", false)
	if got := searchMark(t, s); got != ids[3] {
		t.Fatalf("mark %d while behind, want %d", got, ids[3])
	}
	check("caught up after edits and deletions", true)
	if got := searchMark(t, s); got != ids[7] {
		t.Fatalf("mark %d after catching up, want %d", got, ids[7])
	}

	// Behind again, then the author goes with their messages, indexed
	// and not.
	ids = append(ids, send(b, "last words of ben"))
	now := time.Now()
	if err := s.DeleteUser(ctx, b.ID, now, now); err != nil {
		t.Fatal(err)
	}
	gone, err := s.SentMessageIDs(ctx, b.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseMessages(ctx, b.ID, gone, now); err != nil {
		t.Fatal(err)
	}
	check("behind, after the author's deletion", false)
	check("caught up after the author's deletion", true)

	// Caught up: edits and deletions of indexed messages.
	edit(ids[4], "final waiting")
	del(ids[6])
	check("caught up, after edits and deletions", true)

	for word, want := range map[string][]int64{
		"changed": {ids[0]}, "final": {ids[4]}, "rewritten": {}, "waiting": {ids[4]},
		"first": {ids[2]}, "later": {}, "ben": {},
	} {
		if got := find(word); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("search %q: %v, want %v", word, got, want)
		}
	}
}

// TestSearchIndex_SentThenSearchedIsFound: a message is found by a search
// made as soon as its send returned, while the indexer runs alongside.
func TestSearchIndex_SentThenSearchedIsFound(t *testing.T) {
	s := openIndexed(t)
	ctx := context.Background()
	a, err := s.CreateUser(ctx, "ann", "ann", "h", searchT0)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID}, At: searchT0})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		word := fmt.Sprintf("word%dx", i)
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: a.Lite(), Content: "just sent " + word, At: searchT0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		page, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: a.ID, Terms: []string{word}, Limit: 10})
		hits := page.Hits
		if err != nil || len(hits) != 1 || hits[0].Message.ID != res[0].Message.ID {
			t.Fatalf("send %d: search found %+v %v", i, hits, err)
		}
	}
}

// TestSearchIndex_IndexerFollowsCommits: without any search, the
// background indexer takes in what was sent, soon after the commit.
func TestSearchIndex_IndexerFollowsCommits(t *testing.T) {
	s := openIndexed(t)
	ctx := context.Background()
	a, err := s.CreateUser(ctx, "ann", "ann", "h", searchT0)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID}, At: searchT0})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]chat.NewMessage, 2*searchIndexBatch+7) // more than one batch
	for i := range batch {
		batch[i] = chat.NewMessage{ConversationID: conv, Sender: a.Lite(), Content: fmt.Sprint("many ", i), At: searchT0}
	}
	res, err := s.InsertMessages(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	last := res[len(res)-1].Message.ID
	deadline := time.Now().Add(10 * time.Second)
	for searchMark(t, s) != last {
		if time.Now().After(deadline) {
			t.Fatalf("mark %d, want %d", searchMark(t, s), last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Fatal(err)
	}
}

// TestSearchTermsAreIndexWords: every character chat.SearchTerms keeps
// in a term (a letter, digit or mark of Go's Unicode tables) is a word
// character to messages_fts's tokenizer too, so a term is always one word
// of the index, never a phrase of several, which the index (detail =
// none) refuses. Each such character goes into a word of its own between
// two q's, in a table made with messages_fts's own definition; a
// character the tokenizer split at would leave a word "q".
func TestSearchTermsAreIndexWords(t *testing.T) {
	s := openIndexed(t)
	ctx := context.Background()
	var def string
	if err := s.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'messages_fts'`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	def, ok := strings.CutPrefix(def, "CREATE VIRTUAL TABLE messages_fts USING fts5(")
	if !ok {
		t.Fatalf("messages_fts is %s", def)
	}
	// An index of its own: body, the tokenizer and the details, without
	// the external content.
	def = regexp.MustCompile(`content\s*=\s*'[^']*',\s*content_rowid\s*=\s*'id',`).ReplaceAllString(def, "")
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE VIRTUAL TABLE temp.words USING fts5("+def); err != nil {
		t.Fatal(err)
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO temp.words (rowid, body) VALUES (?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if terms := chat.SearchTerms("q" + string(r) + "q"); len(terms) == 1 {
			n++
			if _, err := insert.ExecContext(ctx, int64(r), terms[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n < 100_000 {
		t.Fatalf("only %d characters are word characters to chat.SearchTerms", n)
	}
	rows, err := tx.QueryContext(ctx, `SELECT rowid FROM temp.words WHERE words MATCH '"q"' LIMIT 20`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%U (%q) splits a word in the index", r, rune(r))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
