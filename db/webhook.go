package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/webhook"
	"github.com/confab/confab/db/sqlq"
)

// Webhook events are written in the transaction of the change that
// causes them (keepWebhook), only for the types SetWebhookEvents chose;
// with none chosen no statement runs. SQLite has one writer, so the
// write transaction is the only lock a claim needs.

var _ notify.WebhookOutbox = (*Store)(nil)

// SetWebhookEvents implements notify.WebhookOutbox.
func (s *Store) SetWebhookEvents(set webhook.Set) { s.hooks.Store(uint32(set)) }

// webhooks is the set of event types written.
func (s *Store) webhooks() webhook.Set { return webhook.Set(s.hooks.Load()) }

// keepWebhook writes the event typ, with data, in tx when typ is chosen.
func (s *Store) keepWebhook(ctx context.Context, tx *sql.Tx, typ string, at time.Time, data any) error {
	if !s.webhooks().Has(typ) {
		return nil
	}
	w, err := sqlq.NewWebhook(typ, at, data)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sqlq.WebhookInsert, w.Args()...); err != nil {
		return fmt.Errorf("keep webhook %s: %w", typ, err)
	}
	return nil
}

// ClaimWebhooks implements notify.WebhookOutbox.
func (s *Store) ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]notify.WebhookEvent, error) {
	// Most of the time nothing is due: a read says so without taking
	// the write connection, which the group commit needs.
	var due bool
	if err := s.read.QueryRowContext(ctx, sqlq.WebhookDue, ms(now)).Scan(&due); err != nil {
		return nil, fmt.Errorf("claim webhooks: %w", err)
	}
	if !due {
		return nil, nil
	}
	var list []notify.WebhookEvent
	err := s.tx(ctx, func(tx *sql.Tx) error {
		list = nil
		rows, err := tx.QueryContext(ctx, sqlq.WebhookClaim(""), ms(until), ms(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := sqlq.ScanWebhook(rows)
			if err != nil {
				return err
			}
			list = append(list, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhooks: %w", err)
	}
	return list, nil
}

// FinishWebhook implements notify.WebhookOutbox.
func (s *Store) FinishWebhook(ctx context.Context, id int64, state string, next time.Time, errText string, now time.Time) error {
	if next.IsZero() {
		next = now
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, sqlq.WebhookFinish, id, state, ms(next), nullable(errText), ms(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("finish webhook: %w", err)
	}
	return nil
}

// PruneWebhooks implements notify.WebhookOutbox.
func (s *Store) PruneWebhooks(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlq.WebhookPrune, ms(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhooks: %w", err)
	}
	return int(n), nil
}

// PendingWebhooks implements notify.WebhookOutbox.
func (s *Store) PendingWebhooks(ctx context.Context) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, sqlq.WebhookPending).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending webhooks: %w", err)
	}
	return n, nil
}
