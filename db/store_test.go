package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

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

func mustConversation(tb testing.TB, s *db.Store, group bool, users ...chat.User) int64 {
	tb.Helper()
	nc := chat.NewConversation{IsGroup: group, At: t0}
	for _, u := range users {
		nc.UserIDs = append(nc.UserIDs, u.ID)
	}
	if !group {
		nc.DirectKey = pairKey(users[0].ID, users[1].ID)
	}
	id, _, err := s.CreateConversation(context.Background(), nc)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func pairKey(a, b int64) string {
	lo, hi := min(a, b), max(a, b)
	return string(rune('0'+lo)) + ":" + string(rune('0'+hi))
}

func lite(u chat.User) chat.UserLite {
	return chat.UserLite{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName}
}

func mustSend(tb testing.TB, s *db.Store, from chat.User, conv int64, content string) int64 {
	tb.Helper()
	res, err := s.InsertMessages(context.Background(), []chat.NewMessage{{ConversationID: conv, Sender: lite(from), Content: content, At: t0}})
	if err != nil || res[0].Err != nil {
		tb.Fatalf("insert: %v %v", err, res[0].Err)
	}
	return res[0].Message.ID
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
	if err := s.Migrate(ctx, "down"); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	mustUser(t, s, "after")
	if err := s.Migrate(ctx, "sideways"); err == nil {
		t.Error("an unknown direction was accepted")
	}
}

func TestSetting_KeptAcrossReopen(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	v, err := s.Setting(ctx, "jwt_secret", []byte("first"))
	if err != nil || string(v) != "first" {
		t.Fatalf("%q %v", v, err)
	}
	if v, _ := s.Setting(ctx, "jwt_secret", []byte("second")); string(v) != "first" {
		t.Errorf("setting replaced by %q", v)
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

func TestClose_CheckpointsAndBackupIsUsable(t *testing.T) {
	s, path := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
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
		if err != nil || m.Content != "kept" {
			t.Errorf("%s: message %+v %v", p, m, err)
		}
		s2.Close()
	}
}

func TestCreateUser_UniqueCaseInsensitively(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	mustUser(t, s, "Alice")
	_, err := s.CreateUser(ctx, "aLICE", "x", "hash", t0)
	if chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("duplicate: %v", err)
	}
	a, err := s.UserByUsername(ctx, "ALICE")
	if err != nil || a.Username != "Alice" || a.PasswordHash != "hash" {
		t.Errorf("lookup: %+v %v", a, err)
	}
	if _, err := s.UserByID(ctx, 999); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := s.UserByUsername(ctx, "nobody"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
}

func TestSearchUsers_PrefixOfUsernameOrDisplayName(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	for _, u := range []struct{ name, display string }{
		{"albert", "Bert"}, {"zed", "Al Zed"}, {"bob", "Bob"}, {"under_score", "U"}, {"umlaut", "Özil Ünal"},
	} {
		if _, err := s.CreateUser(ctx, u.name, u.display, "h", t0); err != nil {
			t.Fatal(err)
		}
	}
	find := func(prefix string) []string {
		us, err := s.SearchUsers(ctx, prefix, 20)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range us {
			names = append(names, u.Username)
		}
		return names
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"al", []string{"albert", "zed"}},
		{"AL", []string{"albert", "zed"}},
		{"under_", []string{"under_score"}},
		{"u_", nil}, // _ is not a wildcard
		{"%", nil},
		{"Öz", []string{"umlaut"}},
		{"öz", []string{"umlaut"}},
	}
	for _, tt := range tests {
		if got := find(tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("search %q = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}
