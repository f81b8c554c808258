package chat

import (
	"encoding/json"
	"strconv"
	"time"
)

// Time is a UTC instant that encodes as ISO-8601 with milliseconds
// (2026-11-27T15:03:21.123Z), the contract's timestamp format.
type Time struct{ time.Time }

// TimeLayout is the wire format of every timestamp.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnixMilli returns a Time for ms milliseconds since the epoch.
func UnixMilli(ms int64) Time { return Time{time.UnixMilli(ms).UTC()} }

// OptID is an id that encodes as null when zero ("never read", "none").
type OptID int64

// MarshalJSON implements json.Marshaler.
func (id OptID) MarshalJSON() ([]byte, error) {
	if id == 0 {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, int64(id), 10), nil
}

// User is an account as every client sees it.
type User struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	CreatedAt   Time   `json:"created_at"`
	IsOnline    bool   `json:"is_online"`
}

// Account is a User with its credentials; it never leaves the server.
type Account struct {
	User
	PasswordHash string
	// TokenEpoch counts the user's password changes: a token issued
	// before the last one (with a smaller epoch) is no longer valid,
	// unless it belongs to KeptSession, the login (refresh chain) that
	// made the change.
	TokenEpoch  int64
	KeptSession string
	// IsStaff says the account may moderate (/api/admin/). Only the
	// user themselves and staff are ever told.
	IsStaff bool
	// DeactivatedAt is when staff deactivated the account; nil while it
	// is active. A deactivated account cannot log in, refresh or use a
	// token, and no search finds it.
	DeactivatedAt *time.Time
}

// Active reports whether the account is not deactivated.
func (a *Account) Active() bool { return a.DeactivatedAt == nil }

// UserLite is the sender shown inside a message.
type UserLite struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// Lite returns u as a message shows its sender.
func (u User) Lite() UserLite {
	return UserLite{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName}
}

// Role of a participant in a conversation.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Participant is one member of a conversation.
type Participant struct {
	User              User   `json:"user"`
	Role              string `json:"role"`
	JoinedAt          Time   `json:"joined_at"`
	LastReadMessageID OptID  `json:"last_read_message_id"`
}

// Conversation is a direct (two people) or group conversation as one
// participant sees it: UnreadCount is that viewer's.
//
// Participants are the first MaxInlineParticipants of them in the order
// they joined; MemberCount says how many there are in all, and
// Service.Participants pages through every one.
//
// UnreadCount is how many messages came after the viewer's read position
// (LastSeq minus the seq of their last read message): sending moves the
// sender's own position to what they sent, and a message deleted after it
// still counts, as its tombstone shows in the history.
type Conversation struct {
	ID           int64         `json:"id"`
	Title        string        `json:"title"`
	IsGroup      bool          `json:"is_group"`
	CreatedBy    OptID         `json:"created_by"`
	CreatedAt    Time          `json:"created_at"`
	UpdatedAt    Time          `json:"updated_at"`
	MemberCount  int           `json:"member_count"`
	Participants []Participant `json:"participants"`
	LastMessage  *Message      `json:"last_message"`
	UnreadCount  int           `json:"unread_count"`
	// Version is the version of the conversation's last change that its
	// participants can see: a message created, edited, deleted or reacted
	// to, its title, a member added, removed or gone. Versions come from
	// one clock for the whole database and grow in commit order, so a
	// conversation's only grow, and a version seen means every change
	// before it was committed too (the sync feed's cursor).
	Version int64 `json:"version"`
}

// MaxInlineParticipants is how many participants a Conversation carries.
const MaxInlineParticipants = 10

// Position returns where c stands in a list by recent activity: the
// cursor of the page after it.
func (c *Conversation) Position() Position {
	return Position{At: c.UpdatedAt.UnixMilli(), ID: c.ID}
}

// Position returns where p stands in the list of a conversation's
// participants, in the order they joined.
func (p *Participant) Position() Position {
	return Position{At: p.JoinedAt.UnixMilli(), ID: p.User.ID}
}

// Position is a place in a list ordered by a time and an id: a
// conversation's activity (updated_at, id), or a participant's
// (joined_at, user id). The zero Position is the start of either list.
type Position struct {
	At int64 // Unix milliseconds
	ID int64
}

// IsZero reports whether p is the start of a list.
func (p Position) IsZero() bool { return p == Position{} }

// Participant returns the participant entry of userID, or nil.
func (c *Conversation) Participant(userID int64) *Participant {
	for i := range c.Participants {
		if c.Participants[i].User.ID == userID {
			return &c.Participants[i]
		}
	}
	return nil
}

// Message is one message of a conversation. A deleted message stays as a
// tombstone with empty Content and IsDeleted set.
//
// Seq numbers the messages of one conversation 1, 2, 3…: it is assigned in
// the transaction that stores the message, in commit order, so every node
// and every client sees the same order. IDs grow within a conversation in
// that same order. Seq has holes only where messages were removed together
// with their deleted author; it is never reused.
type Message struct {
	ID             int64 `json:"id"`
	ConversationID int64 `json:"conversation_id"`
	Seq            int64 `json:"seq"`
	// Version is the conversation version of the message's last change
	// (created, edited, deleted, reacted to); CreatedVersion the one it
	// was created with. See Conversation.Version.
	Version        int64 `json:"version"`
	CreatedVersion int64 `json:"-"`
	// PrevVersion is, on a message just created or changed, the
	// conversation's version before that change (the event's Prev).
	PrevVersion int64    `json:"-"`
	Sender      UserLite `json:"sender"`
	Content     string   `json:"content"`
	ClientID    *string  `json:"client_id"`
	CreatedAt   Time     `json:"created_at"`
	EditedAt    *Time    `json:"edited_at"`
	IsDeleted   bool     `json:"is_deleted"`
	// RemovedByModerator is set on a tombstone that staff made (the
	// message was reported and removed), and left out of every other.
	RemovedByModerator bool `json:"removed_by_moderator,omitempty"`
	// ReplyTo is the message this one answers, as it is now; nil for
	// none, and for an original removed with its author's account.
	ReplyTo *ReplyTo `json:"reply_to"`
	// Mentions are the participants the content named with @username
	// when it was stored (and again at each edit), in order of first
	// mention.
	Mentions IDs `json:"mentions"`
	// Reactions are the message's reactions by emoji, in order of each
	// emoji's first use. Me is set for the viewer a read is for, and
	// left out of what goes to many sockets at once.
	Reactions Reactions `json:"reactions"`
	// Attachments are the files the message carries, in the order they
	// were sent; none once it is deleted.
	Attachments Attachments `json:"attachments"`
}

// MaxAttachments is the most files one message carries.
const MaxAttachments = 10

// Attachment is a file a message carries (an upload attached to it).
type Attachment struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	MIME   string `json:"mime"`
	Size   int64  `json:"size"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	// URL and ThumbnailURL are short-lived signed addresses of the file
	// and of its thumbnail (nil for a file without one), which open
	// without an Authorization header (an <img src>), set by
	// Options.AttachmentURLs.
	URL          string  `json:"url"`
	ThumbnailURL *string `json:"thumbnail_url"`
	// Thumbnail says whether the file has a thumbnail.
	Thumbnail bool `json:"-"`
}

// Attachments are a message's files; they encode as [] when empty, never
// null.
type Attachments []Attachment

// MarshalJSON implements json.Marshaler.
func (a Attachments) MarshalJSON() ([]byte, error) {
	if len(a) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal([]Attachment(a))
}

// MaxReactions is the most distinct emoji one message takes.
const MaxReactions = 20

// Reaction is one emoji's reactions to a message: how many users reacted
// with it, and, for a viewer, whether they are one of them.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Me    *bool  `json:"me,omitempty"`
}

// Reactions are a message's reactions; they encode as [] when empty,
// never null.
type Reactions []Reaction

// MarshalJSON implements json.Marshaler.
func (r Reactions) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal([]Reaction(r))
}

// ReactionChange is what a reaction added or removed did.
type ReactionChange struct {
	ConversationID int64
	// Changed is false when the reaction was already there (add) or
	// not there (remove): nothing was written.
	Changed bool
	// Count is how many users now react to the message with the emoji.
	Count int
	// Version is the change's version, given to the message and its
	// conversation; zero when nothing changed. Prev is the
	// conversation's version before it.
	Version, Prev int64
}

// MaxPreview is the most code points of a ReplyTo's ContentPreview.
const MaxPreview = 200

// ReplyTo is the original a reply shows: a preview of its content, empty
// once it is deleted.
type ReplyTo struct {
	ID             int64    `json:"id"`
	Sender         UserLite `json:"sender"`
	ContentPreview string   `json:"content_preview"`
	IsDeleted      bool     `json:"is_deleted"`
}

// IDs is a list of ids that encodes as [] when empty, never null.
type IDs []int64

// MarshalJSON implements json.Marshaler.
func (ids IDs) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+8*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, ']'), nil
}

// Page is one page of a conversation's history, in ascending id order.
type Page struct {
	Results []Message `json:"results"`
	HasMore bool      `json:"has_more"`
}

// ReadMark is a participant's read position after a read.
type ReadMark struct {
	LastReadMessageID OptID `json:"last_read_message_id"`
	UnreadCount       int   `json:"unread_count"`
}
