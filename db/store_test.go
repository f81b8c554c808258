package db_test

import (
	"context"
	"database/sql"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/chat/storetest"
	"github.com/confab/confab/app/moderate"
	moderatetest "github.com/confab/confab/app/moderate/storetest"
	notifytest "github.com/confab/confab/app/notify/storetest"
	"github.com/confab/confab/app/webhook"
	"github.com/confab/confab/db"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestStore runs the behaviour every chat.Store shares, on a fresh SQLite
// file per test.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Opener(
		func(t *testing.T) string { return filepath.Join(t.TempDir(), "confab.db") },
		func(t *testing.T, path string) chat.Store {
			s, err := db.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}))
}

func mustOpenDB(tb testing.TB) (*db.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "nested", "folder", "confab.db")
	s, err := db.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

func mustUser(tb testing.TB, s *db.Store, name string) chat.User {
	tb.Helper()
	u, err := s.CreateUser(context.Background(), name, name, "hash", t0)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func mustConversation(tb testing.TB, s *db.Store, users ...chat.User) int64 {
	tb.Helper()
	nc := chat.NewConversation{IsGroup: true, At: t0}
	for _, u := range users {
		nc.UserIDs = append(nc.UserIDs, u.ID)
	}
	id, _, err := s.CreateConversation(context.Background(), nc)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustSend(tb testing.TB, s *db.Store, from chat.User, conv int64, content string) int64 {
	tb.Helper()
	res, err := s.InsertMessages(context.Background(), []chat.NewMessage{{ConversationID: conv,
		Sender: chat.UserLite{ID: from.ID, Username: from.Username, DisplayName: from.DisplayName}, Content: content, At: t0}})
	if err != nil || res[0].Err != nil {
		tb.Fatalf("insert: %v %v", err, res[0].Err)
	}
	return res[0].Message.ID
}

// writable opens the file beside the store, for writes the store would
// never make.
func writable(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	return w
}

func TestOpen_CreatesFolderWithDurableSettings(t *testing.T) {
	s, path := mustOpenDB(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "2", // FULL: an acknowledged commit survives power loss
		"query_only":   "1", // DB() is the read pool
	} {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Error("the read pool accepted a write")
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
	status, err := s.MigrationStatus(ctx)
	if err != nil || len(status) == 0 {
		t.Fatalf("status: %v %v", status, err)
	}
	for _, m := range status {
		if m.State != "applied" {
			t.Errorf("migration %d is %s", m.Source.Version, m.State)
		}
	}
}

func TestMigrations_DownAndUpAgain(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	downTo(t, s, 0) // every migration there is
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	mustUser(t, s, "after")
	if err := s.Migrate(ctx, "sideways"); err == nil {
		t.Error("an unknown direction was accepted")
	}
}

// TestMigrations_SeqNumbersExistingMessages: a database from before seq
// gets 1..n per conversation in id order, and sends carry on from there.
func TestMigrations_SeqNumbersExistingMessages(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	c1, c2, empty := mustConversation(t, s, a, b), mustConversation(t, s, a, b), mustConversation(t, s, a)
	downTo(t, s, 1) // to the schema before seq
	w := writable(t, path)
	for i, conv := range []int64{c1, c2, c1, c1, c2} {
		if _, err := w.ExecContext(ctx, `INSERT INTO messages (conversation_id, sender_id, content, created_at) VALUES (?, ?, ?, 0)`,
			conv, a.ID, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	for conv, n := range map[int64]int64{c1: 3, c2: 2, empty: 0} {
		msgs, err := s.MessagesBySeq(ctx, conv, 0, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var seqs, ids []int64
		for _, m := range msgs {
			seqs, ids = append(seqs, m.Seq), append(ids, m.ID)
		}
		want := []int64{1, 2, 3}[:n]
		if !slices.Equal(seqs, want) || !slices.IsSorted(ids) {
			t.Errorf("conversation %d: seqs %v ids %v, want seqs %v", conv, seqs, ids, want)
		}
		if last, err := s.LastSeqs(ctx, []int64{conv}); err != nil || len(last) != 1 || last[conv] != n {
			t.Errorf("conversation %d: last seq %v %v, want %d", conv, last, err, n)
		}
	}
	res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: c1, Sender: chat.UserLite{ID: b.ID}, Content: "new", At: t0}})
	if err != nil || res[0].Message.Seq != 4 {
		t.Errorf("first send after the migration: %+v %v, want seq 4", res, err)
	}
	if _, err := writable(t, path).ExecContext(ctx, `INSERT INTO messages (conversation_id, seq, sender_id, content, created_at) VALUES (?, 1, ?, 'dup', 0)`,
		c1, a.ID); err == nil {
		t.Error("a second seq 1 in one conversation was accepted")
	}
}

func TestSetting_KeptAcrossReopen(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	if v, err := s.Setting(ctx, "jwt_secret", []byte("first")); err != nil || string(v) != "first" {
		t.Fatalf("%q %v", v, err)
	}
	s.Close()
	s2, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, _ := s2.Setting(ctx, "jwt_secret", []byte("third")); string(v) != "first" {
		t.Errorf("after reopen: %q", v)
	}
}

func TestDeleteMessage_ErasesStoredContent(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	a := mustUser(t, s, "ann")
	id := mustSend(t, s, a, mustConversation(t, s, a), "secret")
	if _, _, err := s.DeleteMessage(ctx, id, t0); err != nil {
		t.Fatal(err)
	}
	var stored string
	s.DB().QueryRow(`SELECT content FROM messages WHERE id = ?`, id).Scan(&stored)
	if stored != "" {
		t.Errorf("deleted content kept: %q", stored)
	}
}

func TestClose_CheckpointsAndBackupIsUsable(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, a, b)
	id := mustSend(t, s, a, conv, "kept")
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL of %d bytes left after Close", fi.Size())
	}
	for _, p := range []string{path, backup} {
		s2, err := db.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s2.Message(ctx, id)
		if err != nil || m.Content != "kept" || m.Seq != 1 {
			t.Errorf("%s: message %+v %v", p, m, err)
		}
		s2.Close()
	}
}

// BenchmarkInsertMessages is the group commit alone on a real file
// (synchronous=FULL).
func BenchmarkInsertMessages(b *testing.B) {
	s, _ := mustOpenDB(b)
	storetest.BenchInsertMessages(b, s)
}

// BenchmarkInsertMessages_Webhooks is the group commit with
// message.created webhooks on: one more prepared insert per message.
func BenchmarkInsertMessages_Webhooks(b *testing.B) {
	s, _ := mustOpenDB(b)
	s.SetWebhookEvents(webhook.NewSet(webhook.Events))
	storetest.BenchInsertMessages(b, s)
}

// BenchmarkConversations is the conversations list of a user in 50 groups.
func BenchmarkConversations(b *testing.B) {
	s, _ := mustOpenDB(b)
	storetest.BenchConversations(b, s)
}

// TestMigrations_DisplayKeyForExistingUsers: users from before display_key
// get it folded as a new user would (non-ASCII letters too, which SQLite's
// lower() leaves alone), even when the fold was interrupted; search finds
// them by it; down removes it again.
func TestMigrations_DisplayKeyForExistingUsers(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	downTo(t, s, 2) // to the schema before display_key
	w := writable(t, path)
	names := map[string]string{"ozil": "ÖZIL Ünal", "ann": "ANN Smith", "nobody": "", "emile": "Émile"}
	for username, display := range names {
		if _, err := w.ExecContext(ctx, `INSERT INTO users (username, username_key, display_name, password_hash, created_at) VALUES (?, ?, ?, 'h', 0)`,
			username, username, display); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	keys := func() map[string]string {
		t.Helper()
		rows, err := s.DB().QueryContext(ctx, `SELECT username, display_key FROM users`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var u, k string
			if err := rows.Scan(&u, &k); err != nil {
				t.Fatal(err)
			}
			got[u] = k
		}
		return got
	}
	want := map[string]string{"ozil": "özil ünal", "ann": "ann smith", "nobody": "", "emile": "émile"}
	if got := keys(); !maps.Equal(got, want) {
		t.Errorf("display keys %q, want %q", got, want)
	}
	for prefix, username := range map[string]string{"öz": "ozil", "ÖZIL Ü": "ozil", "ann s": "ann", "É": "emile"} {
		if us, err := s.SearchUsers(ctx, prefix, 10); err != nil || len(us) != 1 || us[0].Username != username {
			t.Errorf("search %q: %+v %v, want %s", prefix, us, err, username)
		}
	}

	// A fold cut short (the process stopped right after the migration)
	// is finished at the next start.
	if _, err := w.ExecContext(ctx, `UPDATE users SET display_key = '' WHERE username = 'ozil'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := keys(); !maps.Equal(got, want) {
		t.Errorf("after a restart: display keys %q, want %q", got, want)
	}

	downTo(t, s, 2)
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('users') WHERE name = 'display_key'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("display_key after down: %d %v", n, err)
	}
	// Read by hand: the store's own queries need the later columns.
	var name string
	if err := s.DB().QueryRowContext(ctx, `SELECT display_name FROM users WHERE username = 'ozil'`).Scan(&name); err != nil || name != names["ozil"] {
		t.Errorf("after down: %q %v", name, err)
	}
}

// TestMigrations_MemberCountsAndReadSeqsOfExistingData: a database from
// before member_count and last_read_seq gets both from what it holds, so
// that lists and unread counts are right at once; down removes them.
func TestMigrations_MemberCountsAndReadSeqsOfExistingData(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "cy")
	trio, pair := mustConversation(t, s, a, b, c), mustConversation(t, s, a, b)
	var sent []chat.Message
	for range 4 {
		res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: trio, Sender: a.Lite(), Content: "hi", At: t0}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		sent = append(sent, res[0].Message)
	}
	downTo(t, s, 3) // to the schema before member_count
	// Before: ben had read the second message, cy nothing.
	w := writable(t, path)
	if _, err := w.ExecContext(ctx, `UPDATE participants SET last_read_message_id = ? WHERE conversation_id = ? AND user_id = ?`,
		sent[1].ID, trio, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		conv    int64
		viewer  chat.User
		members int
		unread  int
	}{{trio, b, 3, 2}, {trio, c, 3, 4}, {pair, a, 2, 0}} {
		cv, err := s.Conversation(ctx, tc.conv, tc.viewer.ID)
		if err != nil || cv.MemberCount != tc.members || cv.UnreadCount != tc.unread {
			t.Errorf("conversation %d as %s: %d members, %d unread (%v); want %d, %d",
				tc.conv, tc.viewer.Username, cv.MemberCount, cv.UnreadCount, err, tc.members, tc.unread)
		}
	}
	downTo(t, s, 3)
	var n int
	if err := s.DB().QueryRowContext(ctx, `
		SELECT (SELECT count(*) FROM pragma_table_info('conversations') WHERE name = 'member_count')
		     + (SELECT count(*) FROM pragma_table_info('participants') WHERE name = 'last_read_seq')
		     + (SELECT count(*) FROM sqlite_schema WHERE name = 'participants_joined')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d of the columns and index left after down (%v)", n, err)
	}
}

// downTo migrates s down until version is the last one applied: a test
// of one migration starts from the schema before it, however many came
// after it.
func downTo(t *testing.T, s *db.Store, version int64) {
	t.Helper()
	ctx := context.Background()
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range status {
		if m.Source.Version > version && m.State == goose.StateApplied {
			if err := s.Migrate(ctx, "down"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestMigrations_SearchIndexesExistingMessages: messages stored before
// the search index are found once it is added, deleted ones are not, and
// down removes the index and its triggers.
func TestMigrations_SearchIndexesExistingMessages(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, a, b)
	downTo(t, s, 8) // the schema before search
	w := writable(t, path)
	for i, m := range []struct {
		content string
		deleted any
	}{{"Crème brûlée tonight", nil}, {"", int64(1)}} {
		if _, err := w.ExecContext(ctx, `INSERT INTO messages (conversation_id, seq, sender_id, content, created_at, deleted_at) VALUES (?, ?, ?, ?, 0, ?)`,
			conv, i+1, a.ID, m.content, m.deleted); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	page, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: b.ID, Terms: []string{"creme", "BRUL"}, Limit: 10})
	hits := page.Hits
	if err != nil || len(hits) != 1 || hits[0].Message.Content != "Crème brûlée tonight" {
		t.Fatalf("after up: %+v %v", hits, err)
	}
	downTo(t, s, 8)
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name LIKE 'messages_fts%' OR name = 'search_indexed'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d search tables and triggers left after down (%v)", n, err)
	}
	if _, err := w.ExecContext(ctx, `UPDATE messages SET content = 'x'`); err != nil {
		t.Errorf("a write after down: %v", err)
	}
}

// TestNotifyStore runs the behaviour every notify.Store shares.
func TestNotifyStore(t *testing.T) {
	notifytest.Run(t, func(t *testing.T) notifytest.Store {
		s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "confab.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestModerateStore runs the behaviour every moderate.Store shares.
func TestModerateStore(t *testing.T) {
	moderatetest.Run(t, func(t *testing.T) moderatetest.Store {
		s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "confab.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestAuditLog_AppendOnly: the database itself refuses to change or
// remove an audit entry, whoever asks.
func TestAuditLog_AppendOnly(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	u := mustUser(t, s, "bob")
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := s.SetStaff(ctx, "bob", true, moderate.Actor{}, t0); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET reason = 'nothing happened'`, `DELETE FROM audit_log`} {
		if _, err := w.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	entries, err := s.Audit(ctx, 0, 10)
	if err != nil || len(entries) != 1 || entries[0].TargetID != u.ID || entries[0].Reason != "" {
		t.Errorf("audit log now %+v, %v", entries, err)
	}
}
