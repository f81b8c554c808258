package chat

import (
	"context"
	"time"
)

// Store persists Confab's data. db.Store implements it on SQLite,
// postgres.Store on PostgreSQL (shared by several nodes).
//
// Methods that look up one thing return ErrNotFound (code not_found) when it
// does not exist; methods scoped to a viewer also return ErrNotFound when the
// viewer is not a participant, so that nothing leaks existence.
type Store interface {
	// CreateUser stores a new account. Returns CodeConflict when the
	// username is taken (compared case-insensitively).
	CreateUser(ctx context.Context, username, displayName, passwordHash string, at time.Time) (User, error)
	// UserByID returns ErrNotFound for an unknown id.
	UserByID(ctx context.Context, id int64) (Account, error)
	// UserByUsername matches case-insensitively; ErrNotFound when none.
	UserByUsername(ctx context.Context, username string) (Account, error)
	// UpdateUser changes the fields that are non-nil.
	UpdateUser(ctx context.Context, id int64, displayName, passwordHash *string) (User, error)
	// ChangePassword sets user id's password hash, moves its TokenEpoch
	// on by one, keeps keepChain as its KeptSession, and revokes every
	// refresh token of the user outside keepChain (all of them when it
	// is empty), in one transaction. Returns the account as changed, or
	// ErrNotFound for an unknown id.
	ChangePassword(ctx context.Context, id int64, passwordHash, keepChain string, at time.Time) (Account, error)
	// SearchUsers returns users whose username or display name starts with
	// prefix (case-insensitively), by username.
	SearchUsers(ctx context.Context, prefix string, limit int) ([]User, error)
	// DeleteUser turns live account id into its tombstone at at, in one
	// transaction: the profile erased (DeletedName), the password and
	// every token unusable, every refresh chain, device and membership
	// removed, its unsent uploads released; the username stays reserved
	// (CreateUser refuses it) until reservedUntil. The row stays, so that
	// what points at it stays coherent; UserByID and UserByUsername no
	// longer find it. Its messages are left to EraseMessages. Returns
	// ErrNotFound for an unknown or already deleted account.
	DeleteUser(ctx context.Context, id int64, at, reservedUntil time.Time) error
	// EraseMessages tombstones, in one transaction, those of ids that
	// userID sent and that are not deleted yet, as DeleteMessage does
	// (content, mentions, reactions and attachments erased; a version
	// each), and returns them as now, in version order, each with its
	// PrevVersion.
	EraseMessages(ctx context.Context, userID int64, ids []int64, at time.Time) ([]Message, error)
	// FinishErasure marks deleted account userID's erasure done once
	// none of its messages has content left, and removes the pushes
	// about them; done is false while some are left.
	FinishErasure(ctx context.Context, userID int64, at time.Time) (done bool, err error)
	// PendingErasures lists the deleted accounts whose erasure is not
	// done.
	PendingErasures(ctx context.Context) ([]int64, error)
	// ReleaseUsernames frees the usernames whose reservation ended by
	// at, and returns how many.
	ReleaseUsernames(ctx context.Context, at time.Time) (int64, error)
	// SentMessageIDs lists the ids of the messages userID sent, oldest
	// first; only those not deleted when liveOnly.
	SentMessageIDs(ctx context.Context, userID int64, liveOnly bool) ([]int64, error)
	// MessagesByIDs returns the messages of ids that exist, by id.
	MessagesByIDs(ctx context.Context, ids []int64) ([]Message, error)

	// InsertRefreshToken stores a newly issued refresh token.
	InsertRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken spends the token with hash old and stores next in
	// the same login chain, atomically. Returns ErrTokenNotValid for an
	// unknown, expired or revoked token, and ErrTokenReused (after revoking
	// the whole chain) for one that was already spent.
	RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, at time.Time) error
	// RevokeRefreshChain revokes the chain of the token with hash h.
	// Returns ErrTokenNotValid when there is no live token with that hash.
	RevokeRefreshChain(ctx context.Context, h []byte, at time.Time) (userID int64, err error)

	// Setting returns a stored setting, or sets it to def when absent and
	// returns def. It is how generated secrets survive restarts.
	Setting(ctx context.Context, key string, def []byte) ([]byte, error)

	// CreateConversation stores a conversation and its participants; the
	// first participant is its creator. For a direct conversation that
	// already exists (same DirectKey) it returns the existing id and
	// created=false.
	CreateConversation(ctx context.Context, c NewConversation) (id int64, created bool, err error)
	// Conversation returns conversation id as viewer sees it, with its
	// first MaxInlineParticipants participants.
	Conversation(ctx context.Context, id, viewer int64) (Conversation, error)
	// Conversations returns at most limit of viewer's conversations, most
	// recent activity first (updated_at, then id, descending), starting
	// after before (from the most recent when zero); each with its first
	// MaxInlineParticipants participants. A fixed number of queries
	// however many conversations viewer is in.
	Conversations(ctx context.Context, viewer int64, before Position, limit int) ([]Conversation, error)
	// Participants returns at most limit participants of convID in the
	// order they joined (joined_at, then user id), starting after after
	// (from the first when zero).
	Participants(ctx context.Context, convID int64, after Position, limit int) ([]Participant, error)
	// Participant returns userID's entry in convID; ErrNotFound when not
	// a participant.
	Participant(ctx context.Context, convID, userID int64) (Participant, error)
	// SetTitle renames a conversation.
	SetTitle(ctx context.Context, id int64, title string, at time.Time) error
	// AddParticipant returns CodeConflict when the user is already in.
	AddParticipant(ctx context.Context, convID, userID int64, role string, at time.Time) error
	// RemoveParticipant returns ErrNotFound when the user is not in.
	RemoveParticipant(ctx context.Context, convID, userID int64, at time.Time) error
	// Membership returns the role of userID in convID, and whether the
	// conversation is a group; ErrNotFound when not a participant.
	Membership(ctx context.Context, convID, userID int64) (role string, isGroup bool, err error)
	// UnreadCounts returns the unread count of every participant of
	// convID, by user id, in one query.
	UnreadCounts(ctx context.Context, convID int64) (map[int64]int, error)
	// ParticipantsNamed returns, of the users whose folded username
	// (username_key) is in keys, those in convID: key to user id, in one
	// query.
	ParticipantsNamed(ctx context.Context, convID int64, keys []string) (map[string]int64, error)
	// ParticipantIDs lists the user ids of a conversation.
	ParticipantIDs(ctx context.Context, convID int64) ([]int64, error)
	// ConversationIDs lists the conversations userID is in.
	ConversationIDs(ctx context.Context, userID int64) ([]int64, error)

	// Block records that blocker blocks blocked, at at; changed is false
	// when it already did. Returns ErrNotFound when blocked is not a user.
	Block(ctx context.Context, blocker, blocked int64, at time.Time) (changed bool, err error)
	// Unblock removes blocker's block of blocked; changed is false when
	// there was none.
	Unblock(ctx context.Context, blocker, blocked int64) (changed bool, err error)
	// BlockedUsers returns the users blocker blocks, the most recently
	// blocked first (then by id).
	BlockedUsers(ctx context.Context, blocker int64) ([]User, error)
	// BlockedIDs returns the ids of the users blocker blocks, ascending.
	BlockedIDs(ctx context.Context, blocker int64) ([]int64, error)
	// BlockersAmong returns those of users who block blocked, ascending,
	// in one query.
	BlockersAmong(ctx context.Context, blocked int64, users []int64) ([]int64, error)

	// InsertMessages stores a batch in one transaction (group commit). Each
	// result carries its own error (ErrNotFound when the sender is not a
	// participant, ErrBlocked when the conversation is direct and the
	// other participant blocks the sender, ErrReplyTo when ReplyToID is
	// not a message of the same conversation); a failed commit fails them
	// all. A retried send (a client_id already stored in the
	// conversation) gets its original, blocked or not. A created message
	// carries the Seq it was given.
	InsertMessages(ctx context.Context, batch []NewMessage) ([]Inserted, error)
	// Messages returns one page of a conversation's history.
	Messages(ctx context.Context, convID int64, q PageQuery) (Page, error)
	// LastSeqs returns the highest Seq assigned in each conversation (0
	// when it has none yet), in one query; unknown ids are left out of
	// the map.
	LastSeqs(ctx context.Context, convIDs []int64) (map[int64]int64, error)
	// MessagesBySeq returns the messages with afterSeq < Seq < beforeSeq
	// (no upper bound when beforeSeq <= 0), ascending by Seq, at most limit
	// of them (none when limit <= 0). Tombstones are included, as in
	// Messages.
	MessagesBySeq(ctx context.Context, convID, afterSeq, beforeSeq int64, limit int) ([]Message, error)
	// LastVersions returns the version of each conversation (see
	// Conversation.Version), in one query; unknown ids are left out.
	LastVersions(ctx context.Context, convIDs []int64) (map[int64]int64, error)
	// Changes returns the messages of convID created or changed after
	// version after, each once in its current state (tombstones
	// included), ascending by Change.Key, only those with a key below
	// before (no bound when before <= 0), at most limit.
	Changes(ctx context.Context, convID, after, before int64, limit int) ([]Change, error)
	// CurrentVersion returns the last version handed out: every change
	// up to it is committed, and visible to any read that starts after.
	CurrentVersion(ctx context.Context) (int64, error)
	// Feed reads user's feed after key (FeedRead): the clock first, then
	// at most limit+1 entries of each kind up to it.
	Feed(ctx context.Context, user int64, after SyncKey, limit int) (FeedRead, error)
	// Message returns one message, ErrNotFound when unknown.
	Message(ctx context.Context, id int64) (Message, error)
	// EditMessage replaces the content and its mentions and sets
	// edited_at.
	EditMessage(ctx context.Context, id int64, content string, mentions []int64, at time.Time) (Message, error)
	// DeleteMessage tombstones a message; changed is false when it was
	// already deleted.
	DeleteMessage(ctx context.Context, id int64, at time.Time) (m Message, changed bool, err error)
	// SearchMessages returns the messages q asks for (see SearchQuery):
	// not deleted, in a conversation q.Viewer is in, with every term (the
	// last as a prefix) compared without case or diacritics; of the
	// SearchCandidates newest such messages below q.Below (when not 0),
	// best match first, then newest (higher id) first, with the size and
	// ids of that window. Each hit's Snippet is a short part of the
	// content, as stored (not escaped), with SnippetStart and SnippetEnd
	// around each matched word.
	SearchMessages(ctx context.Context, q SearchQuery) (SearchPage, error)
	// React adds (add) or removes userID's reaction emoji to message
	// msgID, in one transaction: ErrNotFound for an unknown message,
	// CodeInvalid on "message" for a deleted one, and on "emoji" for a
	// new emoji past MaxReactions distinct ones. A change takes a
	// version and gives it to the message and its conversation, as an
	// edit does; a reaction already there (add) or not there (remove)
	// changes nothing, and Changed is false. It does not check that
	// userID is a participant (the Service does).
	React(ctx context.Context, msgID, userID int64, emoji string, add bool, at time.Time) (ReactionChange, error)
	// Reactions returns the reactions of each of msgIDs that has any, in
	// one query: by emoji, in order of first use, with Me set for viewer
	// (left nil when viewer is 0).
	Reactions(ctx context.Context, viewer int64, msgIDs []int64) (map[int64]Reactions, error)
	// Attachments returns the attachments of each of msgIDs that has
	// any, in one query, in their order, without URLs.
	Attachments(ctx context.Context, msgIDs []int64) (map[int64]Attachments, error)
	// MarkRead moves userID's read mark in convID forward to msgID; moved is
	// false when the mark was already at or past it.
	MarkRead(ctx context.Context, convID, userID, msgID int64) (mark ReadMark, moved bool, err error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// Token errors returned by the Store's refresh-token methods.
var (
	ErrTokenNotValid = &Error{Code: CodeTokenNotValid, Detail: "Token is invalid or expired."}
	ErrTokenReused   = &Error{Code: CodeTokenNotValid, Detail: "Token was already used; the session has been revoked."}
)

// RefreshToken is the stored form of a refresh token: only its hash.
type RefreshToken struct {
	Hash      []byte
	UserID    int64
	ChainID   string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// NewConversation describes a conversation to create.
type NewConversation struct {
	Title   string
	IsGroup bool
	// UserIDs are the participants; UserIDs[0] is the creator (admin).
	UserIDs []int64
	// DirectKey is set for direct conversations: one per pair of users.
	DirectKey string
	At        time.Time
}

// NewMessage is a message to insert.
type NewMessage struct {
	ConversationID int64
	Sender         UserLite
	Content        string
	ClientID       string
	// ReplyToID, when not zero, is the message this one answers. The
	// store checks that it is a message of the same conversation, in the
	// batch's transaction, and refuses the message with ErrReplyTo
	// otherwise.
	ReplyToID int64
	// Mentions are the user ids to store as mentioned (Service resolves
	// them against the participants).
	Mentions []int64
	// AttachmentIDs are uploads to attach, in order: each must be an
	// upload of the sender's not attached yet, or the store refuses the
	// message with ErrAttachments; once stored, the message carries them
	// (Message.Attachments, without URLs).
	AttachmentIDs []int64
	At            time.Time
}

// Inserted is the outcome of one NewMessage.
type Inserted struct {
	Message Message
	// Created is false when (sender, client_id) already existed: Message is
	// then the original.
	Created bool
	Err     error
}

// Change is a message created or changed after some version: Created
// says it was created after it (new to whoever saw that version).
type Change struct {
	Message Message
	Created bool
}

// Key is where the change stands in the conversation's order: the
// version it was created with when Created, else its last change's.
func (c *Change) Key() int64 {
	if c.Created {
		return c.Message.CreatedVersion
	}
	return c.Message.Version
}

// PageQuery selects a page of history: at most one of Before and After.
// Without either it is the newest page, unless FromStart asks for the
// oldest (recovery from "nothing seen yet").
type PageQuery struct {
	Before, After int64
	FromStart     bool
	Limit         int
}
