package chat

import (
	"context"
	"encoding/json"

	"github.com/confab/confab/app/hub"
)

// Event types, as they appear in the frame's "type".
const (
	EventNewMessage          = "new_message"
	EventMessageUpdated      = "message_updated"
	EventMessageDeleted      = "message_deleted"
	EventTyping              = "typing"
	EventReadReceipt         = "read_receipt"
	EventPresence            = "presence"
	EventNotification        = "notification"
	EventConversationUpdated = "conversation_updated"
	EventReactionUpdated     = "reaction_updated"
	// EventUserDeleted is internal: it tells the edges to drop a deleted
	// user's connections, and is never sent to a client.
	EventUserDeleted = "\x00user_deleted"
	// EventSessionsRevoked is internal: a password change ended every
	// session of the user but the one in its Data (a refresh chain id,
	// empty for none); the edges close those sessions' sockets.
	EventSessionsRevoked = "\x00sessions_revoked"
	// EventAccountDisabled is internal: staff deactivated the user, and
	// every socket of theirs, on every node, closes.
	EventAccountDisabled = "\x00account_disabled"
	// EventParticipantRemoved is internal too: published to a user's
	// topic once they are out of ConversationID, so their sockets stop
	// that conversation's events. Never sent to a client.
	EventParticipantRemoved = "\x00participant_removed"
)

// Publisher is the live side of the service: the hub.
type Publisher interface {
	// Publish and PublishUsers hand an event to the subscribers without
	// waiting for any of them.
	Publish(t hub.Topic, ev *hub.Event)
	PublishUsers(userIDs []int64, ev *hub.Event)
	// OnlineAmong returns those of userIDs that are online, in the order
	// given, asking other nodes (if any) in one call.
	OnlineAmong(ctx context.Context, userIDs []int64) []int64
}

type messageEvent struct {
	Type           string   `json:"type"`
	ConversationID int64    `json:"conversation_id"`
	Message        *Message `json:"message"`
}

// reactionEvent is a reaction added or removed: the emoji's new count on
// the message, and who changed it, so that each client sets its own Me.
type reactionEvent struct {
	Type           string `json:"type"`
	ConversationID int64  `json:"conversation_id"`
	MessageID      int64  `json:"message_id"`
	Emoji          string `json:"emoji"`
	Count          int    `json:"count"`
	UserID         int64  `json:"user_id"`
	Added          bool   `json:"added"`
	Version        int64  `json:"version"`
}

type typingEvent struct {
	Type           string `json:"type"`
	ConversationID int64  `json:"conversation_id"`
	UserID         int64  `json:"user_id"`
	Username       string `json:"username"`
	IsTyping       bool   `json:"is_typing"`
}

type readEvent struct {
	Type           string `json:"type"`
	ConversationID int64  `json:"conversation_id"`
	UserID         int64  `json:"user_id"`
	MessageID      int64  `json:"message_id"`
	ReadAt         Time   `json:"read_at"`
}

type presenceEvent struct {
	Type   string `json:"type"`
	UserID int64  `json:"user_id"`
	Status string `json:"status"`
}

type conversationEvent struct {
	Type         string        `json:"type"`
	Conversation *Conversation `json:"conversation"`
}

// encode marshals v into an event. The types above cannot fail to encode.
func encode(typ string, convID int64, v any) *hub.Event {
	b, err := json.Marshal(v)
	if err != nil {
		panic("chat: encode event: " + err.Error())
	}
	return &hub.Event{Type: typ, Data: b, ConversationID: convID}
}

// MessageEvent returns the new_message frame for m, as sent live and as
// replayed on recovery: its order key is the version m was created with.
func MessageEvent(m *Message) *hub.Event {
	ev := encode(EventNewMessage, m.ConversationID, messageEvent{EventNewMessage, m.ConversationID, m})
	ev.MessageID, ev.Version, ev.Prev = m.ID, m.CreatedVersion, m.PrevVersion
	return ev
}

// ChangeEvent returns the message_updated frame for m as it is now, or
// message_deleted for a tombstone: its order key is m's version.
func ChangeEvent(m *Message) *hub.Event {
	typ := EventMessageUpdated
	if m.IsDeleted {
		typ = EventMessageDeleted
	}
	ev := encode(typ, m.ConversationID, messageEvent{typ, m.ConversationID, m})
	ev.MessageID, ev.Version, ev.Prev = m.ID, m.Version, m.PrevVersion
	return ev
}

// Event returns the frame of a change: new_message when it is the
// message's creation, else ChangeEvent.
func (c *Change) Event() *hub.Event {
	if c.Created {
		return MessageEvent(&c.Message)
	}
	return ChangeEvent(&c.Message)
}

// Sequence lets a hub order each conversation's changes by version and
// fill gaps from the store (hub.Sequence): for nodes that share a store.
// sign sets attachments' URLs, as Options.AttachmentURLs.
func Sequence(store Store, sign func(*Attachment)) hub.Sequence { return sequence{store, sign} }

type sequence struct {
	store Store
	sign  func(*Attachment)
}

func (q sequence) LastVersions(ctx context.Context, convIDs []int64) (map[int64]int64, error) {
	return q.store.LastVersions(ctx, convIDs)
}

func (q sequence) Between(ctx context.Context, convID, after, before int64, limit int) ([]*hub.Event, error) {
	changes, err := q.store.Changes(ctx, convID, after, before, limit)
	if err != nil {
		return nil, err
	}
	// As they are now, reactions included; without Me, like every
	// event the hub hands to many sockets.
	if err := changeDetails(ctx, q.store, q.sign, 0, changes); err != nil {
		return nil, err
	}
	evs := make([]*hub.Event, len(changes))
	for i := range changes {
		evs[i] = changes[i].Event()
	}
	return evs, nil
}
