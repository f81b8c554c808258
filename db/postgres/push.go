package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/db/sqlq"
)

// The push outbox follows the messages behind push_mark (migration
// 00011), as the search index follows them behind search_indexed, and
// for the same reason an id mark is safe: ids become visible in the order
// they were handed out (migration 00008). Every node runs a dispatcher;
// the mark's row is their lock, taken FOR UPDATE SKIP LOCKED, so that
// exactly one node decides each batch and the others skip their round.
// Claims take due rows FOR UPDATE SKIP LOCKED, so two nodes never claim
// the same delivery, and lease them (next_at) rather than hold a
// transaction open while a provider answers.

var _ notify.Outbox = (*Store)(nil)

const sqlPushTryLock = `SELECT id FROM push_mark FOR UPDATE SKIP LOCKED`

// DecidePushes implements notify.Outbox.
func (s *Store) DecidePushes(ctx context.Context, limit int, now time.Time, delay time.Duration,
	decide func(context.Context, notify.PushBatch) ([]notify.Push, error)) (notify.Decided, error) {
	// Most of the time nothing is above the mark: one read says so
	// without a transaction or a lock.
	var behind bool
	if err := s.pool.QueryRow(ctx, sqlq.PushBehind).Scan(&behind); err != nil {
		return notify.Decided{}, fmt.Errorf("decide pushes: %w", err)
	}
	if !behind {
		return notify.Decided{}, nil
	}
	var r notify.Decided
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r = notify.Decided{}
		var mark int64
		if err := tx.QueryRow(ctx, sqlPushTryLock).Scan(&mark); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				r.Skipped = true
				return nil
			}
			return err
		}
		b, top, err := sqlq.ReadPushBatch(ctx, txReader{tx}, mark, limit)
		if err != nil {
			return err
		}
		if r.Read = len(b.Messages); r.Read == 0 {
			return nil
		}
		pushes, err := decide(ctx, b)
		if err != nil {
			return err
		}
		if len(pushes) > 0 {
			batch := &pgx.Batch{}
			for _, p := range pushes {
				batch.Queue(sqlq.PushUpsert, p.UserID, p.ConversationID, p.MessageID, p.Collapse,
					string(p.Payload), ms(now.Add(delay)), ms(now))
			}
			if err := storePushes(tx.SendBatch(ctx, batch), len(pushes), &r.Queued); err != nil {
				return fmt.Errorf("store pushes: %w", err)
			}
		}
		_, err = tx.Exec(ctx, sqlq.PushSetMark, top)
		return err
	})
	if err != nil {
		return notify.Decided{}, fmt.Errorf("decide pushes: %w", err)
	}
	return r, nil
}

// storePushes reads the platforms each of the n upserts of br returned
// into counts, and closes br.
func storePushes(br pgx.BatchResults, n int, counts *map[string]int) error {
	for range n {
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		platforms, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			br.Close()
			return err
		}
		for _, p := range platforms {
			if *counts == nil {
				*counts = map[string]int{}
			}
			(*counts)[p]++
		}
	}
	return br.Close()
}

// PendingDeliveries implements notify.Outbox.
func (s *Store) PendingDeliveries(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, sqlq.PushPending)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	counts := map[string]int{}
	var platform string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&platform, &n}, func() error {
		counts[platform] = int(n)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	return counts, nil
}

// PruneDeliveries implements notify.Outbox.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlq.PushPrune, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ClaimDeliveries implements notify.Outbox.
//
// The due deliveries already read are dropped first, in a statement of
// their own: a row another node is leasing meanwhile is re-checked once
// its lock is released, and then no longer due, so it is left alone.
func (s *Store) ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]notify.Delivery, error) {
	// Most of the time nothing is due: one read says so, and no
	// statement that writes runs on an idle node.
	var due bool
	if err := s.pool.QueryRow(ctx, sqlq.PushDue, ms(now)).Scan(&due); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if !due {
		return nil, nil
	}
	if _, err := s.pool.Exec(ctx, sqlq.PushDropRead, ms(now)); err != nil {
		return nil, fmt.Errorf("claim deliveries: drop read: %w", err)
	}
	rows, err := s.pool.Query(ctx, `
		WITH claimed AS (
			UPDATE deliveries SET next_at = $1, attempts = attempts + 1, updated_at = $2
			WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_at <= $2
				ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING *
		)
		SELECT `+sqlq.PushDeliveryColumns+` FROM claimed x JOIN devices d ON d.id = x.device_id`,
		ms(until), ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Delivery, error) { return sqlq.ScanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return list, nil
}

// FinishDelivery implements notify.Outbox.
func (s *Store) FinishDelivery(ctx context.Context, d notify.Delivery, o notify.Outcome, now time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if o.State == notify.DeliveryGone {
			if _, err := tx.Exec(ctx, sqlq.PushGone, d.ID, ms(now), o.Error); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sqlq.PushDeleteDevice, d.Device.ID)
			return err
		}
		if o.State == notify.DeliveryDropped {
			if _, err := tx.Exec(ctx, sqlq.PushDrop, d.ID, d.MessageID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sqlq.PushDueNow, d.ID, ms(now))
			return err
		}
		next := now
		if !o.NextAt.IsZero() {
			next = o.NextAt
		}
		_, err := tx.Exec(ctx, sqlq.PushFinish, d.ID, o.State, d.MessageID, ms(now), ms(next), nullable(o.Error))
		return err
	})
	if err != nil {
		return fmt.Errorf("finish delivery: %w", err)
	}
	return nil
}

// txReader is a transaction as sqlq reads through it.
type txReader struct{ tx pgx.Tx }

func (r txReader) Query(ctx context.Context, query string, args ...any) (sqlq.ClosingRows, error) {
	return r.tx.Query(ctx, query, args...)
}

func (r txReader) QueryRow(ctx context.Context, query string, args ...any) sqlq.Row {
	return r.tx.QueryRow(ctx, query, args...)
}
