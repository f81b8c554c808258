package sqlq

import (
	"database/sql"

	"github.com/confab/confab/app/chat"
)

// A conversation as its viewer sees it takes two queries however many
// conversations are read: the conversations, each with its last message
// and the viewer's unread count (Conversations, Conversation), then the
// participants of them all (ParticipantsOf, ParticipantsIn). Assemble puts
// the two together.

// ConversationRead is the two queries of a read of conversations, with
// their arguments.
type ConversationRead struct {
	Conversations    string
	ConversationArgs []any
	Participants     string
	ParticipantArg   int64
}

// ConversationOf reads conversation id as viewer sees it.
func ConversationOf(id, viewer int64) ConversationRead {
	return ConversationRead{Conversation, []any{viewer, id}, ParticipantsIn, id}
}

// ConversationsOf reads every conversation of viewer.
func ConversationsOf(viewer int64) ConversationRead {
	return ConversationRead{Conversations, []any{viewer}, ParticipantsOf, viewer}
}

// One returns the conversation a ConversationOf read found: ErrNotFound
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

// unreadCount is the viewer's unread count: the messages after their read
// position, O(1) from the two seqs (sending moves the sender's own). The
// CASE, rather than SQLite's max() or PostgreSQL's greatest(), is the same
// in both.
const unreadCount = `CASE WHEN c.last_seq > p.last_read_seq THEN c.last_seq - p.last_read_seq ELSE 0 END`

// conversationSelect reads what ScanConversation reads, for the viewer's
// row p of participants.
const conversationSelect = `
	SELECT c.id, c.title, c.is_group, c.created_by, c.created_at, c.updated_at, c.member_count, ` + unreadCount + `,
		` + MessageColumns + `
	FROM participants p JOIN conversations c ON c.id = p.conversation_id
	LEFT JOIN messages m ON m.id = c.last_message_id
	LEFT JOIN users u ON u.id = m.sender_id`

// Conversations reads the conversations of viewer $1, most recent
// activity first; Conversation reads conversation $2 if $1 is in it.
const (
	Conversations = conversationSelect + `
	WHERE p.user_id = $1
	ORDER BY c.updated_at DESC, c.id DESC`
	Conversation = conversationSelect + `
	WHERE p.user_id = $1 AND c.id = $2`
)

// ScanConversation reads a row of Conversations or Conversation; its
// Participants are left to Assemble.
func ScanConversation(row Row) (chat.Conversation, error) {
	var c chat.Conversation
	var createdBy sql.NullInt64
	var created, updated int64
	var last messageDest
	dst := append([]any{&c.ID, &c.Title, &c.IsGroup, &createdBy, &created, &updated, &c.MemberCount, &c.UnreadCount}, last.targets()...)
	if err := row.Scan(dst...); err != nil {
		return chat.Conversation{}, err
	}
	c.CreatedBy = chat.OptID(createdBy.Int64)
	c.CreatedAt, c.UpdatedAt = chat.UnixMilli(created), chat.UnixMilli(updated)
	c.LastMessage = last.message()
	return c, nil
}

const participantSelect = `
	SELECT u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at, p.last_read_message_id, p.conversation_id
	FROM participants p JOIN users u ON u.id = p.user_id`

// ParticipantsOf reads the participants of every conversation of user $1;
// ParticipantsIn those of conversation $1. Each conversation's come in the
// order they joined.
const (
	ParticipantsOf = participantSelect + `
	WHERE p.conversation_id IN (SELECT conversation_id FROM participants WHERE user_id = $1)
	ORDER BY p.conversation_id, p.joined_at, u.id`
	ParticipantsIn = participantSelect + `
	WHERE p.conversation_id = $1
	ORDER BY p.joined_at, u.id`
)

// Assemble gives each of convs its participants from rows of
// ParticipantsOf or ParticipantsIn. Rows of other conversations (joined
// between the two reads) are skipped. It does not close rows.
func Assemble(convs []chat.Conversation, rows Rows) error {
	at := make(map[int64]int, len(convs))
	for i := range convs {
		convs[i].Participants = []chat.Participant{}
		at[convs[i].ID] = i
	}
	for rows.Next() {
		var conv, joined, read int64
		var p chat.Participant
		var err error
		if p.User, err = ScanUser(rows, &p.Role, &joined, &read, &conv); err != nil {
			return err
		}
		p.JoinedAt, p.LastReadMessageID = chat.UnixMilli(joined), chat.OptID(read)
		if i, ok := at[conv]; ok {
			convs[i].Participants = append(convs[i].Participants, p)
		}
	}
	return rows.Err()
}
