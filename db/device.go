package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
)

var _ notify.Store = (*Store)(nil)

// RegisterDevice implements notify.Store.
func (s *Store) RegisterDevice(ctx context.Context, d notify.Device, max int) (notify.Device, bool, error) {
	var created bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var owner int64
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM devices WHERE platform = ? AND token = ?`, d.Platform, d.Token).Scan(&owner)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("register device: %w", err)
		}
		created = owner != d.UserID
		// The same token is the same device: the user's own keeps its id
		// and its first registration; another user's moves to this one
		// and counts as registered now.
		var createdAt int64
		if err := tx.QueryRowContext(ctx, `
			INSERT INTO devices (user_id, platform, token, p256dh, auth, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (platform, token) DO UPDATE SET
				created_at = CASE WHEN devices.user_id = excluded.user_id THEN devices.created_at ELSE excluded.created_at END,
				user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, updated_at = excluded.updated_at
			RETURNING id, created_at`,
			d.UserID, d.Platform, d.Token, nullable(d.P256dh), nullable(d.Auth), ms(d.UpdatedAt), ms(d.UpdatedAt),
		).Scan(&d.ID, &createdAt); err != nil {
			return fmt.Errorf("register device: %w", err)
		}
		d.CreatedAt = time.UnixMilli(createdAt).UTC()
		if owner != 0 && owner != d.UserID {
			// A device that changed hands is told nothing more of its
			// previous owner's messages: a pending push would show them
			// to the new one.
			if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE device_id = ?`, d.ID); err != nil {
				return fmt.Errorf("register device: previous owner's deliveries: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `
			DELETE FROM devices WHERE user_id = ? AND id NOT IN (
				SELECT id FROM devices WHERE user_id = ? ORDER BY updated_at DESC, id DESC LIMIT ?)`,
			d.UserID, d.UserID, max); err != nil {
			return fmt.Errorf("register device: cap: %w", err)
		}
		return nil
	})
	if err != nil {
		return notify.Device{}, false, err
	}
	return d, created, nil
}

// Devices implements notify.Store.
func (s *Store) Devices(ctx context.Context, userID int64) ([]notify.Device, error) {
	rows, err := s.read.QueryContext(ctx, `
		SELECT id, user_id, platform, token, coalesce(p256dh, ''), coalesce(auth, ''), created_at, updated_at
		FROM devices WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	defer rows.Close()
	list := []notify.Device{}
	for rows.Next() {
		var d notify.Device
		var c, u int64
		if err := rows.Scan(&d.ID, &d.UserID, &d.Platform, &d.Token, &d.P256dh, &d.Auth, &c, &u); err != nil {
			return nil, fmt.Errorf("devices: %w", err)
		}
		d.CreatedAt, d.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return list, nil
}

// DeleteDevice implements notify.Store.
func (s *Store) DeleteDevice(ctx context.Context, userID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE id = ? AND user_id = ?`, id, userID)
		if err != nil {
			return fmt.Errorf("delete device: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chat.ErrNotFound
		}
		return nil
	})
}

// SetMuted implements notify.Store.
func (s *Store) SetMuted(ctx context.Context, userID, conversationID, until int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE participants SET muted_until = ? WHERE conversation_id = ? AND user_id = ?`,
			nullableMS(until), conversationID, userID)
		if err != nil {
			return fmt.Errorf("set muted: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chat.ErrNotFound
		}
		return nil
	})
}

// MutedUntil implements notify.Store.
func (s *Store) MutedUntil(ctx context.Context, userID, conversationID int64) (int64, error) {
	var until *int64
	err := s.read.QueryRowContext(ctx, `SELECT muted_until FROM participants WHERE conversation_id = ? AND user_id = ?`,
		conversationID, userID).Scan(&until)
	if err != nil {
		return 0, fmt.Errorf("muted until: %w", notFound(err))
	}
	if until == nil {
		return 0, nil
	}
	return *until, nil
}

// nullable stores "" as NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullableMS stores 0 as NULL.
func nullableMS(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
