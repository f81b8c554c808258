package server

import (
	"context"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/metrics"
)

// timeStore wraps s so that every call is observed in
// confab_db_query_duration_seconds{op}, and its error passed through
// classify (nil: unchanged). It is the chosen way to time the database:
// around the store's methods rather than inside db, so db stays free of
// metrics, and a group commit (insert_messages) is timed as the one
// transaction it is. The cost per call is two clock reads and one
// histogram observation; nothing allocates. Methods added to chat.Store
// later pass through untimed until they are listed here; Ping (the
// readiness probe) is deliberately not timed.
//
// classify is the store's own reading of its errors (postgres.Unavailable:
// a database out of reach becomes chat.CodeUnavailable), applied here
// because this is the one place every service call to the store passes.
func timeStore(m *metrics.Metrics, s chat.Store, classify func(error) error) chat.Store {
	t := &timedStore{Store: s, classify: classify}
	for op, name := range opNames() {
		t.obs[op] = m.StoreObserver(name)
	}
	return t
}

var _ chat.Store = (*timedStore)(nil)

type timedStore struct {
	chat.Store
	obs      [opCount]func(time.Duration)
	classify func(error) error
}

// since observes op's duration and classifies the error it returned.
func (s *timedStore) since(op int, start time.Time, err *error) {
	s.obs[op](time.Since(start))
	if *err != nil && s.classify != nil {
		*err = s.classify(*err)
	}
}

// Operations, the index of timedStore.obs.
const (
	opCreateUser = iota
	opUserByID
	opUserByUsername
	opUpdateUser
	opSearchUsers
	opDeleteUser
	opInsertRefreshToken
	opRotateRefreshToken
	opRevokeRefreshChain
	opSetting
	opCreateConversation
	opConversation
	opConversations
	opParticipants
	opParticipant
	opUnreadCounts
	opSetTitle
	opAddParticipant
	opRemoveParticipant
	opMembership
	opParticipantIDs
	opParticipantsNamed
	opConversationIDs
	opInsertMessages
	opMessages
	opLastSeqs
	opMessagesBySeq
	opMessage
	opEditMessage
	opDeleteMessage
	opSearchMessages
	opMarkRead
	opReact
	opReactions
	opAttachments
	opChangePassword
	opEraseMessages
	opBlock
	opUnblock
	opBlockedUsers
	opBlockedIDs
	opBlockersAmong
	opCount
)

// opNames are the op label values, by operation.
func opNames() [opCount]string {
	return [opCount]string{
		opCreateUser:         "create_user",
		opUserByID:           "user_by_id",
		opUserByUsername:     "user_by_username",
		opUpdateUser:         "update_user",
		opChangePassword:     "change_password",
		opSearchUsers:        "search_users",
		opDeleteUser:         "delete_user",
		opEraseMessages:      "erase_messages",
		opInsertRefreshToken: "insert_refresh_token",
		opRotateRefreshToken: "rotate_refresh_token",
		opRevokeRefreshChain: "revoke_refresh_chain",
		opSetting:            "setting",
		opCreateConversation: "create_conversation",
		opConversation:       "conversation",
		opConversations:      "conversations",
		opParticipants:       "participants",
		opParticipant:        "participant",
		opUnreadCounts:       "unread_counts",
		opSetTitle:           "set_title",
		opAddParticipant:     "add_participant",
		opRemoveParticipant:  "remove_participant",
		opMembership:         "membership",
		opParticipantIDs:     "participant_ids",
		opParticipantsNamed:  "participants_named",
		opConversationIDs:    "conversation_ids",
		opInsertMessages:     "insert_messages",
		opMessages:           "messages",
		opLastSeqs:           "last_seqs",
		opMessagesBySeq:      "messages_by_seq",
		opMessage:            "message",
		opEditMessage:        "edit_message",
		opDeleteMessage:      "delete_message",
		opSearchMessages:     "search_messages",
		opMarkRead:           "mark_read",
		opReact:              "react",
		opReactions:          "reactions",
		opAttachments:        "attachments",
		opBlock:              "block",
		opUnblock:            "unblock",
		opBlockedUsers:       "blocked_users",
		opBlockedIDs:         "blocked_ids",
		opBlockersAmong:      "blockers_among",
	}
}

func (s *timedStore) CreateUser(ctx context.Context, username, displayName, passwordHash string, at time.Time) (u chat.User, err error) {
	defer s.since(opCreateUser, time.Now(), &err)
	return s.Store.CreateUser(ctx, username, displayName, passwordHash, at)
}

func (s *timedStore) UserByID(ctx context.Context, id int64) (a chat.Account, err error) {
	defer s.since(opUserByID, time.Now(), &err)
	return s.Store.UserByID(ctx, id)
}

func (s *timedStore) UserByUsername(ctx context.Context, username string) (a chat.Account, err error) {
	defer s.since(opUserByUsername, time.Now(), &err)
	return s.Store.UserByUsername(ctx, username)
}

func (s *timedStore) ChangePassword(ctx context.Context, id int64, passwordHash, keepChain string, at time.Time) (a chat.Account, err error) {
	defer s.since(opChangePassword, time.Now(), &err)
	return s.Store.ChangePassword(ctx, id, passwordHash, keepChain, at)
}

func (s *timedStore) UpdateUser(ctx context.Context, id int64, displayName, passwordHash *string) (u chat.User, err error) {
	defer s.since(opUpdateUser, time.Now(), &err)
	return s.Store.UpdateUser(ctx, id, displayName, passwordHash)
}

func (s *timedStore) SearchUsers(ctx context.Context, prefix string, limit int) (us []chat.User, err error) {
	defer s.since(opSearchUsers, time.Now(), &err)
	return s.Store.SearchUsers(ctx, prefix, limit)
}

func (s *timedStore) DeleteUser(ctx context.Context, id int64, at, reservedUntil time.Time) (err error) {
	defer s.since(opDeleteUser, time.Now(), &err)
	return s.Store.DeleteUser(ctx, id, at, reservedUntil)
}

func (s *timedStore) InsertRefreshToken(ctx context.Context, t chat.RefreshToken) (err error) {
	defer s.since(opInsertRefreshToken, time.Now(), &err)
	return s.Store.InsertRefreshToken(ctx, t)
}

func (s *timedStore) RotateRefreshToken(ctx context.Context, old []byte, next chat.RefreshToken, at time.Time) (err error) {
	defer s.since(opRotateRefreshToken, time.Now(), &err)
	return s.Store.RotateRefreshToken(ctx, old, next, at)
}

func (s *timedStore) RevokeRefreshChain(ctx context.Context, h []byte, at time.Time) (userID int64, err error) {
	defer s.since(opRevokeRefreshChain, time.Now(), &err)
	return s.Store.RevokeRefreshChain(ctx, h, at)
}

func (s *timedStore) Setting(ctx context.Context, key string, def []byte) (v []byte, err error) {
	defer s.since(opSetting, time.Now(), &err)
	return s.Store.Setting(ctx, key, def)
}

func (s *timedStore) CreateConversation(ctx context.Context, c chat.NewConversation) (id int64, created bool, err error) {
	defer s.since(opCreateConversation, time.Now(), &err)
	return s.Store.CreateConversation(ctx, c)
}

func (s *timedStore) Conversation(ctx context.Context, id, viewer int64) (c chat.Conversation, err error) {
	defer s.since(opConversation, time.Now(), &err)
	return s.Store.Conversation(ctx, id, viewer)
}

func (s *timedStore) Conversations(ctx context.Context, viewer int64, before chat.Position, limit int) (cs []chat.Conversation, err error) {
	defer s.since(opConversations, time.Now(), &err)
	return s.Store.Conversations(ctx, viewer, before, limit)
}

func (s *timedStore) Participants(ctx context.Context, convID int64, after chat.Position, limit int) (ps []chat.Participant, err error) {
	defer s.since(opParticipants, time.Now(), &err)
	return s.Store.Participants(ctx, convID, after, limit)
}

func (s *timedStore) UnreadCounts(ctx context.Context, convID int64) (n map[int64]int, err error) {
	defer s.since(opUnreadCounts, time.Now(), &err)
	return s.Store.UnreadCounts(ctx, convID)
}

func (s *timedStore) Participant(ctx context.Context, convID, userID int64) (p chat.Participant, err error) {
	defer s.since(opParticipant, time.Now(), &err)
	return s.Store.Participant(ctx, convID, userID)
}

func (s *timedStore) SetTitle(ctx context.Context, id int64, title string, at time.Time) (err error) {
	defer s.since(opSetTitle, time.Now(), &err)
	return s.Store.SetTitle(ctx, id, title, at)
}

func (s *timedStore) AddParticipant(ctx context.Context, convID, userID int64, role string, at time.Time) (err error) {
	defer s.since(opAddParticipant, time.Now(), &err)
	return s.Store.AddParticipant(ctx, convID, userID, role, at)
}

func (s *timedStore) RemoveParticipant(ctx context.Context, convID, userID int64, at time.Time) (err error) {
	defer s.since(opRemoveParticipant, time.Now(), &err)
	return s.Store.RemoveParticipant(ctx, convID, userID, at)
}

func (s *timedStore) Membership(ctx context.Context, convID, userID int64) (role string, isGroup bool, err error) {
	defer s.since(opMembership, time.Now(), &err)
	return s.Store.Membership(ctx, convID, userID)
}

func (s *timedStore) ParticipantsNamed(ctx context.Context, convID int64, keys []string) (ids map[string]int64, err error) {
	defer s.since(opParticipantsNamed, time.Now(), &err)
	return s.Store.ParticipantsNamed(ctx, convID, keys)
}

func (s *timedStore) ParticipantIDs(ctx context.Context, convID int64) (ids []int64, err error) {
	defer s.since(opParticipantIDs, time.Now(), &err)
	return s.Store.ParticipantIDs(ctx, convID)
}

func (s *timedStore) ConversationIDs(ctx context.Context, userID int64) (ids []int64, err error) {
	defer s.since(opConversationIDs, time.Now(), &err)
	return s.Store.ConversationIDs(ctx, userID)
}

func (s *timedStore) InsertMessages(ctx context.Context, batch []chat.NewMessage) (res []chat.Inserted, err error) {
	defer s.since(opInsertMessages, time.Now(), &err)
	return s.Store.InsertMessages(ctx, batch)
}

func (s *timedStore) Messages(ctx context.Context, convID int64, q chat.PageQuery) (page chat.Page, err error) {
	defer s.since(opMessages, time.Now(), &err)
	return s.Store.Messages(ctx, convID, q)
}

func (s *timedStore) LastSeqs(ctx context.Context, convIDs []int64) (seqs map[int64]int64, err error) {
	defer s.since(opLastSeqs, time.Now(), &err)
	return s.Store.LastSeqs(ctx, convIDs)
}

func (s *timedStore) SearchMessages(ctx context.Context, q chat.SearchQuery) (page chat.SearchPage, err error) {
	defer s.since(opSearchMessages, time.Now(), &err)
	return s.Store.SearchMessages(ctx, q)
}

func (s *timedStore) MessagesBySeq(ctx context.Context, convID, afterSeq, beforeSeq int64, limit int) (ms []chat.Message, err error) {
	defer s.since(opMessagesBySeq, time.Now(), &err)
	return s.Store.MessagesBySeq(ctx, convID, afterSeq, beforeSeq, limit)
}

func (s *timedStore) Message(ctx context.Context, id int64) (m chat.Message, err error) {
	defer s.since(opMessage, time.Now(), &err)
	return s.Store.Message(ctx, id)
}

func (s *timedStore) EditMessage(ctx context.Context, id int64, content string, mentions []int64, at time.Time) (m chat.Message, err error) {
	defer s.since(opEditMessage, time.Now(), &err)
	return s.Store.EditMessage(ctx, id, content, mentions, at)
}

func (s *timedStore) DeleteMessage(ctx context.Context, id int64, at time.Time) (m chat.Message, changed bool, err error) {
	defer s.since(opDeleteMessage, time.Now(), &err)
	return s.Store.DeleteMessage(ctx, id, at)
}

func (s *timedStore) React(ctx context.Context, msgID, userID int64, emoji string, add bool, at time.Time) (rc chat.ReactionChange, err error) {
	defer s.since(opReact, time.Now(), &err)
	return s.Store.React(ctx, msgID, userID, emoji, add, at)
}

func (s *timedStore) Reactions(ctx context.Context, viewer int64, msgIDs []int64) (r map[int64]chat.Reactions, err error) {
	defer s.since(opReactions, time.Now(), &err)
	return s.Store.Reactions(ctx, viewer, msgIDs)
}

func (s *timedStore) MarkRead(ctx context.Context, convID, userID, msgID int64) (mark chat.ReadMark, moved bool, err error) {
	defer s.since(opMarkRead, time.Now(), &err)
	return s.Store.MarkRead(ctx, convID, userID, msgID)
}

func (s *timedStore) Attachments(ctx context.Context, msgIDs []int64) (a map[int64]chat.Attachments, err error) {
	defer s.since(opAttachments, time.Now(), &err)
	return s.Store.Attachments(ctx, msgIDs)
}

// EraseMessages implements chat.Store.
func (s *timedStore) EraseMessages(ctx context.Context, userID int64, ids []int64, at time.Time) (_ []chat.Message, err error) {
	defer s.since(opEraseMessages, time.Now(), &err)
	return s.Store.EraseMessages(ctx, userID, ids, at)
}

func (s *timedStore) Block(ctx context.Context, blocker, blocked int64, at time.Time) (changed bool, err error) {
	defer s.since(opBlock, time.Now(), &err)
	return s.Store.Block(ctx, blocker, blocked, at)
}

func (s *timedStore) Unblock(ctx context.Context, blocker, blocked int64) (changed bool, err error) {
	defer s.since(opUnblock, time.Now(), &err)
	return s.Store.Unblock(ctx, blocker, blocked)
}

func (s *timedStore) BlockedUsers(ctx context.Context, blocker int64) (us []chat.User, err error) {
	defer s.since(opBlockedUsers, time.Now(), &err)
	return s.Store.BlockedUsers(ctx, blocker)
}

func (s *timedStore) BlockedIDs(ctx context.Context, blocker int64) (ids []int64, err error) {
	defer s.since(opBlockedIDs, time.Now(), &err)
	return s.Store.BlockedIDs(ctx, blocker)
}

func (s *timedStore) BlockersAmong(ctx context.Context, blocked int64, users []int64) (ids []int64, err error) {
	defer s.since(opBlockersAmong, time.Now(), &err)
	return s.Store.BlockersAmong(ctx, blocked, users)
}
