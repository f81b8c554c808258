package chat

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/confab/confab/app/hub"
)

// A new message is encoded once, and in two steps, so that the group
// commit's writer (the goroutine every sender waits for) does almost none
// of it: the sender's goroutine encodes everything it knows before the
// commit (messageTail: sender, content, client_id, created_at), and the
// writer only puts the id, conversation id and seq in front
// (newMessageEvent), and the version. The same bytes are the new_message event, the
// notification's message, and the REST and WebSocket answers to the
// sender.

// messageTail is the JSON of a message's fields after seq, in Message's
// order, from the comma before "sender" to the closing brace: what
// newMessageEvent completes.
type messageTail struct {
	Sender    UserLite `json:"sender"`
	Content   string   `json:"content"`
	ClientID  *string  `json:"client_id"`
	CreatedAt Time     `json:"created_at"`
	EditedAt  *Time    `json:"edited_at"`
	IsDeleted bool     `json:"is_deleted"`
	// RemovedByModerator: a new message never is; kept for the field
	// order Message has.
	RemovedByModerator bool     `json:"removed_by_moderator,omitempty"`
	ReplyTo            *ReplyTo `json:"reply_to"`
	Mentions           IDs      `json:"mentions"`
	// Reactions of a new message are none: [].
	Reactions   Reactions   `json:"reactions"`
	Attachments Attachments `json:"attachments"`
}

func encodeTail(m *Message) []byte {
	b, err := json.Marshal(messageTail{m.Sender, m.Content, m.ClientID, m.CreatedAt, m.EditedAt, m.IsDeleted, m.RemovedByModerator, m.ReplyTo, m.Mentions, m.Reactions, m.Attachments})
	if err != nil {
		panic("chat: encode message: " + err.Error())
	}
	b[0] = ',' // it continues the object newMessageEvent opens
	return b
}

// newMessageEvent returns the new_message event of m, whose tail
// (encodeTail) is already encoded, and m's own JSON: a slice of the
// event's data.
func newMessageEvent(m *Message, tail []byte) (ev *hub.Event, msg []byte) {
	b := make([]byte, 0, 128+len(tail))
	b = append(b, `{"type":"new_message","conversation_id":`...)
	b = strconv.AppendInt(b, m.ConversationID, 10)
	b = append(b, `,"message":`...)
	start := len(b)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, `,"conversation_id":`...)
	b = strconv.AppendInt(b, m.ConversationID, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, m.Version, 10)
	b = append(b, tail...)
	end := len(b)
	b = append(b, '}')
	ev = &hub.Event{Type: EventNewMessage, Data: b, ConversationID: m.ConversationID, MessageID: m.ID, Version: m.CreatedVersion, Prev: m.PrevVersion}
	return ev, b[start:end:end]
}

// IsMention reports whether ev is a notification with reason mention. It
// reads the frame as notificationEvent wrote it, with no decoding, so
// that it holds for one that came from another node too (which carries
// the frame's bytes, not a Go value).
func IsMention(ev *hub.Event) bool {
	if ev.Type != EventNotification {
		return false
	}
	const head = `{"type":"notification","conversation_id":`
	d := ev.Data
	if !bytes.HasPrefix(d, []byte(head)) {
		return false
	}
	d = d[len(head):]
	for len(d) > 0 && d[0] >= '0' && d[0] <= '9' {
		d = d[1:]
	}
	return bytes.HasPrefix(d, []byte(`,"reason":"`+ReasonMention+`"`))
}

// MentionAsMessage returns the notification ev (a mention, as
// IsMention reads it) with reason message instead: the same bytes but
// those of the reason, which are as long. For a socket whose user blocks
// the sender: a mention of theirs is no mention to them. It copies ev.
func MentionAsMessage(ev *hub.Event) *hub.Event {
	const head = `{"type":"notification","conversation_id":`
	i := len(head)
	for i < len(ev.Data) && ev.Data[i] >= '0' && ev.Data[i] <= '9' {
		i++
	}
	i += len(`,"reason":"`)
	out := *ev
	out.Data = append([]byte(nil), ev.Data...)
	copy(out.Data[i:], ReasonMessage)
	return &out
}

// MentionAsMessage rewrites the reason in place: the two must be as long
// (this fails to compile otherwise).
const _ = uint(len(ReasonMention)-len(ReasonMessage)) + uint(len(ReasonMessage)-len(ReasonMention))

// Reasons of a notification.
const (
	// ReasonMessage: a new message in a conversation of the user's.
	ReasonMessage = "message"
	// ReasonMention: a new message that mentions the user.
	ReasonMention = "mention"
)

// notificationEvent returns the notification, for reason, of a new
// message whose JSON is msg.
func notificationEvent(convID int64, reason string, msg []byte) *hub.Event {
	b := make([]byte, 0, 80+len(msg))
	b = append(b, `{"type":"notification","conversation_id":`...)
	b = strconv.AppendInt(b, convID, 10)
	b = append(b, `,"reason":"`...)
	b = append(b, reason...)
	b = append(b, `","message":`...)
	b = append(b, msg...)
	b = append(b, '}')
	return &hub.Event{Type: EventNotification, Data: b, ConversationID: convID}
}
