package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// DeleteUser implements chat.Store. The clock first, as every writer
// here (takeVersion); then the user's row (EraseProfile), which a send
// holds too (KEY SHARE), so no send of theirs is in flight meanwhile:
// one committed before is tombstoned by EraseMessages, one after finds
// its sender out of the conversation.
func (s *Store) DeleteUser(ctx context.Context, id int64, at, reservedUntil time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		var got int64
		if err := tx.QueryRow(ctx, sqlq.EraseProfile, id, ms(at), ms(reservedUntil)).Scan(&got); err != nil {
			return notFound(err)
		}
		// Their conversations in id order, the order InsertMessages
		// locks them in.
		rows, err := tx.Query(ctx, `
			SELECT id FROM conversations WHERE id IN (SELECT conversation_id FROM participants WHERE user_id = $1)
			ORDER BY id FOR NO KEY UPDATE`, id)
		if err != nil {
			return fmt.Errorf("lock conversations: %w", err)
		}
		convs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("lock conversations: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlq.LeaveAll, id, v); err != nil {
			return fmt.Errorf("member counts: %w", err)
		}
		// Webhook receivers learn that they left each conversation.
		for _, c := range convs {
			if err := s.keepWebhook(ctx, tx, "participant.removed", at, sqlq.WebhookParticipant{
				ConversationID: c, UserID: id, At: chat.Time{Time: at}}); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, sqlq.ReleaseUnsent, id, ms(at)); err != nil {
			return fmt.Errorf("release uploads: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlq.DropUnsent, id); err != nil {
			return fmt.Errorf("remove uploads: %w", err)
		}
		for _, q := range sqlq.AccountErasures {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("erase account: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeInternal {
			return err
		}
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// EraseMessages implements chat.Store. The clock first: no other writer
// changes these conversations' versions meanwhile.
func (s *Store) EraseMessages(ctx context.Context, userID int64, ids []int64, at time.Time) ([]chat.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	list := sqlq.IDList(ids)
	var msgs []chat.Message
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var last int64
		if err := tx.QueryRow(ctx, sqlq.TakeVersions, len(ids)).Scan(&last); err != nil {
			return fmt.Errorf("take versions: %w", err)
		}
		base := last - int64(len(ids))
		rows, err := tx.Query(ctx, sqlq.EraseConversations(list))
		if err != nil {
			return fmt.Errorf("conversation versions: %w", err)
		}
		before := map[int64]int64{}
		var conv, v int64
		if _, err := pgx.ForEachRow(rows, []any{&conv, &v}, func() error { before[conv] = v; return nil }); err != nil {
			return fmt.Errorf("conversation versions: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlq.EraseMessages(list), userID, ms(at), base); err != nil {
			return fmt.Errorf("tombstone: %w", err)
		}
		rows, err = tx.Query(ctx, sqlq.ErasedMessages(list), base)
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
			if _, err := tx.Exec(ctx, sqlq.SetConversationVersion, v, conv); err != nil {
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
		if _, err := tx.Exec(ctx, reactions); err != nil {
			return fmt.Errorf("clear reactions: %w", err)
		}
		if _, err := tx.Exec(ctx, release, ms(at)); err != nil {
			return fmt.Errorf("release attachments: %w", err)
		}
		if _, err := tx.Exec(ctx, uploads); err != nil {
			return fmt.Errorf("remove attachments: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("erase messages: %w", err)
	}
	return msgs, nil
}

// FinishErasure implements chat.Store.
func (s *Store) FinishErasure(ctx context.Context, userID int64, at time.Time) (bool, error) {
	var done bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlq.DropDeliveries, userID); err != nil {
			return fmt.Errorf("drop pushes: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlq.FinishErasure, userID, ms(at)); err != nil {
			return err
		}
		return notFound(tx.QueryRow(ctx, sqlq.Erased, userID).Scan(&done))
	})
	if err != nil {
		return false, fmt.Errorf("finish erasure: %w", err)
	}
	return done, nil
}

// ReleaseUsernames implements chat.Store. It writes only when a
// reservation has ended: most sweeps find none.
func (s *Store) ReleaseUsernames(ctx context.Context, at time.Time) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, sqlq.UsernamesToRelease, ms(at)).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, sqlq.ReleaseUsernames, ms(at))
	if err != nil {
		return 0, fmt.Errorf("release usernames: %w", err)
	}
	return tag.RowsAffected(), nil
}
