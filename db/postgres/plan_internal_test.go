package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/chat/storetest"
	"github.com/confab/confab/db/postgres/pgtest"
	"github.com/confab/confab/db/sqlq"
)

// TestQueryPlans_NoSeqScan plans every statement of the live path
// (sqlq.HotQueries, the insert path's own, the search's and its
// indexer's) with EXPLAIN and fails on a
// Seq Scan. The session sets enable_seqscan off, so that a small test
// table is not read whole merely because it is small: a Seq Scan left is
// one no index can avoid. The plans are logged (go test -v).
func TestQueryPlans_NoSeqScan(t *testing.T) {
	ctx := context.Background()
	s := mustOpenInternal(t)
	viewer, err := s.CreateUser(ctx, "viewer", "", "h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	storetest.Seed(t, s, s.exec, viewer, 100)
	var conv, msg int64
	if err := s.pool.QueryRow(ctx, `SELECT conversation_id, id FROM messages LIMIT 1`).Scan(&conv, &msg); err != nil {
		t.Fatal(err)
	}
	hot := append(sqlq.HotQueries(conv, viewer.ID, msg, sqlq.ParticipantsOfPagePostgres, []int64{conv, conv + 1}),
		sqlq.HotQuery{Name: "send: lock senders", Query: sqlLockSenders, Args: []any{[]int64{viewer.ID}}},
		sqlq.HotQuery{Name: "send: lock conversations", Query: sqlLockConversations, Args: []any{[]int64{conv}}},
		sqlq.HotQuery{Name: "send: membership", Query: sqlMembers, Args: []any{[]int64{conv}, []int64{viewer.ID}}},
		sqlq.HotQuery{Name: "send: originals", Query: sqlOriginals, Args: []any{[]int64{viewer.ID}, []string{"client"}}},
		sqlq.HotQuery{Name: "send: insert", Query: sqlInsertMessages, Args: []any{[]int64{conv}, []int64{viewer.ID}, []string{"hi"}, []*string{nil}, []int64{0}, []*int64{&msg}, []*string{nil}, int64(0)}},
		sqlq.HotQuery{Name: "send: replies' originals", Query: sqlReplies, Args: []any{[]int64{msg}}},
		sqlq.HotQuery{Name: "search: candidates", Query: sqlSearchCandidates, Args: []any{tsQuery([]string{"hello"}), viewer.ID, 300, int64(0), int64(1 << 62)}},
		sqlq.HotQuery{Name: "search: candidates of a conversation", Query: sqlSearchCandidates, Args: []any{tsQuery([]string{"hel"}), viewer.ID, 300, conv, msg}},
		sqlq.HotQuery{Name: "search index: behind", Query: sqlSearchBehind},
		sqlq.HotQuery{Name: "search index: lock", Query: sqlSearchLock},
		sqlq.HotQuery{Name: "search index: batch", Query: sqlSearchIndex, Args: []any{msg, searchIndexBatch}},
		sqlq.HotQuery{Name: "last seqs", Query: `SELECT id, last_seq FROM conversations WHERE id = ANY($1)`, Args: []any{[]int64{conv}}},
		sqlq.HotQuery{Name: "attachments of a page", Query: sqlq.AttachmentsOf(`= ANY($1)`), Args: []any{[]int64{msg, msg + 1}}},
		sqlq.HotQuery{Name: "send: free uploads", Query: sqlFreeUploads, Args: []any{[]int64{1, 2}}},
		sqlq.HotQuery{Name: "send: attach uploads", Query: sqlAttachUploads, Args: []any{[]int64{1}, []int64{msg}, []int64{conv}, []int32{0}}},
		sqlq.HotQuery{Name: "upload by id", Query: sqlq.UploadByID, Args: []any{int64(1)}},
	)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `RESET enable_seqscan`)
	for _, h := range hot {
		t.Run(h.Name, func(t *testing.T) {
			rows, err := conn.Query(ctx, "EXPLAIN "+h.Query, h.Args...)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s\n%s", h.Name, strings.Join(plan, "\n"))
			for _, line := range plan {
				// search_indexed is one row (the search index's
				// mark): reading it whole is what an index would do.
				if strings.Contains(line, "Seq Scan") && !strings.Contains(line, "Seq Scan on search_indexed") {
					t.Errorf("%s: %s\n%s", h.Name, strings.TrimSpace(line), h.Query)
				}
			}
		})
	}
}

// mustOpenInternal opens a migrated store on a new schema of its own.
func mustOpenInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
