package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/db/sqlq"
)

// The push outbox follows the messages behind push_mark (migration
// 00013), as the search index follows them behind search_indexed: the
// group commit never touches it. SQLite has one writer, so the write
// transaction is the only lock the mark and the claims need.

var _ notify.Outbox = (*Store)(nil)

// DecidePushes implements notify.Outbox.
func (s *Store) DecidePushes(ctx context.Context, limit int, now time.Time, delay time.Duration,
	decide func(context.Context, notify.PushBatch) ([]notify.Push, error)) (notify.Decided, error) {
	// Most of the time nothing is above the mark: a read says so without
	// taking the write connection.
	var behind bool
	if err := s.read.QueryRowContext(ctx, sqlq.PushBehind).Scan(&behind); err != nil {
		return notify.Decided{}, fmt.Errorf("decide pushes: %w", err)
	}
	if !behind {
		return notify.Decided{}, nil
	}
	var r notify.Decided
	err := s.tx(ctx, func(tx *sql.Tx) error {
		r = notify.Decided{}
		var mark int64
		if err := tx.QueryRowContext(ctx, sqlq.PushMark).Scan(&mark); err != nil {
			return err
		}
		b, top, err := sqlq.ReadPushBatch(ctx, txQuerier{tx}, mark, limit)
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
		for _, p := range pushes {
			rows, err := tx.QueryContext(ctx, sqlq.PushUpsert, p.UserID, p.ConversationID, p.MessageID, p.Collapse,
				string(p.Payload), ms(now.Add(delay)), ms(now))
			if err != nil {
				return fmt.Errorf("store push: %w", err)
			}
			if err := countPlatforms(rows, &r.Queued); err != nil {
				return fmt.Errorf("store push: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, sqlq.PushSetMark, top)
		return err
	})
	if err != nil {
		return notify.Decided{}, fmt.Errorf("decide pushes: %w", err)
	}
	return r, nil
}

// countPlatforms adds the platforms PushUpsert returned to counts, and
// closes rows.
func countPlatforms(rows *sql.Rows, counts *map[string]int) error {
	defer rows.Close()
	for rows.Next() {
		var platform string
		if err := rows.Scan(&platform); err != nil {
			return err
		}
		if *counts == nil {
			*counts = map[string]int{}
		}
		(*counts)[platform]++
	}
	return rows.Err()
}

// PendingDeliveries implements notify.Outbox, from the read pool.
func (s *Store) PendingDeliveries(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, sqlq.PushPending)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var platform string
		var n int
		if err := rows.Scan(&platform, &n); err != nil {
			return nil, fmt.Errorf("pending deliveries: %w", err)
		}
		counts[platform] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	return counts, nil
}

// PruneDeliveries implements notify.Outbox. A read says first whether
// anything is old enough, so that an idle server does not take the
// write connection, which the group commit needs.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error) {
	var old bool
	if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE state <> 'pending' AND updated_at < ?)`,
		ms(before)).Scan(&old); err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	if !old {
		return 0, nil
	}
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlq.PushPrune, ms(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return int(n), nil
}

// ClaimDeliveries implements notify.Outbox: in the writer's transaction,
// a DELETE drops the due deliveries already read, then one UPDATE …
// RETURNING leases the rest.
func (s *Store) ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]notify.Delivery, error) {
	// Most of the time nothing is due: a read says so without taking
	// the write connection, which the group commit needs.
	var due bool
	if err := s.read.QueryRowContext(ctx, sqlq.PushDue, ms(now)).Scan(&due); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if !due {
		return nil, nil
	}
	var list []notify.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		list = nil
		if _, err := tx.ExecContext(ctx, sqlq.PushDropRead, ms(now)); err != nil {
			return fmt.Errorf("drop read: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `
			UPDATE deliveries SET next_at = ?, attempts = attempts + 1, updated_at = ?
			WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?)
			RETURNING id`, ms(until), ms(now), ms(now), limit)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			d, err := sqlq.ScanDelivery(tx.QueryRowContext(ctx, `SELECT `+sqlq.PushDeliveryColumns+`
				FROM deliveries x JOIN devices d ON d.id = x.device_id WHERE x.id = ?`, id))
			if err != nil {
				return err
			}
			list = append(list, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return list, nil
}

// FinishDelivery implements notify.Outbox.
func (s *Store) FinishDelivery(ctx context.Context, d notify.Delivery, o notify.Outcome, now time.Time) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if o.State == notify.DeliveryGone {
			if _, err := tx.ExecContext(ctx, sqlq.PushGone, d.ID, ms(now), o.Error); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, sqlq.PushDeleteDevice, d.Device.ID)
			return err
		}
		if o.State == notify.DeliveryDropped {
			if _, err := tx.ExecContext(ctx, sqlq.PushDrop, d.ID, d.MessageID); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, sqlq.PushDueNow, d.ID, ms(now))
			return err
		}
		next := now
		if !o.NextAt.IsZero() {
			next = o.NextAt
		}
		_, err := tx.ExecContext(ctx, sqlq.PushFinish, d.ID, o.State, d.MessageID, ms(now), ms(next), nullable(o.Error))
		return err
	})
	if err != nil {
		return fmt.Errorf("finish delivery: %w", err)
	}
	return nil
}

// txQuerier is a write transaction as sqlq reads through it.
type txQuerier struct{ tx *sql.Tx }

func (q txQuerier) Query(ctx context.Context, query string, args ...any) (sqlq.ClosingRows, error) {
	rows, err := q.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return closingRows{rows}, nil
}

func (q txQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlq.Row {
	return q.tx.QueryRowContext(ctx, query, args...)
}
