package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/webhook"
	"github.com/confab/confab/db/sqlq"
)

// Webhook events are written in the transaction of the change that
// causes them (keepWebhook), only for the types SetWebhookEvents chose;
// with none chosen no statement runs. Every node runs a dispatcher:
// claims take due rows FOR UPDATE SKIP LOCKED and lease them (next_at),
// so two nodes never claim the same event, and no transaction is held
// open while a receiver answers.

var _ notify.WebhookOutbox = (*Store)(nil)

// SetWebhookEvents implements notify.WebhookOutbox.
func (s *Store) SetWebhookEvents(set webhook.Set) { s.hooks.Store(uint32(set)) }

// webhooks is the set of event types written.
func (s *Store) webhooks() webhook.Set { return webhook.Set(s.hooks.Load()) }

// keepWebhook writes the event typ, with data, in tx when typ is chosen.
func (s *Store) keepWebhook(ctx context.Context, tx pgx.Tx, typ string, at time.Time, data any) error {
	if !s.webhooks().Has(typ) {
		return nil
	}
	w, err := sqlq.NewWebhook(typ, at, data)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlq.WebhookInsert, w.Args()...); err != nil {
		return fmt.Errorf("keep webhook %s: %w", typ, err)
	}
	return nil
}

// sqlKeepWebhooks writes a batch's message.created events in one
// statement: webhook ids $1, data $2, times $3, one element each.
const sqlKeepWebhooks = `INSERT INTO webhook_events (webhook_id, type, data, next_at, created_at, updated_at)
	SELECT w.id, 'message.created', w.data, w.at, w.at, w.at
	FROM unnest($1::text[], $2::text[], $3::bigint[]) AS w (id, data, at)`

// ClaimWebhooks implements notify.WebhookOutbox.
func (s *Store) ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]notify.WebhookEvent, error) {
	// Most of the time nothing is due: one read says so without a
	// transaction or a lock.
	var due bool
	if err := s.pool.QueryRow(ctx, sqlq.WebhookDue, ms(now)).Scan(&due); err != nil {
		return nil, fmt.Errorf("claim webhooks: %w", err)
	}
	if !due {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, sqlq.WebhookClaim("FOR UPDATE SKIP LOCKED"), ms(until), ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim webhooks: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.WebhookEvent, error) { return sqlq.ScanWebhook(r) })
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
	if _, err := s.pool.Exec(ctx, sqlq.WebhookFinish, id, state, ms(next), nullable(errText), ms(now)); err != nil {
		return fmt.Errorf("finish webhook: %w", err)
	}
	return nil
}

// PruneWebhooks implements notify.WebhookOutbox.
func (s *Store) PruneWebhooks(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlq.WebhookPrune, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune webhooks: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PendingWebhooks implements notify.WebhookOutbox.
func (s *Store) PendingWebhooks(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, sqlq.WebhookPending).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending webhooks: %w", err)
	}
	return n, nil
}
