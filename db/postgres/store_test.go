package postgres_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/chat/storetest"
	"github.com/confab/confab/db/postgres"
	"github.com/confab/confab/db/postgres/pgtest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustOpen(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestStore runs the behaviour every chat.Store shares, each test in a
// schema of its own.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Opener(
		func(t *testing.T) string { return pgtest.URL(t) },
		func(t *testing.T, url string) chat.Store { return mustOpen(t, url) }))
}

func TestOpen_MigratesAndAnswers(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	ctx := context.Background()
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
	if _, err := postgres.Open(ctx, "postgres://confab:secret@127.0.0.1:1/none?connect_timeout=1"); err == nil {
		t.Error("opened a database that is not there")
	}
	if _, err := postgres.Open(ctx, "postgres://confab:secret@%zz"); err == nil {
		t.Error("opened a URL that does not parse")
	}
}

func TestMigrations_DownAndUpAgain(t *testing.T) {
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, "before", "", "h", t0); err != nil {
		t.Fatal(err)
	}
	for range 2 { // every migration there is
		if err := s.Migrate(ctx, "down"); err != nil {
			t.Fatal(err)
		}
	}
	var tables int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("%d tables left after down (%v)", tables, err)
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "after", "", "h", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, "sideways"); err == nil {
		t.Error("an unknown direction was accepted")
	}
	// OpenNoMigrate leaves the schema as it is.
	n, err := postgres.OpenNoMigrate(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for range 2 {
		if err := n.Migrate(ctx, "down"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UserByUsername(ctx, "after"); err == nil {
		t.Error("a user survived the down migration")
	}
}

// TestMigrations_NodesStartingAtOnce: every node migrates on Open; they
// take turns, and every one of them ends up with the whole schema.
func TestMigrations_NodesStartingAtOnce(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 4
	stores := make([]*postgres.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(context.Background(), url)
		}()
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}
	ctx := context.Background()
	var applied int
	if err := stores[0].Pool().QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	status, _ := stores[0].MigrationStatus(ctx)
	if applied != len(status) {
		t.Errorf("%d migrations recorded for %d files: one ran twice", applied, len(status))
	}
	u, err := stores[1].CreateUser(ctx, "ann", "", "h", t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := stores[nodes-1].UserByID(ctx, u.ID); err != nil || got.Username != "ann" {
		t.Errorf("another node: %+v %v", got, err)
	}
}

// TestSetting_NodesStartingAtOnce: every node offers its own generated
// secret; they all end up with the same one.
func TestSetting_NodesStartingAtOnce(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 6
	stores := make([]*postgres.Store, nodes)
	for i := range stores {
		stores[i] = mustOpen(t, url)
	}
	got := make([]string, nodes)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Setting(context.Background(), "jwt_secret", []byte{byte('a' + i)})
			if err != nil {
				t.Errorf("node %d: %v", i, err)
			}
			got[i] = string(v)
		}()
	}
	wg.Wait()
	if len(slices.Compact(slices.Clone(got))) != 1 || got[0] == "" {
		t.Errorf("nodes disagree on the setting: %q", got)
	}
}

// TestUserByID_SeesAnotherNodesChange: nothing is cached.
func TestUserByID_SeesAnotherNodesChange(t *testing.T) {
	url := pgtest.URL(t)
	a, b := mustOpen(t, url), mustOpen(t, url)
	ctx := context.Background()
	u, err := a.CreateUser(ctx, "ann", "Ann", "h1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UserByID(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	pw := "h2"
	if _, err := b.UpdateUser(ctx, u.ID, nil, &pw); err != nil {
		t.Fatal(err)
	}
	if got, err := a.UserByID(ctx, u.ID); err != nil || got.PasswordHash != "h2" {
		t.Errorf("after another node's change: %+v %v", got, err)
	}
}

func TestDeleteMessage_ErasesStoredContent(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "ann", "", "h", t0)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{u.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: chat.UserLite{ID: u.ID}, Content: "secret", At: t0}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if _, _, err := s.DeleteMessage(ctx, res[0].Message.ID, t0); err != nil {
		t.Fatal(err)
	}
	var stored string
	s.Pool().QueryRow(ctx, `SELECT content FROM messages WHERE id = $1`, res[0].Message.ID).Scan(&stored)
	if stored != "" {
		t.Errorf("deleted content kept: %q", stored)
	}
}

// BenchmarkInsertMessages is the group commit alone, from two stores
// (nodes) on one database.
func BenchmarkInsertMessages(b *testing.B) {
	url := pgtest.URL(b)
	storetest.BenchInsertMessages(b, mustOpen(b, url), mustOpen(b, url))
}

// BenchmarkConversations is the conversations list of a user in 50 groups.
func BenchmarkConversations(b *testing.B) {
	storetest.BenchConversations(b, mustOpen(b, pgtest.URL(b)))
}
