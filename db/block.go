package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// Block implements chat.Store.
func (s *Store) Block(ctx context.Context, blocker, blocked int64, at time.Time) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var exists, already bool
		if err := tx.QueryRowContext(ctx, sqlq.UserExists, blocked).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return chat.ErrNotFound
		}
		if err := tx.QueryRowContext(ctx, sqlq.BlockExists, blocker, blocked).Scan(&already); err != nil || already {
			return err
		}
		_, err := tx.ExecContext(ctx, sqlq.BlockInsert, blocker, blocked, ms(at))
		changed = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("block: %w", err)
	}
	return changed, nil
}

// Unblock implements chat.Store.
func (s *Store) Unblock(ctx context.Context, blocker, blocked int64) (bool, error) {
	res, err := s.write.ExecContext(ctx, sqlq.BlockDelete, blocker, blocked)
	if err != nil {
		return false, fmt.Errorf("unblock: %w", storageFull(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("unblock: %w", err)
	}
	return n > 0, nil
}
