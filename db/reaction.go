package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// errReactToDeleted refuses a reaction to a tombstone.
var errReactToDeleted = chat.InvalidField("message", "A deleted message takes no reactions.")

// errTooManyReactions refuses a new emoji past chat.MaxReactions.
var errTooManyReactions = chat.InvalidField("emoji", fmt.Sprintf("At most %d different reactions per message.", chat.MaxReactions))

// React implements chat.Store. The write connection is SQLite's one
// writer: the count of distinct emoji cannot change between the check and
// the insert.
func (s *Store) React(ctx context.Context, msgID, userID int64, emoji string, add bool, at time.Time) (chat.ReactionChange, error) {
	var rc chat.ReactionChange
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rc = chat.ReactionChange{}
		var deleted bool
		if err := tx.QueryRowContext(ctx, sqlq.ReactionMessage, msgID).Scan(&rc.ConversationID, &deleted); err != nil {
			return notFound(err)
		}
		if deleted {
			return errReactToDeleted
		}
		var res sql.Result
		var err error
		if add {
			var distinct, same int
			if err := tx.QueryRowContext(ctx, sqlq.ReactionEmojis, msgID, emoji).Scan(&distinct, &same); err != nil {
				return fmt.Errorf("reaction emojis: %w", err)
			}
			if same == 0 && distinct >= chat.MaxReactions {
				return errTooManyReactions
			}
			res, err = tx.ExecContext(ctx, sqlq.AddReaction, msgID, emoji, userID, ms(at))
		} else {
			res, err = tx.ExecContext(ctx, sqlq.RemoveReaction, msgID, emoji, userID)
		}
		if err != nil {
			return fmt.Errorf("reaction: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			rc.Changed = true
			if rc.Version, rc.Prev, err = bumpMessage(ctx, tx, rc.ConversationID, msgID); err != nil {
				return err
			}
		}
		if err := tx.QueryRowContext(ctx, sqlq.ReactionCount, msgID, emoji).Scan(&rc.Count); err != nil {
			return fmt.Errorf("reaction count: %w", err)
		}
		return nil
	})
	if err != nil {
		return chat.ReactionChange{}, fmt.Errorf("react: %w", err)
	}
	return rc, nil
}

// Reactions implements chat.Store.
func (s *Store) Reactions(ctx context.Context, viewer int64, msgIDs []int64) (map[int64]chat.Reactions, error) {
	out := make(map[int64]chat.Reactions)
	for len(msgIDs) > 0 {
		chunk := msgIDs[:min(len(msgIDs), 500)]
		msgIDs = msgIDs[len(chunk):]
		args := make([]any, 1, 1+len(chunk))
		args[0] = viewer
		for _, id := range chunk {
			args = append(args, id)
		}
		// $1 is the viewer; the ids follow it as ?2, ?3…
		rows, err := s.read.QueryContext(ctx, sqlq.ReactionsOf(`IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("reactions: %w", err)
		}
		err = sqlq.ScanReactions(rows, viewer, out)
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("reactions: %w", err)
		}
	}
	return out, nil
}

// Attachments implements chat.Store.
func (s *Store) Attachments(ctx context.Context, msgIDs []int64) (map[int64]chat.Attachments, error) {
	out := make(map[int64]chat.Attachments)
	for len(msgIDs) > 0 {
		chunk := msgIDs[:min(len(msgIDs), 500)]
		msgIDs = msgIDs[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.read.QueryContext(ctx, sqlq.AttachmentsOf(`IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("attachments: %w", err)
		}
		err = sqlq.ScanAttachments(rows, out)
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("attachments: %w", err)
		}
	}
	return out, nil
}
