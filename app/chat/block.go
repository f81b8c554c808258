package chat

import (
	"context"
	"fmt"
	"slices"

	"github.com/confab/confab/app/hub"
)

// Internal events of a user's block list, published to the blocker's
// user topic (so to their sockets on every node) when it changes: the
// user it is about is the event's Actor. Never sent to a client.
const (
	EventBlocked   = "\x00blocked"
	EventUnblocked = "\x00unblocked"
)

// A block is one-way. A user B whom A blocks cannot start a direct
// conversation with A, send in their direct conversation, or add A to a
// group (ErrBlocked); in a group both stay members and B's messages reach
// A's sockets as anyone's do (A's clients hide them, by A's block list),
// but A gets no typing from B, no mention of B's as a mention, and no
// push for B's messages. B learns nothing more than ErrBlocked tells:
// A's profile and lists look the same to B, and nobody can read who
// blocks them.

// MaxBlocks is how many users one user may block: the block list is read
// whole, by each socket of theirs and by GET /api/users/blocked/.
const MaxBlocks = 1000

// Block makes blocker block the user blocked: at once on every node, the
// blocker's sockets stop getting blocked's typing and mentions. Blocking
// twice is no error. CodeInvalid for oneself and past MaxBlocks,
// ErrNotFound for no such user.
func (s *Service) Block(ctx context.Context, blocker, blocked int64) error {
	if blocker == blocked {
		return InvalidField("non_field_errors", "You cannot block yourself.")
	}
	if blocked <= 0 {
		return ErrNotFound
	}
	if _, err := s.store.UserByID(ctx, blocked); err != nil {
		return err
	}
	return s.setBlock(ctx, blocker, blocked, true)
}

// Unblock takes blocker's block of blocked back; unblocking someone not
// blocked is no error. CodeInvalid for oneself, ErrNotFound for no such
// user.
func (s *Service) Unblock(ctx context.Context, blocker, blocked int64) error {
	if blocker == blocked {
		return InvalidField("non_field_errors", "You cannot unblock yourself.")
	}
	if blocked <= 0 {
		return ErrNotFound
	}
	if _, err := s.store.UserByID(ctx, blocked); err != nil {
		return err
	}
	return s.setBlock(ctx, blocker, blocked, false)
}

// setBlock stores the change and tells the blocker's sockets, in one
// critical section: two quick changes reach them in the order they
// were stored.
func (s *Service) setBlock(ctx context.Context, blocker, blocked int64, block bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var changed bool
	var err error
	typ := EventBlocked
	if block {
		var ids []int64
		if ids, err = s.store.BlockedIDs(ctx, blocker); err != nil {
			return err
		}
		if len(ids) >= MaxBlocks && !slices.Contains(ids, blocked) {
			return InvalidField("non_field_errors", fmt.Sprintf("You can block at most %d users.", MaxBlocks))
		}
		changed, err = s.store.Block(ctx, blocker, blocked, s.now())
	} else {
		changed, err = s.store.Unblock(ctx, blocker, blocked)
		typ = EventUnblocked
	}
	if err != nil || !changed {
		return err
	}
	s.pub.Publish(hub.UserTopic(blocker), &hub.Event{Type: typ, Actor: blocked})
	return nil
}

// BlockedUsers lists the users viewer blocks, the most recently blocked
// first, with their presence.
func (s *Service) BlockedUsers(ctx context.Context, viewer int64) ([]User, error) {
	users, err := s.store.BlockedUsers(ctx, viewer)
	if err != nil {
		return nil, err
	}
	s.fillUsersPresence(ctx, users)
	return users, nil
}

// BlockedIDs returns the ids of the users userID blocks: what a socket
// of theirs filters by.
func (s *Service) BlockedIDs(ctx context.Context, userID int64) ([]int64, error) {
	return s.store.BlockedIDs(ctx, userID)
}

// checkBlockers returns ErrBlocked when any of users blocks actor.
func (s *Service) checkBlockers(ctx context.Context, actor int64, users []int64) error {
	by, err := s.store.BlockersAmong(ctx, actor, users)
	if err != nil {
		return err
	}
	if len(by) > 0 {
		return ErrBlocked
	}
	return nil
}
