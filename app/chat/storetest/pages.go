package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/confab/confab/app/chat"
)

// Exec runs a statement on a store's database, outside the store: how a
// store's tests seed more rows than its methods would write in good time.
type Exec func(ctx context.Context, query string, args ...any) error

// Seed makes n group conversations of viewer and five others (made here),
// each with one message from viewer, at activity times in no order of
// their ids, in a few statements of SQL that both stores run as they are.
// It returns the ids of the five others.
func Seed(tb testing.TB, s chat.Store, exec Exec, viewer chat.User, n int) []int64 {
	tb.Helper()
	ctx := context.Background()
	others := make([]int64, 5)
	for i := range others {
		others[i] = mustUser(tb, s, fmt.Sprintf("%s-%d", viewer.Username, i)).ID
	}
	tag := fmt.Sprint("seed-", viewer.ID, "-") // this seed's conversations, by title
	steps := []struct {
		query string
		args  []any
	}{
		// Activity: a permutation of 1..n (7919 is prime and n < 7919 ×
		// 1000003 is not needed: distinct enough, in no order of id).
		{`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $1)
			INSERT INTO conversations (title, is_group, created_by, created_at, updated_at, member_count, last_seq)
			SELECT $2 || i, $3, $4, 0, (i * 7919) % 1000003, 6, 1 FROM k`, []any{n, tag, true, viewer.ID}},
		{`INSERT INTO participants (conversation_id, user_id, role, joined_at, last_read_message_id, last_read_seq)
			SELECT c.id, u.id, CASE WHEN u.id = $2 THEN 'admin' ELSE 'member' END, 0, 0, 0
			FROM conversations c CROSS JOIN users u
			WHERE c.title LIKE $1 AND (u.id = $2 OR u.id IN ($3, $4, $5, $6, $7))`,
			[]any{tag + "%", viewer.ID, others[0], others[1], others[2], others[3], others[4]}},
		{`INSERT INTO messages (conversation_id, seq, sender_id, content, created_at)
			SELECT id, 1, $2, 'hello', updated_at FROM conversations WHERE title LIKE $1`, []any{tag + "%", others[0]}},
		{`UPDATE conversations SET last_message_id = (SELECT m.id FROM messages m WHERE m.conversation_id = conversations.id)
			WHERE title LIKE $1`, []any{tag + "%"}},
		{`ANALYZE`, nil},
	}
	for _, st := range steps {
		if err := exec(ctx, st.query, st.args...); err != nil {
			tb.Fatalf("seed: %v\n%s", err, st.query)
		}
	}
	return others
}

// ConversationPagesFixed checks that a page of a viewer's conversations,
// the first or one after a cursor, costs each counter its Want whether
// the viewer is in 1, 100 or 10,000 conversations (fewer in -short).
func ConversationPagesFixed(t *testing.T, s chat.Store, exec Exec, counters ...Counter) {
	t.Helper()
	ctx := context.Background()
	sizes := []int{1, 100, 10_000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, n := range sizes {
		viewer := mustUser(t, s, fmt.Sprint("viewer", n))
		Seed(t, s, exec, viewer, n)
		cost := func(what string, read func() ([]chat.Conversation, error), want int) []chat.Conversation {
			t.Helper()
			before := make([]int64, len(counters))
			for i, c := range counters {
				before[i] = c.Count()
			}
			cs, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != want {
				t.Errorf("in %d conversations, %s: %d conversations, want %d", n, what, len(cs), want)
			}
			for i, c := range counters {
				if got := c.Count() - before[i]; got != c.wantPage() {
					t.Errorf("in %d conversations, %s took %d %s, want %d", n, what, got, c.Name, c.wantPage())
				}
			}
			return cs
		}
		first := cost("the first page", func() ([]chat.Conversation, error) {
			return s.Conversations(ctx, viewer.ID, chat.Position{}, 50)
		}, min(n, 50))
		if n > 50 {
			cost("the page after it", func() ([]chat.Conversation, error) {
				return s.Conversations(ctx, viewer.ID, first[len(first)-1].Position(), 50)
			}, min(n-50, 50))
		}
		for _, c := range first {
			if c.MemberCount != 6 || len(c.Participants) != 6 || c.UnreadCount != 1 {
				t.Fatalf("a seeded conversation: %d members, %d shown, %d unread", c.MemberCount, len(c.Participants), c.UnreadCount)
			}
		}
	}
}

// BenchConversationPage reads pages of 50 conversations of a user in
// 10,000 (each of 6 members, with a message), among 20,000 in the
// database: the first page, and the page after the 100th conversation.
// One op is one page.
func BenchConversationPage(b *testing.B, s chat.Store, exec Exec) {
	ctx := context.Background()
	viewer := mustUser(b, s, "viewer")
	Seed(b, s, exec, mustUser(b, s, "someone"), 10_000) // conversations the viewer is not in
	Seed(b, s, exec, viewer, 10_000)
	top, err := s.Conversations(ctx, viewer.ID, chat.Position{}, 100)
	if err != nil || len(top) != 100 {
		b.Fatalf("%d conversations, %v", len(top), err)
	}
	for _, bm := range []struct {
		name   string
		before chat.Position
	}{{"first", chat.Position{}}, {"after100", top[99].Position()}} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				cs, err := s.Conversations(ctx, viewer.ID, bm.before, 50)
				if err != nil || len(cs) != 50 {
					b.Fatalf("%d conversations, %v", len(cs), err)
				}
			}
		})
	}
}
