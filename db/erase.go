package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// DeleteUser implements chat.Store.
func (s *Store) DeleteUser(ctx context.Context, id int64, at, reservedUntil time.Time) error {
	defer s.users.forget(id)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var got int64
		if err := tx.QueryRowContext(ctx, sqlq.EraseProfile, id, ms(at), ms(reservedUntil)).Scan(&got); err != nil {
			return notFound(err)
		}
		// Every conversation they were in counts one member fewer: a
		// change each of them sees, one version for all.
		v, err := takeVersions(ctx, tx, 1)
		if err != nil {
			return err
		}
		// Webhook receivers learn that they left each conversation.
		var convs []int64
		if s.webhooks().Has("participant.removed") {
			rows, err := tx.QueryContext(ctx, `SELECT conversation_id FROM participants WHERE user_id = ? ORDER BY conversation_id`, id)
			if err != nil {
				return fmt.Errorf("conversations: %w", err)
			}
			convs, err = sqlq.Collect(rows, 0, func(r sqlq.Row) (c int64, err error) { return c, r.Scan(&c) })
			rows.Close()
			if err != nil {
				return fmt.Errorf("conversations: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, sqlq.LeaveAll, id, v); err != nil {
			return fmt.Errorf("member counts: %w", err)
		}
		for _, c := range convs {
			if err := s.keepWebhook(ctx, tx, "participant.removed", at, sqlq.WebhookParticipant{
				ConversationID: c, UserID: id, At: chat.Time{Time: at}}); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, sqlq.ReleaseUnsent, id, ms(at)); err != nil {
			return fmt.Errorf("release uploads: %w", err)
		}
		if _, err := tx.ExecContext(ctx, sqlq.DropUnsent, id); err != nil {
			return fmt.Errorf("remove uploads: %w", err)
		}
		for _, q := range sqlq.AccountErasures {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("erase account: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// EraseMessages implements chat.Store.
func (s *Store) EraseMessages(ctx context.Context, userID int64, ids []int64, at time.Time) ([]chat.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	list := sqlq.IDList(ids)
	var msgs []chat.Message
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := versionsOf(ctx, tx, sqlq.EraseConversations(list))
		if err != nil {
			return err
		}
		first, err := takeVersions(ctx, tx, len(ids))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlq.EraseMessages(list), userID, ms(at), first-1); err != nil {
			return fmt.Errorf("tombstone: %w", err)
		}
		rows, err := tx.QueryContext(ctx, sqlq.ErasedMessages(list), first-1)
		if err != nil {
			return err
		}
		msgs, err = sqlq.Collect(rows, len(ids), sqlq.ScanMessage)
		rows.Close()
		if err != nil {
			return err
		}
		for conv, v := range sqlq.PrevVersions(msgs, before) {
			if v == before[conv] {
				continue
			}
			if _, err := tx.ExecContext(ctx, sqlq.SetConversationVersion, v, conv); err != nil {
				return fmt.Errorf("conversation version: %w", err)
			}
		}
		// Webhook receivers drop what they kept of each message.
		for i := range msgs {
			if err := s.keepWebhook(ctx, tx, "message.deleted", at, &msgs[i]); err != nil {
				return err
			}
		}
		reactions, release, uploads := sqlq.EraseDetails(list)
		if _, err := tx.ExecContext(ctx, reactions); err != nil {
			return fmt.Errorf("clear reactions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, release, ms(at)); err != nil {
			return fmt.Errorf("release attachments: %w", err)
		}
		if _, err := tx.ExecContext(ctx, uploads); err != nil {
			return fmt.Errorf("remove attachments: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("erase messages: %w", err)
	}
	return msgs, nil
}

// versionsOf reads (conversation id, version) rows.
func versionsOf(ctx context.Context, tx *sql.Tx, q string) (map[int64]int64, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("conversation versions: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// FinishErasure implements chat.Store.
func (s *Store) FinishErasure(ctx context.Context, userID int64, at time.Time) (bool, error) {
	var done bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, sqlq.DropDeliveries, userID); err != nil {
			return fmt.Errorf("drop pushes: %w", err)
		}
		if _, err := tx.ExecContext(ctx, sqlq.FinishErasure, userID, ms(at)); err != nil {
			return err
		}
		return notFound(tx.QueryRowContext(ctx, sqlq.Erased, userID).Scan(&done))
	})
	if err != nil {
		return false, fmt.Errorf("finish erasure: %w", err)
	}
	return done, nil
}

// ReleaseUsernames implements chat.Store. It writes only when a
// reservation has ended: most sweeps find none.
func (s *Store) ReleaseUsernames(ctx context.Context, at time.Time) (int64, error) {
	var any int
	err := s.read.QueryRowContext(ctx, sqlq.UsernamesToRelease, ms(at)).Scan(&any)
	if err != nil || any == 0 {
		return 0, err
	}
	var n int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlq.ReleaseUsernames, ms(at))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release usernames: %w", err)
	}
	return n, nil
}
