package db

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/chat/storetest"
	"github.com/confab/confab/db/sqlq"
)

// TestQueryPlans_NoFullScan plans every statement of the live path
// (sqlq.HotQueries and the insert path's own) with EXPLAIN QUERY PLAN and
// fails on a full scan of a table: a SCAN that uses no index. Virtual
// tables (json_each) and constant rows are not tables. The plans are
// logged (go test -v).
func TestQueryPlans_NoFullScan(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "confab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	viewer, err := s.CreateUser(ctx, "viewer", "", "h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	storetest.Seed(t, s, s.exec, viewer, 100) // with ANALYZE: the planner has statistics
	var conv, msg int64
	if err := s.read.QueryRowContext(ctx, `SELECT conversation_id, id FROM messages LIMIT 1`).Scan(&conv, &msg); err != nil {
		t.Fatal(err)
	}
	ids, _ := json.Marshal([]int64{conv, conv + 1})
	hot := append(sqlq.HotQueries(conv, viewer.ID, msg, sqlq.ParticipantsOfPageSQLite, string(ids)),
		sqlq.HotQuery{Name: "send: membership", Query: sqlMember, Args: []any{conv, viewer.ID}},
		sqlq.HotQuery{Name: "send: insert", Query: sqlInsertMessage, Args: []any{conv, viewer.ID, "hi", nil, 0, 1, msg, nil, 1, 1}},
		sqlq.HotQuery{Name: "send: reply's original", Query: sqlReplyTo, Args: []any{msg}},
		sqlq.HotQuery{Name: "send: original", Query: sqlOriginal, Args: []any{viewer.ID, "client"}},
		sqlq.HotQuery{Name: "send: touch", Query: sqlTouchConversation, Args: []any{0, msg, 1, 1, conv}},
		sqlq.HotQuery{Name: "conversation page: by member", Query: sqlq.ConversationPageByMember, Args: sqlq.ConversationPageArgs(viewer.ID, chat.Position{}, 51)},
		sqlq.HotQuery{Name: "conversation page: by activity", Query: sqlq.ConversationPageByActivity, Args: sqlq.ConversationPageArgs(viewer.ID, chat.Position{}, 51)},
		sqlq.HotQuery{Name: "conversation page: how many", Query: sqlq.ManyConversations, Args: []any{viewer.ID, manyConversations}},
		sqlq.HotQuery{Name: "last seqs", Query: `SELECT id, last_seq FROM conversations WHERE id IN (?, ?)`, Args: []any{conv, conv + 1}},
		sqlq.HotQuery{Name: "reactions of a page", Query: sqlq.ReactionsOf(`IN (?, ?)`), Args: []any{viewer.ID, msg, msg + 1}},
		sqlq.HotQuery{Name: "react: distinct emoji", Query: sqlq.ReactionEmojis, Args: []any{msg, "👍"}},
		sqlq.HotQuery{Name: "react: count", Query: sqlq.ReactionCount, Args: []any{msg, "👍"}},
		sqlq.HotQuery{Name: "react: remove", Query: sqlq.RemoveReaction, Args: []any{msg, "👍", viewer.ID}},
		sqlq.HotQuery{Name: "attachments of a page", Query: sqlq.AttachmentsOf(`IN (?, ?)`), Args: []any{msg, msg + 1}},
		sqlq.HotQuery{Name: "send: free upload", Query: sqlFreeUpload, Args: []any{1, viewer.ID}},
		sqlq.HotQuery{Name: "send: attach upload", Query: sqlAttachUpload, Args: []any{msg, conv, 0, 1}},
		sqlq.HotQuery{Name: "upload by id", Query: sqlq.UploadByID, Args: []any{1}},
		sqlq.HotQuery{Name: "search: viewer's conversations", Query: sqlViewerConversations, Args: []any{viewer.ID, maxFilteredConversations + 1}},
		sqlq.HotQuery{Name: "search: candidates", Query: sqlSearchCandidates, Args: []any{ftsQuery([]string{"hi"}, true, []int64{conv}), viewer.ID, chat.SearchCandidates, int64(1) << 62}},
		sqlq.HotQuery{Name: "search: scan", Query: sqlSearchScan, Args: []any{ftsQuery([]string{"hi"}, false, nil), viewer.ID, prefixScanned, int64(1) << 62}},
		sqlq.HotQuery{Name: "search: recent messages", Query: sqlRecentMessages, Args: []any{viewer.ID, recentScanned, int64(1) << 62}},
		sqlq.HotQuery{Name: "search: index a batch", Query: sqlSearchIndex, Args: []any{msg - 1, msg}},
	)
	// The SQLite store reads the feed with its own loop orders.
	for i := range hot {
		switch hot[i].Query {
		case sqlq.FeedConversations:
			hot[i].Query = sqlq.FeedConversationsSQLite
		case sqlq.FeedMessagesCreated:
			hot[i].Query = sqlq.FeedMessagesCreatedSQLite
		}
	}
	for _, h := range hot {
		t.Run(h.Name, func(t *testing.T) {
			rows, err := s.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+h.Query, h.Args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notUsed int
				var detail string
				if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s\n\t%s", h.Name, strings.Join(plan, "\n\t"))
			for _, step := range plan {
				if fullScan(step) {
					t.Errorf("%s: full scan %q\n%s", h.Name, step, h.Query)
				}
			}
		})
	}
}

// fullScan reports whether a step of a SQLite plan reads a whole table:
// SCAN without an index, of a table rather than a virtual table, a
// subquery's rows or a constant row.
func fullScan(step string) bool {
	if !strings.HasPrefix(step, "SCAN ") || strings.HasPrefix(step, "SCAN (") { // (subquery-1): rows of a subquery
		return false
	}
	for _, ok := range []string{" USING ", "VIRTUAL TABLE", "CONSTANT ROW"} {
		if strings.Contains(step, ok) {
			return false
		}
	}
	return true
}

func TestFullScan_ReadsSQLitePlans(t *testing.T) {
	for step, want := range map[string]bool{
		"SCAN messages": true,
		"SCAN m":        true,
		"SCAN c USING INDEX conversations_activity":       false,
		"SEARCH p USING PRIMARY KEY (conversation_id=?)":  false,
		"SCAN j VIRTUAL TABLE INDEX 0:":                   false,
		"SCAN CONSTANT ROW":                               false,
		"SCAN (subquery-1)":                               false,
		"USE TEMP B-TREE FOR ORDER BY":                    false,
		"SEARCH u USING INTEGER PRIMARY KEY (rowid=?)":    false,
		"SCAN p USING COVERING INDEX participants_joined": false,
	} {
		if got := fullScan(step); got != want {
			t.Errorf("fullScan(%q) = %v, want %v", step, got, want)
		}
	}
}
