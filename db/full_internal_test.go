package db

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// A database that cannot grow (here SQLite's own page limit, on the one
// write connection: the same SQLITE_FULL a full disk gives, without
// needing one) fails writes with storage_full, group commits and other
// transactions alike, rolls them back whole, keeps reading, and takes
// writes again once it may grow, on the same connection. The real full
// disk (a tmpfs) is app/ws's TestDiskFull_*.
func TestWrites_FullDatabaseIsStorageFullAndRecovers(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, err := s.CreateUser(ctx, "alice", "alice", "hash", at)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateUser(ctx, "bob", "bob", "hash", at)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID, b.ID}, At: at})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 3000)
	batch := func(tag string, n int) []chat.NewMessage {
		out := make([]chat.NewMessage, n)
		for i := range out {
			out[i] = chat.NewMessage{ConversationID: conv, Sender: a.Lite(), Content: big, ClientID: fmt.Sprint(tag, i), At: at}
		}
		return out
	}
	if _, err := s.InsertMessages(ctx, batch("before-", 4)); err != nil {
		t.Fatal(err)
	}
	var pages int64
	if err := s.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	limit := func(n int64) {
		t.Helper()
		if _, err := s.write.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, n)); err != nil {
			t.Fatal(err)
		}
	}
	limit(pages) // not one page more

	_, err = s.InsertMessages(ctx, batch("full-", 16))
	if chat.ErrorCode(err) != chat.CodeStorageFull {
		t.Fatalf("group commit on a full database: %v, want storage_full", err)
	}
	_, _, err = s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, Title: strings.Repeat(big, 8), UserIDs: []int64{a.ID, b.ID}, At: at})
	if chat.ErrorCode(err) != chat.CodeStorageFull {
		t.Fatalf("another write on a full database: %v, want storage_full", err)
	}
	page, err := s.Messages(ctx, conv, chat.PageQuery{Limit: 100})
	if err != nil {
		t.Fatalf("read on a full database: %v", err)
	}
	if len(page.Results) != 4 {
		t.Fatalf("%d messages after the failed batch, want the 4 before it: a failed commit must leave nothing", len(page.Results))
	}

	limit(1 << 30) // space again
	res, err := s.InsertMessages(ctx, batch("after-", 16))
	if err != nil {
		t.Fatalf("group commit once there is space: %v", err)
	}
	for i, r := range res {
		if !r.Created || r.Message.Seq != int64(5+i) {
			t.Fatalf("message %d: created %v seq %d, want seq %d: the failed batch took no seq", i, r.Created, r.Message.Seq, 5+i)
		}
	}
	var check string
	if err := s.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}
