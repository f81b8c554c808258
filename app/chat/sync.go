package chat

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
)

// A user's feed is every change they can see, in version order: their
// conversations as they changed (created, renamed, joined, a member
// added or gone, a message in it), their departures from conversations,
// and the messages created or changed in the conversations they are in.
// Versions come from one clock (Conversation.Version), so a version read
// from it says every change up to it is committed and visible: the feed
// has no gap behind a cursor, on any number of nodes.

// Kinds of feed entries, in the order they sort within one version.
const (
	FeedDeparture    = 0
	FeedConversation = 1
	FeedMessage      = 2
	FeedEnd          = 3 // past every entry of the version
)

// SyncKey is a place in a user's feed: an entry's version, kind and id
// (a conversation's or a message's), ordered in that order. The zero
// SyncKey is before everything.
type SyncKey struct {
	Version int64
	Kind    int
	ID      int64
}

// After returns the bound, for entries of kind, that comes right after k:
// those with (version, id) greater than the bound's (Version, ID) are
// after k in the feed.
func (k SyncKey) After(kind int) (version, id int64) {
	switch {
	case kind < k.Kind:
		return k.Version, math.MaxInt64
	case kind == k.Kind:
		return k.Version, k.ID
	default:
		return k.Version, -1
	}
}

func (k SyncKey) compare(o SyncKey) int {
	return cmp.Or(cmp.Compare(k.Version, o.Version), cmp.Compare(k.Kind, o.Kind), cmp.Compare(k.ID, o.ID))
}

// Departure is a user's last departure from a conversation they are no
// longer in.
type Departure struct {
	ConversationID int64
	Version        int64
}

// FeedRead is what a store read of a user's feed after a key found: at
// most limit+1 entries of each kind, each ascending by (version, id),
// none past Version, the clock as read before them.
type FeedRead struct {
	Version       int64
	Conversations []Conversation
	Departures    []Departure
	Messages      []Message
}

// SyncPage is one page of a user's feed (GET /api/sync/).
type SyncPage struct {
	Conversations          []Conversation `json:"conversations"`
	RemovedConversationIDs IDs            `json:"removed_conversation_ids"`
	Messages               []Message      `json:"messages"`
	Cursor                 string         `json:"cursor"`
	HasMore                bool           `json:"has_more"`
}

// Sync limits.
const (
	DefaultSyncLimit = 100
	MaxSyncLimit     = 500
)

// Sync returns the changes user can see after the cursor since, at most
// limit entries (conversations, removed conversations and messages
// together). Without since it returns only the current cursor: where a
// client starts, before it loads its first pages.
func (s *Service) Sync(ctx context.Context, user int64, since string, hasSince bool, limit int) (SyncPage, error) {
	if limit == 0 {
		limit = DefaultSyncLimit
	}
	if limit < 1 || limit > MaxSyncLimit {
		return SyncPage{}, InvalidField("limit", "Must be between 1 and "+strconv.Itoa(MaxSyncLimit)+".")
	}
	if !hasSince {
		page := SyncPage{Conversations: []Conversation{}, RemovedConversationIDs: IDs{}, Messages: []Message{}}
		v, err := s.store.CurrentVersion(ctx)
		if err != nil {
			return SyncPage{}, err
		}
		page.Cursor = EncodeSyncCursor(SyncKey{Version: v, Kind: FeedEnd})
		return page, nil
	}
	after, err := DecodeSyncCursor(since)
	if err != nil {
		return SyncPage{}, InvalidField("since", "Not a cursor of this endpoint.")
	}
	read, err := s.store.Feed(ctx, user, after, limit)
	if err != nil {
		return SyncPage{}, err
	}
	page := FeedPage(read, after, limit)
	// The page's messages, and its conversations' last ones, with their
	// reactions as user sees them.
	if err := s.withDetails(ctx, user, page.Messages); err != nil {
		return SyncPage{}, err
	}
	if err := s.lastMessageReactions(ctx, user, page.Conversations); err != nil {
		return SyncPage{}, err
	}
	return page, nil
}

// FeedPage makes the page of a feed read after after: its entries in
// feed order, the first limit of them, and the cursor after the last.
func FeedPage(read FeedRead, after SyncKey, limit int) SyncPage {
	page := SyncPage{Conversations: []Conversation{}, RemovedConversationIDs: IDs{}, Messages: []Message{}}
	type entry struct {
		key SyncKey
		c   *Conversation
		d   *Departure
		m   *Message
	}
	entries := make([]entry, 0, len(read.Conversations)+len(read.Departures)+len(read.Messages))
	for i := range read.Conversations {
		c := &read.Conversations[i]
		entries = append(entries, entry{key: SyncKey{c.Version, FeedConversation, c.ID}, c: c})
	}
	for i := range read.Departures {
		d := &read.Departures[i]
		entries = append(entries, entry{key: SyncKey{d.Version, FeedDeparture, d.ConversationID}, d: d})
	}
	for i := range read.Messages {
		m := &read.Messages[i]
		entries = append(entries, entry{key: SyncKey{m.Version, FeedMessage, m.ID}, m: m})
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.key.compare(b.key) })
	// Each kind was read up to limit+1 entries: past limit entries in
	// all, what follows the limit-th may be missing some, and the page
	// ends there.
	last := SyncKey{Version: read.Version, Kind: FeedEnd}
	if len(entries) > limit {
		entries = entries[:limit]
		last = entries[limit-1].key
		page.HasMore = true
	}
	if last.compare(after) < 0 { // a clock read behind the cursor given
		last = after
	}
	for _, e := range entries {
		switch {
		case e.c != nil:
			page.Conversations = append(page.Conversations, *e.c)
		case e.d != nil:
			page.RemovedConversationIDs = append(page.RemovedConversationIDs, e.d.ConversationID)
		default:
			page.Messages = append(page.Messages, *e.m)
		}
	}
	page.Cursor = EncodeSyncCursor(last)
	return page
}

// EncodeSyncCursor returns the opaque cursor of a place in the feed.
func EncodeSyncCursor(k SyncKey) string {
	return encodeInts("s", k.Version, int64(k.Kind), k.ID)
}

// DecodeSyncCursor reads a cursor EncodeSyncCursor made, and nothing
// else.
func DecodeSyncCursor(s string) (SyncKey, error) {
	n, ok := decodeInts(s, "s", 3)
	if !ok || n[0] < 0 || n[1] < 0 || n[1] > FeedEnd || n[2] < 0 {
		return SyncKey{}, errInvalidCursor
	}
	return SyncKey{Version: n[0], Kind: int(n[1]), ID: n[2]}, nil
}
