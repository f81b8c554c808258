package sqlq

import "github.com/confab/confab/app/chat"

// HotQuery is a statement Confab runs on the live path, with arguments
// to plan it with.
type HotQuery struct {
	Name  string
	Query string
	Args  []any
}

// HotQueries are the shared statements of the live path: history pages,
// messages by seq, the read mark and unread count, conversation pages and
// their participants, membership, user lookups. Each store's query-plan
// test adds its own (the insert path, ParticipantsOfPage in its dialect,
// given here as participantsOfPage with its argument) and fails on a full
// scan of a table in any of them. A new query on the live path belongs
// here, so that it is planned too. conv, user and msg are ids that exist.
func HotQueries(conv, user, msg int64, participantsOfPage string, pageIDs any) []HotQuery {
	q := func(name, query string, args ...any) HotQuery { return HotQuery{name, query, args} }
	page := func(pq chat.PageQuery) (string, []any) { return PageQuery(conv, pq) }
	newest, newestArgs := page(chat.PageQuery{Limit: 50})
	before, beforeArgs := page(chat.PageQuery{Before: msg, Limit: 50})
	after, afterArgs := page(chat.PageQuery{After: msg, Limit: 50})
	fromStart, fromStartArgs := page(chat.PageQuery{FromStart: true, Limit: 50})
	bySeq, bySeqArgs, _ := MessagesBySeq(conv, 1, 0, 50)
	return []HotQuery{
		q("history: newest page", newest, newestArgs...),
		q("history: page before", before, beforeArgs...),
		q("history: page after", after, afterArgs...),
		q("history: from the start", fromStart, fromStartArgs...),
		q("messages by seq", bySeq, bySeqArgs...),
		q("message by id", MessageByID, msg),
		q("message by client id", MessageByClientID, user, "client"),
		q("read mark and unread count", ReadMark, conv, user),
		q("mark read", MarkRead, msg, conv, user),
		q("read own (send)", ReadOwn, conv, user, int64(1)),
		q("conversation", Conversation, user, conv),
		q("conversation page: first", ConversationPage, ConversationPageArgs(user, chat.Position{}, 51)...),
		q("conversation page: before a cursor", ConversationPage, ConversationPageArgs(user, chat.Position{At: 500, ID: conv}, 51)...),
		q("participants of a page", participantsOfPage, pageIDs, chat.MaxInlineParticipants),
		q("participants page: first", ParticipantPage, ParticipantPageArgs(conv, chat.Position{}, 51)...),
		q("participants page: after a cursor", ParticipantPage, ParticipantPageArgs(conv, chat.Position{At: 0, ID: user}, 51)...),
		q("participant", ParticipantOf, conv, user),
		q("membership", Membership, conv, user),
		q("participant ids", ParticipantIDs, conv),
		q("participants named (mentions)", ParticipantsNamed(2), conv, "someone", "other"),
		q("unread counts of a conversation", UnreadCounts, conv),
		q("conversation ids", ConversationIDs, user),
		q("user by id", AccountByID, user),
		q("user by username", AccountByUsername, "someone"),
		q("blocked ids (a socket opens)", BlockedIDs, user),
		q("blockers among (a conversation made)", BlockersAmong(2), user, conv, msg),
		q("changes: changed", ChangesChanged, conv, int64(1), int64(1<<40), 1001),
		q("changes: created", ChangesCreated, conv, int64(1), int64(1<<40), 1001),
		q("last versions", `SELECT id, version FROM conversations WHERE id = $1`, conv),
		q("feed: conversations", FeedConversations, user, int64(1), int64(0), int64(1<<40), 101),
		q("feed: departures", FeedDepartures, user, int64(1), int64(0), int64(1<<40), 101),
		q("feed: messages changed", FeedMessagesChanged, user, int64(1), int64(0), int64(1<<40), 101),
		q("feed: messages created", FeedMessagesCreated, user, int64(1), int64(0), int64(1<<40), 101),
	}
}
