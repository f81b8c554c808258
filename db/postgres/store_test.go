package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/chat/storetest"
	"github.com/confab/confab/app/moderate"
	moderatetest "github.com/confab/confab/app/moderate/storetest"
	notifytest "github.com/confab/confab/app/notify/storetest"
	"github.com/confab/confab/app/webhook"
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
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range status { // every migration there is
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
	// All the way down again, so that no users table is left to find
	// the user in.
	for range status {
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

// BenchmarkInsertMessages_Webhooks is the group commit with
// message.created webhooks on: a third round trip per batch.
func BenchmarkInsertMessages_Webhooks(b *testing.B) {
	url := pgtest.URL(b)
	x, y := mustOpen(b, url), mustOpen(b, url)
	x.SetWebhookEvents(webhook.NewSet(webhook.Events))
	y.SetWebhookEvents(webhook.NewSet(webhook.Events))
	storetest.BenchInsertMessages(b, x, y)
}

// BenchmarkConversations is the conversations list of a user in 50 groups.
func BenchmarkConversations(b *testing.B) {
	storetest.BenchConversations(b, mustOpen(b, pgtest.URL(b)))
}

// BenchmarkInsertMessages_OneWriter is the group commit as one node's
// writer runs it under `confab bench send --clients 16`: one batch at a
// time, each of 16 messages from 16 senders to 16 conversations, every
// message with a client_id. One op is one message. The store's search
// indexer runs meanwhile, as in the server, on the same CPUs as the
// database; caught-up-ns/op adds the indexing left at the end (a search
// catches it up).
func BenchmarkInsertMessages_OneWriter(b *testing.B) {
	benchOneWriter(b, mustOpen(b, pgtest.URL(b)))
}

// BenchmarkInsertMessages_OneWriterIndexerOff is the same with no search
// indexer running: the send path alone.
func BenchmarkInsertMessages_OneWriterIndexerOff(b *testing.B) {
	ctx := context.Background()
	s, err := postgres.OpenNoMigrate(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx, "up"); err != nil {
		b.Fatal(err)
	}
	benchOneWriter(b, s)
}

func benchOneWriter(b *testing.B, s *postgres.Store) {
	ctx := context.Background()
	const batch = 16
	var convs, senders [batch]int64
	sink, err := s.CreateUser(ctx, "sink", "", "h", t0)
	if err != nil {
		b.Fatal(err)
	}
	for i := range batch {
		u, err := s.CreateUser(ctx, fmt.Sprint("user", i), "", "h", t0)
		if err != nil {
			b.Fatal(err)
		}
		senders[i] = u.ID
	}
	for i := range batch {
		// Each sender writes to a conversation of its own with sink.
		id, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{senders[i], sink.ID}, At: t0})
		if err != nil {
			b.Fatal(err)
		}
		convs[i] = id
	}
	msgs := make([]chat.NewMessage, 0, batch)
	n := 0
	flush := func() {
		res, err := s.InsertMessages(ctx, msgs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || !r.Created {
				b.Fatalf("%+v", r)
			}
		}
		msgs = msgs[:0]
	}
	b.ResetTimer()
	for b.Loop() {
		i := n % batch
		n++
		msgs = append(msgs, chat.NewMessage{ConversationID: convs[i], Sender: chat.UserLite{ID: senders[i]},
			Content: "a benchmark message of ordinary length, about sixty bytes", ClientID: fmt.Sprint("c", n), At: t0})
		if len(msgs) == batch {
			flush()
		}
	}
	if len(msgs) > 0 {
		flush()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	start := time.Now()
	if _, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: sink.ID, Terms: []string{"benchmark"}, Limit: 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed()+time.Since(start))/float64(b.N), "caught-up-ns/op")
}

// TestInsertMessages_ClientIDRaceWithAnotherNode: another node stores the
// same (sender, client_id) between this batch's check and its insert. The
// batch waits for that node's transaction and then tells the truth about
// every message, with no hole in seq: a conflict when the other node
// committed (its message is in another conversation), and a new message
// when it rolled back.
func TestInsertMessages_ClientIDRaceWithAnotherNode(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
			url := pgtest.URL(t)
			s := mustOpen(t, url)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ann, err := s.CreateUser(ctx, "ann", "", "h", t0)
			if err != nil {
				t.Fatal(err)
			}
			ben, err := s.CreateUser(ctx, "ben", "", "h", t0)
			if err != nil {
				t.Fatal(err)
			}
			conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{ann.ID, ben.ID}, At: t0})
			if err != nil {
				t.Fatal(err)
			}
			other, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{ann.ID}, At: t0})
			if err != nil {
				t.Fatal(err)
			}

			// The other node's transaction, left open.
			node, err := s.Pool().Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer node.Release()
			tx, err := node.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `INSERT INTO messages (conversation_id, seq, sender_id, content, client_id, created_at) VALUES ($1, 1, $2, 'there first', 'k', 0)`, other, ann.ID); err != nil {
				t.Fatal(err)
			}

			type result struct {
				res []chat.Inserted
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := s.InsertMessages(ctx, []chat.NewMessage{
					{ConversationID: conv, Sender: ann.Lite(), Content: "mine", ClientID: "k", At: t0},
					{ConversationID: conv, Sender: ben.Lite(), Content: "after it", At: t0},
				})
				done <- result{res, err}
			}()
			// Let the batch reach the insert and wait on the other node.
			pid := node.Conn().PgConn().PID()
			for {
				var waiting int
				if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting > 0 {
					break
				}
				select {
				case r := <-done:
					t.Fatalf("the batch did not wait for the other node: %+v %v", r.res, r.err)
				case <-ctx.Done():
					t.Fatal("the batch never reached the insert")
				case <-time.After(10 * time.Millisecond):
				}
			}
			if commit {
				err = tx.Commit(ctx)
			} else {
				err = tx.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			mine, after := r.res[0], r.res[1]
			wantAfter := int64(1)
			if commit {
				if chat.ErrorCode(mine.Err) != chat.CodeConflict || mine.Created {
					t.Errorf("client_id stored elsewhere meanwhile: %+v, want a conflict", mine)
				}
			} else {
				if mine.Err != nil || !mine.Created || mine.Message.Seq != 1 {
					t.Errorf("client_id whose other insert rolled back: %+v, want it stored as seq 1", mine)
				}
				wantAfter = 2
			}
			if after.Err != nil || !after.Created || after.Message.Seq != wantAfter {
				t.Errorf("the other message of the batch: %+v, want seq %d", after, wantAfter)
			}
			var seqs []int64
			rows, err := s.Pool().Query(ctx, `SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq`, conv)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var q int64
				rows.Scan(&q)
				seqs = append(seqs, q)
			}
			if rows.Err() != nil || len(seqs) != int(wantAfter) || seqs[len(seqs)-1] != wantAfter {
				t.Errorf("stored seqs %v (%v), want 1..%d", seqs, rows.Err(), wantAfter)
			}
			var last int64
			if err := s.Pool().QueryRow(ctx, `SELECT last_seq FROM conversations WHERE id = $1`, conv).Scan(&last); err != nil || last != wantAfter {
				t.Errorf("last_seq %d (%v), want %d", last, err, wantAfter)
			}
		})
	}
}

// TestMigrations_SearchIndexesExistingMessages: messages stored before
// search are found once it is added; a step down from message_search
// (00008) gives back the generated column with their tsvectors, and one
// more removes it.
func TestMigrations_SearchIndexesExistingMessages(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	ctx := context.Background()
	a, err := s.CreateUser(ctx, "ann", "", "h", t0)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{IsGroup: true, UserIDs: []int64{a.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	downTo(t, s, 6) // to the schema before search
	if _, err := s.Pool().Exec(ctx, `INSERT INTO messages (conversation_id, seq, sender_id, content, created_at) VALUES ($1, 1, $2, 'Crème brûlée tonight', 0)`,
		conv, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	page, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: a.ID, Terms: []string{"creme", "BRUL"}, Limit: 10})
	hits := page.Hits
	if err != nil || len(hits) != 1 || hits[0].Message.Content != "Crème brûlée tonight" {
		t.Fatalf("after up: %+v %v", hits, err)
	}
	var mark, top int64
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT id FROM search_indexed), (SELECT max(id) FROM messages)`).Scan(&mark, &top); err != nil || mark != top {
		t.Errorf("mark %d, newest message %d (%v): want them equal", mark, top, err)
	}

	downTo(t, s, 7) // to the generated column
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM messages WHERE search @@ to_tsquery('confab_search', 'creme & brulee')`).Scan(&n); err != nil || n != 1 {
		t.Errorf("generated column after one down: %d matches (%v), want 1", n, err)
	}
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('message_search', 'search_indexed')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("message_search and search_indexed after one down: %d of them (%v)", n, err)
	}
	downTo(t, s, 6)
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'messages' AND column_name = 'search'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("search column after down: %d %v", n, err)
	}
}

// TestNotifyStore runs the behaviour every notify.Store shares, each test
// in a schema of its own.
func TestNotifyStore(t *testing.T) {
	notifytest.Run(t, func(t *testing.T) notifytest.Store { return mustOpen(t, pgtest.URL(t)) })
}

// downTo migrates down until version is the newest applied, whatever
// migrations came after it: steps counted from the top would break with
// every new migration.
func downTo(t *testing.T, s *postgres.Store, version int64) {
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

// TestModerateStore runs the behaviour every moderate.Store shares, each
// test in a schema of its own.
func TestModerateStore(t *testing.T) {
	moderatetest.Run(t, func(t *testing.T) moderatetest.Store { return mustOpen(t, pgtest.URL(t)) })
}

// TestAuditLog_AppendOnly: the database itself refuses to change, remove
// or truncate an audit entry, whoever asks.
func TestAuditLog_AppendOnly(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "bob", "bob", "hash", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SetStaff(ctx, "bob", true, moderate.Actor{}, t0); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET reason = 'nothing happened'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		if _, err := s.Pool().Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	entries, err := s.Audit(ctx, 0, 10)
	if err != nil || len(entries) != 1 || entries[0].TargetID != u.ID || entries[0].Reason != "" {
		t.Errorf("audit log now %+v, %v", entries, err)
	}
}
