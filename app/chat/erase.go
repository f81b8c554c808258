package chat

import (
	"context"
	"errors"
	"time"

	"github.com/confab/confab/app/hub"
)

// DeletedName is the username and display name a deleted account shows
// to everyone: it has a space, so no account can ever take it.
const DeletedName = "Deleted user"

// EraseBatch is how many messages one transaction of an erasure
// tombstones: small enough that sends wait little for it between
// batches, large enough that 100,000 messages take a few seconds.
const EraseBatch = 500

// eraseMargin is the part of a deletion request's deadline left for the
// answer: the erasure stops short of it and the eraser goes on.
const eraseMargin = 3 * time.Second

// eraseTimeout bounds each store call of the background eraser.
const eraseTimeout = 10 * time.Second

// DeleteUser deletes account id: at once, its tombstone replaces the
// account (Store.DeleteUser: profile, logins, devices, memberships) and
// its sockets on every node are closed (EventUserDeleted, 4001), and the
// other participants of its conversations get conversation_updated; then
// its messages are tombstoned, in batches, each published as message_deleted
// to its conversation like any deletion. The batches run within ctx's
// deadline (all but eraseMargin of it); what is left when it comes is
// erased by the eraser in the background, from the store's durable
// marker, after a restart too. Returns ErrNotFound for an unknown or
// already deleted account.
func (s *Service) DeleteUser(ctx context.Context, id int64) error {
	now := s.now()
	s.mu.Lock()
	convs, err := s.store.ConversationIDs(ctx, id)
	if err == nil {
		err = s.store.DeleteUser(ctx, id, now, now.Add(s.opt.UsernameReservedFor))
	}
	// Memberships went: the writer's cache must not keep them.
	s.forgetMembers(0)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.pub.Publish(hub.UserTopic(id), &hub.Event{Type: EventUserDeleted})
	// The others see the account leave each conversation, as if it had
	// left: a conversation at a time, so that sends go on in between.
	for _, convID := range convs {
		if ctx.Err() != nil {
			break
		}
		s.mu.Lock()
		s.publishConversation(ctx, convID, nil)
		s.mu.Unlock()
	}
	stop := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		stop = d.Add(-eraseMargin)
	}
	done, err := s.eraseMessages(ctx, id, stop, false)
	if err != nil {
		// The account is deleted; the eraser finishes the rest.
		s.log.Warn("erase messages: left to the eraser", "err", err, "user_id", id)
	}
	if !done {
		s.kickEraser()
	}
	return nil
}

// eraseMessages tombstones user id's messages, a batch at a time, until
// none is left (done) or stop has passed; the background eraser
// (atLeastOne) always gets one batch done, so that it makes progress
// however slow the reads are. Each store call has its own eraseTimeout
// (within ctx).
func (s *Service) eraseMessages(ctx context.Context, id int64, stop time.Time, atLeastOne bool) (done bool, err error) {
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, eraseTimeout)
		defer cancel()
		return f(ctx)
	}
	// Two rounds at most: the first takes what the deletion left; a
	// second only if something was sent in between (nothing can be: the
	// memberships went first).
	for range 2 {
		var ids []int64
		if err := call(func(ctx context.Context) (err error) {
			ids, err = s.store.SentMessageIDs(ctx, id, true)
			return err
		}); err != nil {
			return false, err
		}
		for len(ids) > 0 {
			if time.Now().After(stop) && !atLeastOne {
				return false, nil
			}
			atLeastOne = false
			n := min(len(ids), EraseBatch)
			if err := call(func(ctx context.Context) error { return s.eraseBatch(ctx, id, ids[:n]) }); err != nil {
				return false, err
			}
			ids = ids[n:]
		}
		if err := call(func(ctx context.Context) (err error) {
			done, err = s.store.FinishErasure(ctx, id, s.now())
			return err
		}); err != nil || done {
			return done, err
		}
	}
	return false, errors.New("messages left after erasing them")
}

// eraseBatch tombstones one batch and publishes each message's
// deletion, in one critical section as every change.
func (s *Service) eraseBatch(ctx context.Context, userID int64, ids []int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, err := s.store.EraseMessages(ctx, userID, ids, s.now())
	if err != nil {
		return err
	}
	for i := range msgs {
		s.pub.Publish(hub.ConversationTopic(msgs[i].ConversationID), ChangeEvent(&msgs[i]))
	}
	return nil
}

func (s *Service) kickEraser() {
	select {
	case s.eraseKick <- struct{}{}:
	default: // already woken
	}
}

// usernameSweep is how often the eraser frees the usernames whose
// reservation ended (CreateUser frees one it needs at once anyway).
const usernameSweep = time.Hour

// eraser finishes the erasures that a deletion left: at start (after a
// restart), when kicked, and every EraseEvery; it also frees expired
// username reservations every usernameSweep. Close stops it.
func (s *Service) eraser() {
	defer close(s.eraseDone)
	tick := time.NewTicker(s.opt.EraseEvery)
	defer tick.Stop()
	var swept time.Time
	for {
		s.eraseAll()
		if now := s.now(); now.Sub(swept) >= usernameSweep {
			swept = now
			s.releaseUsernames(now)
		}
		select {
		case <-s.quit:
			return
		case <-s.eraseKick:
		case <-tick.C:
		}
	}
}

// eraseAll finishes every pending erasure, stopping early on Close.
func (s *Service) eraseAll() {
	// Close cancels what is in flight.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-stopped:
		}
	}()
	pctx, pcancel := context.WithTimeout(ctx, eraseTimeout)
	ids, err := s.store.PendingErasures(pctx)
	pcancel()
	if err != nil {
		s.log.Warn("pending erasures", "err", err)
		return
	}
	for _, id := range ids {
		for {
			if ctx.Err() != nil {
				return
			}
			// A while at a time, then the next look at s.quit.
			done, err := s.eraseMessages(ctx, id, time.Now().Add(eraseTimeout), true)
			if err != nil {
				s.log.Warn("erase messages", "err", err, "user_id", id)
				break // the next round tries again
			}
			if done {
				s.log.Info("account erased", "user_id", id)
				break
			}
		}
	}
}

func (s *Service) releaseUsernames(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), eraseTimeout)
	defer cancel()
	if _, err := s.store.ReleaseUsernames(ctx, now); err != nil {
		s.log.Warn("release usernames", "err", err)
	}
}

// Export: what GET /api/users/me/export/ hands a user about themselves.

// ExportConversation is a conversation the user is in, with every
// participant.
type ExportConversation struct {
	ID           int64               `json:"id"`
	Title        string              `json:"title"`
	IsGroup      bool                `json:"is_group"`
	CreatedAt    Time                `json:"created_at"`
	Participants []ExportParticipant `json:"participants"`
}

// ExportParticipant is one participant of an ExportConversation.
type ExportParticipant struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	JoinedAt    Time   `json:"joined_at"`
}

// ExportMessage is a message the user sent, as stored.
type ExportMessage struct {
	ID             int64              `json:"id"`
	ConversationID int64              `json:"conversation_id"`
	Content        string             `json:"content"`
	CreatedAt      Time               `json:"created_at"`
	EditedAt       *Time              `json:"edited_at"`
	IsDeleted      bool               `json:"is_deleted"`
	ReplyToID      OptID              `json:"reply_to_id"`
	Mentions       IDs                `json:"mentions"`
	Attachments    []ExportAttachment `json:"attachments"`
}

// ExportAttachment is a file an ExportMessage carries.
type ExportAttachment struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	MIME string `json:"mime"`
	Size int64  `json:"size"`
}

// exportParticipantPage is how many participants one read of an export
// takes.
const exportParticipantPage = 500

// ExportConversations returns every conversation userID is in, with all
// its participants.
func (s *Service) ExportConversations(ctx context.Context, userID int64) ([]ExportConversation, error) {
	ids, err := s.store.ConversationIDs(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]ExportConversation, 0, len(ids))
	for _, id := range ids {
		c, err := s.store.Conversation(ctx, id, userID)
		if err != nil {
			if ErrorCode(err) == CodeNotFound { // left meanwhile
				continue
			}
			return nil, err
		}
		ec := ExportConversation{ID: c.ID, Title: c.Title, IsGroup: c.IsGroup, CreatedAt: c.CreatedAt, Participants: []ExportParticipant{}}
		var after Position
		for {
			ps, err := s.store.Participants(ctx, id, after, exportParticipantPage)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				ec.Participants = append(ec.Participants, ExportParticipant{ID: p.User.ID, Username: p.User.Username,
					DisplayName: p.User.DisplayName, Role: p.Role, JoinedAt: p.JoinedAt})
			}
			if len(ps) < exportParticipantPage {
				break
			}
			after = ps[len(ps)-1].Position()
		}
		out = append(out, ec)
	}
	return out, nil
}

// SentMessageIDs lists the ids of every message userID sent, deleted
// ones included, oldest first.
func (s *Service) SentMessageIDs(ctx context.Context, userID int64) ([]int64, error) {
	return s.store.SentMessageIDs(ctx, userID, false)
}

// ExportMessages returns the messages of ids (from SentMessageIDs) with
// their attachments, by id.
func (s *Service) ExportMessages(ctx context.Context, ids []int64) ([]ExportMessage, error) {
	msgs, err := s.store.MessagesByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	atts, err := s.store.Attachments(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ExportMessage, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		e := ExportMessage{ID: m.ID, ConversationID: m.ConversationID, Content: m.Content, CreatedAt: m.CreatedAt,
			EditedAt: m.EditedAt, IsDeleted: m.IsDeleted, Mentions: m.Mentions, Attachments: []ExportAttachment{}}
		if m.ReplyTo != nil {
			e.ReplyToID = OptID(m.ReplyTo.ID)
		}
		for _, a := range atts[m.ID] {
			e.Attachments = append(e.Attachments, ExportAttachment{ID: a.ID, Name: a.Name, MIME: a.MIME, Size: a.Size})
		}
		out[i] = e
	}
	return out, nil
}
