package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// Block implements chat.Store.
func (s *Store) Block(ctx context.Context, blocker, blocked int64, at time.Time) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		changed = false // a retried transaction starts over
		var exists, already bool
		if err := tx.QueryRow(ctx, sqlq.UserExists, blocked).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return chat.ErrNotFound
		}
		if err := tx.QueryRow(ctx, sqlq.BlockExists, blocker, blocked).Scan(&already); err != nil || already {
			return err
		}
		tag, err := tx.Exec(ctx, sqlq.BlockInsert, blocker, blocked, at.UnixMilli())
		changed = err == nil && tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("block: %w", err)
	}
	return changed, nil
}

// Unblock implements chat.Store.
func (s *Store) Unblock(ctx context.Context, blocker, blocked int64) (bool, error) {
	var changed bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlq.BlockDelete, blocker, blocked)
		changed = err == nil && tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("unblock: %w", err)
	}
	return changed, nil
}
