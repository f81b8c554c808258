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

// setConversationVersion records conversation convID's change v.
func setConversationVersion(ctx context.Context, tx pgx.Tx, convID, v int64) error {
	if _, err := tx.Exec(ctx, sqlq.SetConversationVersion, v, convID); err != nil {
		return fmt.Errorf("conversation version: %w", err)
	}
	return nil
}
