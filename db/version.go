package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/confab/confab/db/sqlq"
)

// takeVersions hands out n versions in tx and returns the first; the
// others follow it.
func takeVersions(ctx context.Context, tx *sql.Tx, n int) (int64, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, sqlq.TakeVersions, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("take versions: %w", err)
	}
	return last - int64(n) + 1, nil
}

// bumpConversation records a change of conversation convID in tx: it
// takes a version and gives it to the conversation. prev is the
// conversation's version before.
func bumpConversation(ctx context.Context, tx *sql.Tx, convID int64) (v, prev int64, err error) {
	if v, err = takeVersions(ctx, tx, 1); err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT version FROM conversations WHERE id = ?`, convID).Scan(&prev); err != nil {
		return 0, 0, fmt.Errorf("conversation version: %w", notFound(err))
	}
	if _, err := tx.ExecContext(ctx, sqlq.SetConversationVersion, v, convID); err != nil {
		return 0, 0, fmt.Errorf("conversation version: %w", err)
	}
	return v, prev, nil
}

// bumpMessage records a change of message msgID (of conversation convID)
// in tx: the message and its conversation take the same new version.
func bumpMessage(ctx context.Context, tx *sql.Tx, convID, msgID int64) (v, prev int64, err error) {
	if v, prev, err = bumpConversation(ctx, tx, convID); err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET version = ? WHERE id = ?`, v, msgID); err != nil {
		return 0, 0, fmt.Errorf("message version: %w", err)
	}
	return v, prev, nil
}
