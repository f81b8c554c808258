package chat

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/confab/confab/app/hub"
)

// Users

// User returns a user with its presence.
func (s *Service) User(ctx context.Context, id int64) (User, error) {
	a, err := s.store.UserByID(ctx, id)
	if err != nil {
		return User{}, err
	}
	u := a.User
	u.IsOnline = len(s.pub.OnlineAmong(ctx, []int64{u.ID})) > 0
	return u, nil
}

// SessionsRevoked closes, on every node, the sockets of the sessions of
// userID that a password change ended: all but keptSession's.
func (s *Service) SessionsRevoked(userID int64, keptSession string) {
	s.pub.Publish(hub.UserTopic(userID), &hub.Event{Type: EventSessionsRevoked, Data: []byte(keptSession)})
}

// SearchUsers finds users by username or display-name prefix.
func (s *Service) SearchUsers(ctx context.Context, prefix string, limit int) ([]User, error) {
	if limit == 0 {
		limit = 20
	}
	if limit < 1 || limit > 100 {
		return nil, InvalidField("limit", "Must be between 1 and 100.")
	}
	users, err := s.store.SearchUsers(ctx, strings.TrimSpace(prefix), limit)
	if err != nil {
		return nil, err
	}
	s.fillUsersPresence(ctx, users)
	return users, nil
}

// Conversations

// CreateConversation creates a direct or group conversation with creator
// as its admin. A direct conversation between two people that already
// exists is returned with created=false. ErrBlocked when any of the
// others blocks creator.
func (s *Service) CreateConversation(ctx context.Context, creator int64, participantIDs []int64, title string, isGroup bool) (Conversation, bool, error) {
	title = strings.TrimSpace(title)
	v := Invalid{}
	if utf8.RuneCountInString(title) > MaxTitle {
		v.Add("title", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxTitle))
	}
	ids := []int64{creator}
	for _, id := range participantIDs {
		if id != creator && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) < 2:
		v.Add("participant_ids", "Add at least one other user.")
	case !isGroup && len(ids) != 2:
		v.Add("participant_ids", "A direct conversation has exactly one other user; set is_group for more.")
	case len(ids) > 1000:
		v.Add("participant_ids", "At most 1000 participants.")
	}
	if err := v.Err(); err != nil {
		return Conversation{}, false, err
	}
	for _, id := range ids[1:] {
		if _, err := s.store.UserByID(ctx, id); err != nil {
			if ErrorCode(err) == CodeNotFound {
				return Conversation{}, false, InvalidField("participant_ids", fmt.Sprintf("User %d does not exist.", id))
			}
			return Conversation{}, false, err
		}
	}
	// Nobody who blocks the creator is put in a conversation by them.
	if err := s.checkBlockers(ctx, creator, ids[1:]); err != nil {
		return Conversation{}, false, err
	}
	nc := NewConversation{Title: title, IsGroup: isGroup, UserIDs: ids, At: s.now()}
	if !isGroup {
		lo, hi := min(ids[0], ids[1]), max(ids[0], ids[1])
		nc.DirectKey = fmt.Sprintf("%d:%d", lo, hi)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, created, err := s.store.CreateConversation(ctx, nc)
	if err != nil {
		return Conversation{}, false, err
	}
	s.forgetMembers(id) // an existing direct one may have taken someone back
	if created {
		s.publishConversation(ctx, id, ids)
	}
	c, err := s.Conversation(ctx, creator, id)
	return c, created, err
}

// Conversation returns a conversation as viewer sees it.
func (s *Service) Conversation(ctx context.Context, viewer, id int64) (Conversation, error) {
	c, err := s.store.Conversation(ctx, id, viewer)
	if err != nil {
		return Conversation{}, err
	}
	s.fillPresence(ctx, c.Participants)
	if err := s.lastMessageReactions(ctx, viewer, []Conversation{c}); err != nil {
		return Conversation{}, err
	}
	return c, nil
}

// lastMessageReactions sets the reactions of the last messages of cs, as
// viewer sees them: one query for all of them.
func (s *Service) lastMessageReactions(ctx context.Context, viewer int64, cs []Conversation) error {
	var msgs []Message
	for i := range cs {
		if cs[i].LastMessage != nil {
			msgs = append(msgs, *cs[i].LastMessage)
		}
	}
	if err := s.withDetails(ctx, viewer, msgs); err != nil {
		return err
	}
	j := 0
	for i := range cs {
		if m := cs[i].LastMessage; m != nil {
			m.Reactions, m.Attachments = msgs[j].Reactions, msgs[j].Attachments
			j++
		}
	}
	return nil
}

// ConversationList is one page of a viewer's conversations, most recent
// activity first. Next is the cursor of the following page (the before of
// the next call), nil on the last one.
type ConversationList struct {
	Results []Conversation `json:"results"`
	Next    *string        `json:"next"`
}

// ParticipantList is one page of a conversation's participants in the
// order they joined. Next is the cursor of the following page (the after
// of the next call), nil on the last one.
type ParticipantList struct {
	Results []Participant `json:"results"`
	Next    *string       `json:"next"`
}

// Page sizes of Conversations and Participants.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
)

// pageSize returns the page size limit asks for (DefaultPageSize for 0),
// recording in v when it is out of range.
func pageSize(v Invalid, limit int) int {
	if limit == 0 {
		return DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		v.Add("limit", fmt.Sprintf("Must be an integer between 1 and %d.", MaxPageSize))
	}
	return limit
}

// Conversations lists a page of viewer's conversations, most recent
// activity first: limit of them (DefaultPageSize when 0, at most
// MaxPageSize), after the cursor before ("" for the first page).
func (s *Service) Conversations(ctx context.Context, viewer int64, limit int, before string) (ConversationList, error) {
	v := Invalid{}
	limit = pageSize(v, limit)
	pos, err := DecodeCursor(before)
	if err != nil {
		v.Add("before", "Not a valid cursor: use the next of a previous page.")
	}
	if err := v.Err(); err != nil {
		return ConversationList{}, err
	}
	cs, err := s.store.Conversations(ctx, viewer, pos, limit+1) // one more: is there a next page?
	if err != nil {
		return ConversationList{}, err
	}
	list := ConversationList{Results: cs}
	if len(cs) > limit {
		list.Results = cs[:limit]
		next := EncodeCursor(list.Results[limit-1].Position())
		list.Next = &next
	}
	parts := make([][]Participant, len(list.Results))
	for i := range list.Results {
		parts[i] = list.Results[i].Participants
	}
	s.fillPresence(ctx, parts...)
	if err := s.lastMessageReactions(ctx, viewer, list.Results); err != nil {
		return ConversationList{}, err
	}
	return list, nil
}

// Participants lists a page of the participants of convID, which viewer
// must be in (ErrNotFound otherwise), in the order they joined: limit of
// them (DefaultPageSize when 0, at most MaxPageSize), after the cursor
// after ("" for the first page).
func (s *Service) Participants(ctx context.Context, viewer, convID int64, limit int, after string) (ParticipantList, error) {
	v := Invalid{}
	limit = pageSize(v, limit)
	pos, err := DecodeCursor(after)
	if err != nil {
		v.Add("after", "Not a valid cursor: use the next of a previous page.")
	}
	if err := v.Err(); err != nil {
		return ParticipantList{}, err
	}
	if err := s.CheckMember(ctx, convID, viewer); err != nil {
		return ParticipantList{}, err
	}
	ps, err := s.store.Participants(ctx, convID, pos, limit+1)
	if err != nil {
		return ParticipantList{}, err
	}
	list := ParticipantList{Results: ps}
	if len(ps) > limit {
		list.Results = ps[:limit]
		next := EncodeCursor(list.Results[limit-1].Position())
		list.Next = &next
	}
	s.fillPresence(ctx, list.Results)
	return list, nil
}

// fillPresence sets IsOnline on every participant of every list, asking
// the hub once for all of them. Lists that name the same users as the
// first (one conversation as each of its members sees it) add nothing to
// the question.
func (s *Service) fillPresence(ctx context.Context, lists ...[]Participant) {
	var ids []int64
	for j, ps := range lists {
		if j > 0 && sameUsers(ps, lists[0]) {
			continue
		}
		for i := range ps {
			ids = append(ids, ps[i].User.ID)
		}
	}
	on := s.online(ctx, ids)
	for _, ps := range lists {
		for i := range ps {
			ps[i].User.IsOnline = on[ps[i].User.ID]
		}
	}
}

// fillUsersPresence sets each user's IsOnline, asking the hub once.
func (s *Service) fillUsersPresence(ctx context.Context, users []User) {
	ids := make([]int64, len(users))
	for i := range users {
		ids[i] = users[i].ID
	}
	on := s.online(ctx, ids)
	for i := range users {
		users[i].IsOnline = on[users[i].ID]
	}
}

// sameUsers reports whether a and b list the same users in the same order.
func sameUsers(a, b []Participant) bool {
	return slices.EqualFunc(a, b, func(x, y Participant) bool { return x.User.ID == y.User.ID })
}

// online asks the hub once which of ids are online. ids is sorted and
// deduplicated in place.
func (s *Service) online(ctx context.Context, ids []int64) map[int64]bool {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var on map[int64]bool
	for _, id := range s.pub.OnlineAmong(ctx, ids) {
		if on == nil {
			on = map[int64]bool{}
		}
		on[id] = true
	}
	return on
}

// requireAdmin returns ErrNotFound for a non-participant, forbidden for a
// member, and invalid for a direct conversation.
func (s *Service) requireAdmin(ctx context.Context, convID, userID int64) error {
	role, group, err := s.store.Membership(ctx, convID, userID)
	if err != nil {
		return err
	}
	if !group {
		return Errorf(CodeForbidden, "A direct conversation has no admins.")
	}
	if role != RoleAdmin {
		return Errorf(CodeForbidden, "Only a group admin can do that.")
	}
	return nil
}

// RenameConversation sets a group's title (admins only).
func (s *Service) RenameConversation(ctx context.Context, admin, convID int64, title string) (Conversation, error) {
	title = strings.TrimSpace(title)
	if utf8.RuneCountInString(title) > MaxTitle {
		return Conversation{}, InvalidField("title", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxTitle))
	}
	if err := s.requireAdmin(ctx, convID, admin); err != nil {
		return Conversation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.SetTitle(ctx, convID, title, s.now()); err != nil {
		return Conversation{}, err
	}
	s.publishConversation(ctx, convID, nil)
	return s.Conversation(ctx, admin, convID)
}

// AddParticipant adds userID to a group (admins only); ErrBlocked when
// userID blocks the admin.
func (s *Service) AddParticipant(ctx context.Context, admin, convID, userID int64) (Participant, error) {
	if err := s.requireAdmin(ctx, convID, admin); err != nil {
		return Participant{}, err
	}
	if _, err := s.store.UserByID(ctx, userID); err != nil {
		if ErrorCode(err) == CodeNotFound {
			return Participant{}, InvalidField("user_id", fmt.Sprintf("User %d does not exist.", userID))
		}
		return Participant{}, err
	}
	if err := s.checkBlockers(ctx, admin, []int64{userID}); err != nil {
		return Participant{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.AddParticipant(ctx, convID, userID, RoleMember, s.now())
	s.forgetMembers(convID)
	if err != nil {
		return Participant{}, err
	}
	s.publishConversation(ctx, convID, nil)
	p, err := s.store.Participant(ctx, convID, userID)
	if err != nil {
		return Participant{}, err // ErrNotFound: removed again meanwhile
	}
	s.fillPresence(ctx, []Participant{p})
	return p, nil
}

// RemoveParticipant removes userID from a conversation: anyone may leave;
// removing someone else takes a group admin.
func (s *Service) RemoveParticipant(ctx context.Context, actor, convID, userID int64) error {
	if actor != userID {
		if err := s.requireAdmin(ctx, convID, actor); err != nil {
			return err
		}
	} else if err := s.CheckMember(ctx, convID, actor); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.store.ParticipantIDs(ctx, convID)
	if err != nil {
		return err
	}
	err = s.store.RemoveParticipant(ctx, convID, userID, s.now())
	s.forgetMembers(convID)
	if err != nil {
		return err
	}
	// Everyone who was in, the removed user included, learns of it;
	// then the removed user's sockets leave the conversation.
	s.publishConversation(ctx, convID, ids)
	s.pub.Publish(hub.UserTopic(userID), &hub.Event{Type: EventParticipantRemoved, ConversationID: convID})
	return nil
}

// publishConversation sends conversation_updated to every connection of
// every participant, each with their own view: the same conversation with
// their own unread count. to overrides the recipients (for someone who has
// just left: they get the conversation without themselves in it, with
// nothing unread). It reads the conversation once and every unread count
// in one query, whatever the size of the group. Callers hold s.mu.
func (s *Service) publishConversation(ctx context.Context, convID int64, to []int64) {
	unread, err := s.store.UnreadCounts(ctx, convID)
	if err != nil {
		s.log.Error("conversation_updated: unread counts", "err", err, "conversation_id", convID)
		return
	}
	if to == nil {
		to = make([]int64, 0, len(unread))
		for uid := range unread {
			to = append(to, uid)
		}
		slices.Sort(to)
	}
	// The view of one participant: the others' differ only by UnreadCount.
	var view Conversation
	found := false
	for uid := range unread {
		if view, err = s.store.Conversation(ctx, convID, uid); err == nil {
			found = true
			break
		}
	}
	if !found {
		return // nobody left in it
	}
	s.fillPresence(ctx, view.Participants)
	for _, uid := range to {
		c := view
		c.UnreadCount = unread[uid] // 0 for someone who has left
		s.pub.Publish(hub.UserTopic(uid), encode(EventConversationUpdated, convID, conversationEvent{EventConversationUpdated, &c}))
	}
}

// Moderate runs commit, a moderation write (app/moderate), inside the
// critical section that orders every change's commit and publication,
// and publishes the change of each message it returns (a tombstone staff
// made) to its conversation, as DeleteMessage does.
func (s *Service) Moderate(ctx context.Context, commit func(ctx context.Context) ([]Message, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, err := commit(ctx)
	if err != nil {
		return err
	}
	for i := range msgs {
		s.pub.Publish(hub.ConversationTopic(msgs[i].ConversationID), ChangeEvent(&msgs[i]))
	}
	return nil
}

// AccountDisabled closes, on every node, every socket of userID, whose
// account staff deactivated.
func (s *Service) AccountDisabled(userID int64) {
	s.pub.Publish(hub.UserTopic(userID), &hub.Event{Type: EventAccountDisabled})
}
