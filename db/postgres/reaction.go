package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// errReactToDeleted refuses a reaction to a tombstone.
var errReactToDeleted = chat.InvalidField("message", "A deleted message takes no reactions.")

// errTooManyReactions refuses a new emoji past chat.MaxReactions.
var errTooManyReactions = chat.InvalidField("emoji", fmt.Sprintf("At most %d different reactions per message.", chat.MaxReactions))

// errUnchanged rolls back a reaction that changes nothing, and with it
// the version it took.
var errUnchanged = errors.New("reaction unchanged")

// React implements chat.Store. The version is taken first, as by every
// writer (takeVersion): the clock's row lock then also keeps two
// reactions to a message from both passing the check of its distinct
// emoji. A reaction that changes nothing rolls back, the version too.
func (s *Store) React(ctx context.Context, msgID, userID int64, emoji string, add bool, at time.Time) (chat.ReactionChange, error) {
	var rc chat.ReactionChange
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rc = chat.ReactionChange{}
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		var deleted bool
		if err := tx.QueryRow(ctx, sqlq.ReactionMessage+` FOR SHARE`, msgID).Scan(&rc.ConversationID, &deleted); err != nil {
			return notFound(err)
		}
		if deleted {
			return errReactToDeleted
		}
		var n int64
		if add {
			var distinct, same int
			if err := tx.QueryRow(ctx, sqlq.ReactionEmojis, msgID, emoji).Scan(&distinct, &same); err != nil {
				return fmt.Errorf("reaction emojis: %w", err)
			}
			if same == 0 && distinct >= chat.MaxReactions {
				return errTooManyReactions
			}
			tag, err := tx.Exec(ctx, sqlq.AddReaction, msgID, emoji, userID, ms(at))
			if err != nil {
				return fmt.Errorf("add reaction: %w", err)
			}
			n = tag.RowsAffected()
		} else {
			tag, err := tx.Exec(ctx, sqlq.RemoveReaction, msgID, emoji, userID)
			if err != nil {
				return fmt.Errorf("remove reaction: %w", err)
			}
			n = tag.RowsAffected()
		}
		if err := tx.QueryRow(ctx, sqlq.ReactionCount, msgID, emoji).Scan(&rc.Count); err != nil {
			return fmt.Errorf("reaction count: %w", err)
		}
		if n == 0 {
			return errUnchanged
		}
		if _, err := tx.Exec(ctx, `UPDATE messages SET version = $1 WHERE id = $2`, v, msgID); err != nil {
			return fmt.Errorf("message version: %w", err)
		}
		prev, err := setConversationVersion(ctx, tx, rc.ConversationID, v)
		if err != nil {
			return err
		}
		rc.Prev = prev
		rc.Changed, rc.Version = true, v
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return rc, nil
	}
	if err != nil {
		return chat.ReactionChange{}, fmt.Errorf("react: %w", err)
	}
	return rc, nil
}

// Reactions implements chat.Store.
func (s *Store) Reactions(ctx context.Context, viewer int64, msgIDs []int64) (map[int64]chat.Reactions, error) {
	out := make(map[int64]chat.Reactions)
	if len(msgIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, sqlq.ReactionsOf(`= ANY($2)`), viewer, msgIDs)
	if err != nil {
		return nil, fmt.Errorf("reactions: %w", err)
	}
	defer rows.Close()
	if err := sqlq.ScanReactions(rows, viewer, out); err != nil {
		return nil, fmt.Errorf("reactions: %w", err)
	}
	return out, nil
}

// Attachments implements chat.Store.
func (s *Store) Attachments(ctx context.Context, msgIDs []int64) (map[int64]chat.Attachments, error) {
	out := make(map[int64]chat.Attachments)
	if len(msgIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, sqlq.AttachmentsOf(`= ANY($1)`), msgIDs)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	defer rows.Close()
	if err := sqlq.ScanAttachments(rows, out); err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	return out, nil
}
