package sqlq

import (
	"database/sql"
	"math"

	"github.com/confab/confab/app/chat"
)

// A read of conversations takes two queries however many conversations
// the viewer is in: the conversations (Conversation, or a page of
// ConversationPage), each with its last message, member count and the
// viewer's unread count, then the first chat.MaxInlineParticipants
// participants of each of them (ParticipantsOfPage). Assemble puts the two
// together.

// unreadCount is the viewer's unread count: the messages after their read
// position, O(1) from the two seqs (sending moves the sender's own). The
// CASE, rather than SQLite's max() or PostgreSQL's greatest(), is the same
// in both.
const unreadCount = `CASE WHEN c.last_seq > p.last_read_seq THEN c.last_seq - p.last_read_seq ELSE 0 END`

// UnreadCounts reads every participant of conversation $1 with their
// unread count.
const UnreadCounts = `SELECT p.user_id, ` + unreadCount + `
	FROM participants p JOIN conversations c ON c.id = p.conversation_id
	WHERE p.conversation_id = $1`

// conversationSelect reads what ScanConversation reads, for the viewer's
// row p of participants.
const conversationSelect = conversationSelectFrom + `
	FROM participants p JOIN conversations c ON c.id = p.conversation_id` + conversationSelectJoins

const (
	conversationSelectFrom = `
	SELECT c.id, c.title, c.is_group, c.created_by, c.created_at, c.updated_at, c.member_count, c.version, ` + unreadCount + `,
		` + MessageColumns
	conversationSelectJoins = `
	LEFT JOIN messages m ON m.id = c.last_message_id
	LEFT JOIN users u ON u.id = m.sender_id` + ReplyJoins
)

// Conversation reads conversation $2 if viewer $1 is in it.
const Conversation = conversationSelect + `
	WHERE p.user_id = $1 AND c.id = $2`

// ConversationPage reads at most $4 conversations of viewer $1 that come
// after ($2, $3) by recent activity: updated_at, then id, descending.
// ConversationPageArgs gives its arguments. PostgreSQL plans it by how
// many conversations the viewer is in (its statistics keep the most
// common values of participants.user_id); SQLite's statistics are
// averages, so the SQLite store chooses between the two plans itself
// (ConversationPageByMember, ConversationPageByActivity).
const ConversationPage = conversationSelect + `
	WHERE p.user_id = $1 AND (c.updated_at, c.id) < ($2, $3)
	ORDER BY c.updated_at DESC, c.id DESC
	LIMIT $4`

// ConversationPageByMember and ConversationPageByActivity are
// ConversationPage with the order of its loops fixed (SQLite keeps the
// order of a CROSS JOIN). ByMember reads every conversation of the viewer
// and sorts them: right for a viewer in few. ByActivity walks all
// conversations from the most recent (conversations_activity) and keeps
// the viewer's: right for a viewer in many, who meets a page of theirs
// soon. ManyConversations tells them apart.
const (
	ConversationPageByMember = conversationSelectFrom + `
	FROM participants p CROSS JOIN conversations c ON c.id = p.conversation_id` + conversationSelectJoins + `
	WHERE p.user_id = $1 AND (c.updated_at, c.id) < ($2, $3)
	ORDER BY c.updated_at DESC, c.id DESC
	LIMIT $4`
	ConversationPageByActivity = conversationSelectFrom + `
	FROM conversations c CROSS JOIN participants p ON p.conversation_id = c.id AND p.user_id = $1` + conversationSelectJoins + `
	WHERE (c.updated_at, c.id) < ($2, $3)
	ORDER BY c.updated_at DESC, c.id DESC
	LIMIT $4`
)

// ManyConversations says whether viewer $1 is in at least $2
// conversations, reading no more than $2 entries of participants_user.
const ManyConversations = `SELECT count(*) >= $2 FROM (SELECT 1 FROM participants WHERE user_id = $1 LIMIT $2)`

// ConversationPageArgs are the arguments of ConversationPage and
// ConversationWalk.
func ConversationPageArgs(viewer int64, before chat.Position, limit int) []any {
	if before.IsZero() {
		before = chat.Position{At: math.MaxInt64, ID: math.MaxInt64}
	}
	return []any{viewer, before.At, before.ID, limit}
}

// One returns the conversation a Conversation read found: ErrNotFound
// when it found none (unknown, or the viewer is not in it).
func One(convs []chat.Conversation, err error) (chat.Conversation, error) {
	if err != nil {
		return chat.Conversation{}, err
	}
	if len(convs) == 0 {
		return chat.Conversation{}, chat.ErrNotFound
	}
	return convs[0], nil
}

// ScanConversation reads a row of Conversation or ConversationPage; its
// Participants are left to Assemble.
func ScanConversation(row Row) (chat.Conversation, error) {
	var c chat.Conversation
	var createdBy sql.NullInt64
	var created, updated int64
	var last messageDest
	dst := append([]any{&c.ID, &c.Title, &c.IsGroup, &createdBy, &created, &updated, &c.MemberCount, &c.Version, &c.UnreadCount}, last.targets()...)
	if err := row.Scan(dst...); err != nil {
		return chat.Conversation{}, err
	}
	c.CreatedBy = chat.OptID(createdBy.Int64)
	c.CreatedAt, c.UpdatedAt = chat.UnixMilli(created), chat.UnixMilli(updated)
	c.LastMessage = last.message()
	return c, nil
}

// participantColumns are what ScanParticipant reads, from participants p
// joined with users u.
const participantColumns = `u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at, p.last_read_message_id, p.conversation_id`

// ParticipantsOfPageSQLite and ParticipantsOfPagePostgres read the first
// $2 participants, in the order they joined, of each conversation of $1:
// a JSON array of ids on SQLite, a bigint[] on PostgreSQL. Each
// conversation's are read through participants_joined and stop at $2, so
// a page never reads all of a big group. On SQLite, CROSS JOIN keeps
// that order of the loops: with statistics of a database of few users,
// its planner would otherwise read every user and look each one up.
const (
	ParticipantsOfPageSQLite = `
	SELECT ` + participantColumns + `
	FROM json_each($1) j
	CROSS JOIN participants p ON p.conversation_id = j.value AND p.user_id IN (
		SELECT q.user_id FROM participants q WHERE q.conversation_id = j.value
		ORDER BY q.joined_at, q.user_id LIMIT $2)
	CROSS JOIN users u ON u.id = p.user_id
	ORDER BY p.conversation_id, p.joined_at, p.user_id`
	ParticipantsOfPagePostgres = `
	SELECT ` + participantColumns + `
	FROM unnest($1::bigint[]) j(id)
	CROSS JOIN LATERAL (
		SELECT q.* FROM participants q WHERE q.conversation_id = j.id
		ORDER BY q.joined_at, q.user_id LIMIT $2) p
	JOIN users u ON u.id = p.user_id
	ORDER BY p.conversation_id, p.joined_at, p.user_id`
)

// ParticipantPage reads at most $4 participants of conversation $1 that
// joined after ($2, $3): joined_at, then user id, ascending.
const ParticipantPage = `
	SELECT ` + participantColumns + `
	FROM participants p JOIN users u ON u.id = p.user_id
	WHERE p.conversation_id = $1 AND (p.joined_at, p.user_id) > ($2, $3)
	ORDER BY p.joined_at, p.user_id
	LIMIT $4`

// ParticipantPageArgs are the arguments of ParticipantPage.
func ParticipantPageArgs(convID int64, after chat.Position, limit int) []any {
	if after.IsZero() {
		after = chat.Position{At: math.MinInt64, ID: math.MinInt64}
	}
	return []any{convID, after.At, after.ID, limit}
}

// ParticipantOf reads user $2's entry in conversation $1.
const ParticipantOf = `
	SELECT ` + participantColumns + `
	FROM participants p JOIN users u ON u.id = p.user_id
	WHERE p.conversation_id = $1 AND p.user_id = $2`

// ScanParticipant reads a row of participantColumns, and returns the
// conversation it is in too.
func ScanParticipant(row Row) (p chat.Participant, conv int64, err error) {
	var joined, read int64
	if p.User, err = ScanUser(row, &p.Role, &joined, &read, &conv); err != nil {
		return chat.Participant{}, 0, err
	}
	p.JoinedAt, p.LastReadMessageID = chat.UnixMilli(joined), chat.OptID(read)
	return p, conv, nil
}

// Assemble gives each of convs its participants from rows of
// ParticipantsOfPage. Rows of other conversations are skipped. It does
// not close rows.
func Assemble(convs []chat.Conversation, rows Rows) error {
	at := make(map[int64]int, len(convs))
	for i := range convs {
		convs[i].Participants = []chat.Participant{}
		at[convs[i].ID] = i
	}
	for rows.Next() {
		p, conv, err := ScanParticipant(rows)
		if err != nil {
			return err
		}
		if i, ok := at[conv]; ok {
			convs[i].Participants = append(convs[i].Participants, p)
		}
	}
	return rows.Err()
}

// IDs are the ids of convs.
func IDs(convs []chat.Conversation) []int64 {
	ids := make([]int64, len(convs))
	for i := range convs {
		ids[i] = convs[i].ID
	}
	return ids
}
