package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/db/sqlq"
)

// takeVersion hands out one version in tx. It must be the transaction's
// first lock (sqlq.TakeVersions): every writer that changes what
// participants see takes the clock before any row, so that none of them
// waits for another in a cycle.
func takeVersion(ctx context.Context, tx pgx.Tx) (int64, error) {
	var v int64
	if err := tx.QueryRow(ctx, sqlq.TakeVersions, 1).Scan(&v); err != nil {
		return 0, fmt.Errorf("take version: %w", err)
	}
	return v, nil
}

// setConversationVersion records conversation convID's change v and
// returns its version before. No other writer changes it meanwhile: they
// all take the clock first.
func setConversationVersion(ctx context.Context, tx pgx.Tx, convID, v int64) (prev int64, err error) {
	err = tx.QueryRow(ctx, `
		UPDATE conversations c SET version = $1 FROM (SELECT id, version FROM conversations WHERE id = $2) o
		WHERE c.id = o.id RETURNING o.version`, v, convID).Scan(&prev)
	if err != nil {
		return 0, fmt.Errorf("conversation version: %w", err)
	}
	return prev, nil
}
