package sqlq

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/confab/confab/app/chat"
)

// Querier is where a store reads, whichever its driver: each store adapts
// its read pool to it.
type Querier interface {
	// Query runs query; the caller closes the rows.
	Query(ctx context.Context, query string, args ...any) (ClosingRows, error)
	// QueryRow runs a query for one row. Its Scan returns chat.ErrNotFound
	// when there is no row.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// ClosingRows are Rows to close when done (pgx's rows are as they are).
type ClosingRows interface {
	Rows
	Close()
}

// Reader is the part of chat.Store that is one query on both stores, for
// them to embed. Methods that look up one thing return chat.ErrNotFound
// when it does not exist, as chat.Store says.
type Reader struct {
	Q Querier
	// ByteOrder sorts text byte by byte: ByteOrderSQLite or
	// ByteOrderPostgres.
	ByteOrder string
}

// UserByUsername implements chat.Store.
func (r Reader) UserByUsername(ctx context.Context, username string) (chat.Account, error) {
	return ScanAccount(r.Q.QueryRow(ctx, AccountByUsername, Fold(username)))
}

// SearchUsers implements chat.Store.
func (r Reader) SearchUsers(ctx context.Context, prefix string, limit int) ([]chat.User, error) {
	if limit <= 0 {
		return []chat.User{}, nil
	}
	users, err := collect(ctx, r.Q, limit, func(row Row) (chat.User, error) { return ScanUser(row) },
		SearchUsers(r.ByteOrder), PrefixPattern(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return users, nil
}

// Membership implements chat.Store.
func (r Reader) Membership(ctx context.Context, convID, userID int64) (role string, isGroup bool, err error) {
	if err := r.Q.QueryRow(ctx, Membership, convID, userID).Scan(&role, &isGroup); err != nil {
		return "", false, err
	}
	return role, isGroup, nil
}

// ConversationIDs implements chat.Store; most recent activity first.
func (r Reader) ConversationIDs(ctx context.Context, userID int64) ([]int64, error) {
	return collect(ctx, r.Q, 0, ScanID, ConversationIDs, userID)
}

// ParticipantIDs implements chat.Store.
func (r Reader) ParticipantIDs(ctx context.Context, convID int64) ([]int64, error) {
	return collect(ctx, r.Q, 0, ScanID, ParticipantIDs, convID)
}

// ParticipantsNamed implements chat.Store.
func (r Reader) ParticipantsNamed(ctx context.Context, convID int64, keys []string) (map[string]int64, error) {
	if len(keys) == 0 {
		return map[string]int64{}, nil
	}
	args := make([]any, 0, 1+len(keys))
	args = append(args, convID)
	for _, k := range keys {
		args = append(args, k)
	}
	out, err := collectMap[string, int64](ctx, r.Q, ParticipantsNamed(len(keys)), args...)
	if err != nil {
		return nil, fmt.Errorf("participants named: %w", err)
	}
	return out, nil
}

// ParticipantsNamed reads (username_key, id) of the participants of
// conversation $1 whose username_key is one of $2…$n+1. The keys are few
// (a message's @names): one placeholder each, the same text on both
// databases.
func ParticipantsNamed(n int) string {
	var q strings.Builder
	q.WriteString(`SELECT u.username_key, u.id FROM participants p JOIN users u ON u.id = p.user_id
		WHERE p.conversation_id = $1 AND u.username_key IN (`)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("$" + strconv.Itoa(i+2))
	}
	q.WriteString(")")
	return q.String()
}

// UnreadCounts implements chat.Store.
func (r Reader) UnreadCounts(ctx context.Context, convID int64) (map[int64]int, error) {
	out, err := collectMap[int64, int](ctx, r.Q, UnreadCounts, convID)
	if err != nil {
		return nil, fmt.Errorf("unread counts: %w", err)
	}
	return out, nil
}

// Participants implements chat.Store.
func (r Reader) Participants(ctx context.Context, convID int64, after chat.Position, limit int) ([]chat.Participant, error) {
	if limit <= 0 {
		return []chat.Participant{}, nil
	}
	ps, err := collect(ctx, r.Q, limit, scanParticipant, ParticipantPage, ParticipantPageArgs(convID, after, limit)...)
	if err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	return ps, nil
}

// Participant implements chat.Store.
func (r Reader) Participant(ctx context.Context, convID, userID int64) (chat.Participant, error) {
	return scanParticipant(r.Q.QueryRow(ctx, ParticipantOf, convID, userID))
}

func scanParticipant(row Row) (chat.Participant, error) {
	p, _, err := ScanParticipant(row)
	return p, err
}

// Message implements chat.Store.
func (r Reader) Message(ctx context.Context, id int64) (chat.Message, error) {
	return ScanMessage(r.Q.QueryRow(ctx, MessageByID, id))
}

// Messages implements chat.Store.
func (r Reader) Messages(ctx context.Context, convID int64, q chat.PageQuery) (chat.Page, error) {
	query, args := PageQuery(convID, q)
	msgs, err := collect(ctx, r.Q, q.Limit+1, ScanMessage, query, args...)
	if err != nil {
		return chat.Page{}, fmt.Errorf("messages: %w", err)
	}
	return PageOf(msgs, q), nil
}

// MessagesBySeq implements chat.Store.
func (r Reader) MessagesBySeq(ctx context.Context, convID, afterSeq, beforeSeq int64, limit int) ([]chat.Message, error) {
	query, args, ok := MessagesBySeq(convID, afterSeq, beforeSeq, limit)
	if !ok {
		return []chat.Message{}, nil
	}
	msgs, err := collect(ctx, r.Q, 0, ScanMessage, query, args...)
	if err != nil {
		return nil, fmt.Errorf("messages by seq: %w", err)
	}
	return msgs, nil
}

func collect[T any](ctx context.Context, q Querier, capacity int, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return Collect(rows, capacity, scan)
}

// collectMap reads rows of two columns, a key and its value, into a map.
func collectMap[K comparable, V any](ctx context.Context, q Querier, query string, args ...any) (map[K]V, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[K]V{}
	for rows.Next() {
		var k K
		var v V
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// Search runs a message search in either store: candidates is the
// store's own full-text query (FTS5 or tsvector), which reads the id and
// content of the newest chat.SearchCandidates matches of args below
// q.Below, newest first; they are ranked and their snippets made in Go
// (chat.SearchText), so that both stores find, order and mark alike.
func (r Reader) Search(ctx context.Context, q chat.SearchQuery, candidates string, args ...any) (chat.SearchPage, error) {
	cands, err := collect(ctx, r.Q, chat.SearchCandidates, ScanCandidate, candidates, args...)
	if err != nil {
		return chat.SearchPage{}, fmt.Errorf("search messages: %w", err)
	}
	return r.SearchPage(ctx, q, cands)
}

// SearchPage ranks cands, a window's matches newest first, and reads the
// messages of the page q asks for.
func (r Reader) SearchPage(ctx context.Context, q chat.SearchQuery, cands []chat.SearchCandidate) (chat.SearchPage, error) {
	out := chat.SearchPage{Hits: []chat.SearchHit{}, Candidates: len(cands)}
	if len(cands) > 0 {
		out.Newest, out.Oldest = cands[0].ID, cands[len(cands)-1].ID
	}
	text := chat.NewSearchText(q.Terms)
	page := chat.RankCandidates(cands, text, q.Offset, q.Limit)
	if len(page) == 0 {
		return out, nil
	}
	ids := make([]any, len(page))
	for i, id := range page {
		ids[i] = id
	}
	msgs, err := collect(ctx, r.Q, len(page), ScanMessage, `SELECT `+MessageColumns+MessageFrom+`WHERE m.id IN ($1`+placeholders(2, len(page))+`)`, ids...)
	if err != nil {
		return chat.SearchPage{}, fmt.Errorf("search messages: %w", err)
	}
	out.Hits = chat.OrderHits(page, msgs, text)
	return out, nil
}

// SearchBelow is the upper id bound a store's search query compares
// with: q.Below, or no bound when it is 0.
func SearchBelow(q chat.SearchQuery) int64 {
	if q.Below <= 0 {
		return math.MaxInt64
	}
	return q.Below
}

// placeholders is ", $from, …" up to $to.
func placeholders(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		b.WriteString(", $")
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// ScanCandidate reads a search candidate: id and content.
func ScanCandidate(row Row) (chat.SearchCandidate, error) {
	var c chat.SearchCandidate
	return c, row.Scan(&c.ID, &c.Content)
}

// CurrentVersion implements chat.Store.
func (r Reader) CurrentVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := r.Q.QueryRow(ctx, CurrentVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("current version: %w", err)
	}
	return v, nil
}

// Changes implements chat.Store.
func (r Reader) Changes(ctx context.Context, convID, after, before int64, limit int) ([]chat.Change, error) {
	if limit <= 0 {
		return []chat.Change{}, nil
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	changed, err := collect(ctx, r.Q, 0, ScanMessage, ChangesChanged, convID, after, before, limit)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	created, err := collect(ctx, r.Q, 0, ScanMessage, ChangesCreated, convID, after, before, limit)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	// A message created after `after` and changed may be in both (each
	// read is its own snapshot): once, as it was last read changed.
	out := make([]chat.Change, 0, min(limit, len(changed)+len(created)))
	at := make(map[int64]int, len(changed))
	for _, m := range changed {
		at[m.ID] = len(out)
		out = append(out, chat.Change{Message: m, Created: m.CreatedVersion > after})
	}
	for _, m := range created {
		if i, ok := at[m.ID]; ok {
			if m.Version > out[i].Message.Version {
				out[i].Message = m
			}
			continue
		}
		out = append(out, chat.Change{Message: m, Created: true})
	}
	// Each list is in key order and holds the first limit of its kind:
	// the first limit of both are the first limit of the two together.
	slices.SortFunc(out, func(a, b chat.Change) int { return cmp.Compare(a.Key(), b.Key()) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Feed reads user's feed after key for chat.Store.Feed: the clock, then
// each kind of entry up to it. conversations reads the conversations of
// FeedConversations (in the store's own dialect) with its arguments: each
// store assembles conversations itself.
func (r Reader) Feed(ctx context.Context, user int64, after chat.SyncKey, limit int,
	conversations func(args ...any) ([]chat.Conversation, error)) (chat.FeedRead, error) {
	var read chat.FeedRead
	var err error
	if read.Version, err = r.CurrentVersion(ctx); err != nil {
		return chat.FeedRead{}, err
	}
	v, id := after.After(chat.FeedConversation)
	if read.Conversations, err = conversations(user, v, id, read.Version, limit+1); err != nil {
		return chat.FeedRead{}, fmt.Errorf("feed: %w", err)
	}
	if err := r.feedRest(ctx, user, after, read.Version, limit, &read); err != nil {
		return chat.FeedRead{}, err
	}
	return read, nil
}

// feedRest reads the departures and messages of user's feed after key,
// up to version upTo.
func (r Reader) feedRest(ctx context.Context, user int64, after chat.SyncKey, upTo int64, limit int, read *chat.FeedRead) error {
	v, id := after.After(chat.FeedDeparture)
	deps, err := collect(ctx, r.Q, 0, func(row Row) (chat.Departure, error) {
		var d chat.Departure
		return d, row.Scan(&d.ConversationID, &d.Version)
	}, FeedDepartures, user, v, id, upTo, limit+1)
	if err != nil {
		return fmt.Errorf("feed: departures: %w", err)
	}
	v, id = after.After(chat.FeedMessage)
	msgs, err := collect(ctx, r.Q, 0, ScanMessage, FeedMessagesChanged, user, v, id, upTo, limit+1)
	if err != nil {
		return fmt.Errorf("feed: messages: %w", err)
	}
	createdQuery := FeedMessagesCreated
	if r.ByteOrder == ByteOrderSQLite {
		createdQuery = FeedMessagesCreatedSQLite
	}
	created, err := collect(ctx, r.Q, 0, ScanMessage, createdQuery, user, v, id, upTo, limit+1)
	if err != nil {
		return fmt.Errorf("feed: messages: %w", err)
	}
	// Both in (version, id) order; the first limit+1 of the two together.
	msgs = append(msgs, created...)
	slices.SortFunc(msgs, func(a, b chat.Message) int { return cmp.Or(cmp.Compare(a.Version, b.Version), cmp.Compare(a.ID, b.ID)) })
	if len(msgs) > limit+1 {
		msgs = msgs[:limit+1]
	}
	read.Departures, read.Messages = deps, msgs
	return nil
}
