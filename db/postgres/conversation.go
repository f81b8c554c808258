package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// CreateConversation implements chat.Store.
func (s *Store) CreateConversation(ctx context.Context, c chat.NewConversation) (int64, bool, error) {
	var id int64
	var created bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		created = false
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		var direct *string
		if c.DirectKey != "" {
			direct = &c.DirectKey
			err := tx.QueryRow(ctx, `SELECT id FROM conversations WHERE direct_key = $1`, c.DirectKey).Scan(&id)
			if err == nil {
				return s.rejoin(ctx, tx, id, c, v)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		// ON CONFLICT: the pair may be starting the same direct
		// conversation from another node right now.
		err = tx.QueryRow(ctx, `
			INSERT INTO conversations (title, is_group, direct_key, created_by, created_at, updated_at, member_count, version)
			VALUES ($1, $2, $3, $4, $5, $5, $6, $7)
			ON CONFLICT (direct_key) DO NOTHING
			RETURNING id`, c.Title, c.IsGroup, direct, c.UserIDs[0], ms(c.At), len(c.UserIDs), v).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			// That other node committed first: a new statement sees it.
			if err := tx.QueryRow(ctx, `SELECT id FROM conversations WHERE direct_key = $1`, c.DirectKey).Scan(&id); err != nil {
				return err
			}
			return s.rejoin(ctx, tx, id, c, v)
		}
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		for i, uid := range c.UserIDs {
			role := chat.RoleMember
			if i == 0 {
				role = chat.RoleAdmin
			}
			b.Queue(`INSERT INTO participants (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`,
				id, uid, role, ms(c.At))
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		created = true
		return s.keepWebhook(ctx, tx, "conversation.created", c.At, sqlq.WebhookConversation{ID: id, Title: c.Title,
			IsGroup: c.IsGroup, CreatedBy: c.UserIDs[0], ParticipantIDs: c.UserIDs, CreatedAt: chat.Time{Time: c.At}})
	})
	if err != nil {
		return 0, false, fmt.Errorf("create conversation: %w", err)
	}
	return id, created, nil
}

// rejoin brings back anyone of c who had left the existing direct
// conversation id, so that the pair can talk again in the one conversation
// they share.
func (s *Store) rejoin(ctx context.Context, tx pgx.Tx, id int64, c chat.NewConversation, v int64) error {
	rows, err := tx.Query(ctx, `
		WITH back AS (
			INSERT INTO participants (conversation_id, user_id, role, joined_at)
			SELECT $1, uid, 'member', $3 FROM unnest($2::bigint[]) AS uid
			ON CONFLICT DO NOTHING
			RETURNING user_id
		), bumped AS (
			UPDATE conversations SET member_count = member_count + (SELECT count(*) FROM back), version = $4
			WHERE id = $1 AND EXISTS (SELECT 1 FROM back)
		)
		SELECT user_id FROM back ORDER BY user_id`, id, c.UserIDs, ms(c.At), v)
	if err != nil {
		return err
	}
	back, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, uid := range back {
		if err := s.keepWebhook(ctx, tx, "participant.added", c.At, sqlq.WebhookParticipant{
			ConversationID: id, UserID: uid, Role: chat.RoleMember, At: chat.Time{Time: c.At}}); err != nil {
			return err
		}
	}
	return nil
}

// Conversation implements chat.Store.
func (s *Store) Conversation(ctx context.Context, id, viewer int64) (chat.Conversation, error) {
	return sqlq.One(s.conversations(ctx, sqlq.Conversation, viewer, id))
}

// Conversations implements chat.Store: two queries however many
// conversations viewer is in.
func (s *Store) Conversations(ctx context.Context, viewer int64, before chat.Position, limit int) ([]chat.Conversation, error) {
	if limit <= 0 {
		return []chat.Conversation{}, nil
	}
	return s.conversations(ctx, sqlq.ConversationPage, sqlq.ConversationPageArgs(viewer, before, limit)...)
}

// conversations reads the conversations of query, then the first
// participants of each of them. A participant who left in between is
// still shown; one who joined in between may be.
func (s *Store) conversations(ctx context.Context, query string, args ...any) ([]chat.Conversation, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	convs, err := sqlq.Collect(rows, 0, sqlq.ScanConversation)
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	if len(convs) == 0 {
		return convs, nil
	}
	if rows, err = s.pool.Query(ctx, sqlq.ParticipantsOfPagePostgres, sqlq.IDs(convs), chat.MaxInlineParticipants); err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	defer rows.Close()
	if err := sqlq.Assemble(convs, rows); err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	return convs, nil
}

// SetTitle implements chat.Store.
func (s *Store) SetTitle(ctx context.Context, id int64, title string, at time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE conversations SET title = $1, updated_at = $2, version = $4 WHERE id = $3`, title, ms(at), id, v)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return chat.ErrNotFound
		}
		return s.keepWebhook(ctx, tx, "conversation.updated", at, sqlq.WebhookTitle{ID: id, Title: title, UpdatedAt: chat.Time{Time: at}})
	})
	if err != nil && chat.ErrorCode(err) == chat.CodeInternal {
		return fmt.Errorf("set title: %w", err)
	}
	return err
}

// AddParticipant implements chat.Store.
func (s *Store) AddParticipant(ctx context.Context, convID, userID int64, role string, at time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO participants (conversation_id, user_id, role, joined_at, last_read_message_id, last_read_seq)
			SELECT $1, $2, $3, $4, coalesce(last_message_id, 0), last_seq FROM conversations WHERE id = $1
			ON CONFLICT DO NOTHING`, convID, userID, role, ms(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &chat.Error{Code: chat.CodeConflict, Detail: "That user is already a participant."}
		}
		if _, err = tx.Exec(ctx, `UPDATE conversations SET updated_at = $1, member_count = member_count + 1, version = $3 WHERE id = $2`, ms(at), convID, v); err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "participant.added", at, sqlq.WebhookParticipant{
			ConversationID: convID, UserID: userID, Role: role, At: chat.Time{Time: at}})
	})
	if err != nil && chat.ErrorCode(err) == chat.CodeInternal {
		return fmt.Errorf("add participant: %w", err)
	}
	return err
}

// RemoveParticipant implements chat.Store.
func (s *Store) RemoveParticipant(ctx context.Context, convID, userID int64, at time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// The conversation first, as every writer locks it: two
		// participants leaving at once then take turns, and the last
		// admin's successor is chosen once.
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, convID).Scan(&id); err != nil {
			return notFound(err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM participants WHERE conversation_id = $1 AND user_id = $2`, convID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return chat.ErrNotFound
		}
		// A group is never left without an admin: when the last one
		// goes, the longest-standing member takes over.
		if _, err := tx.Exec(ctx, `
			UPDATE participants SET role = 'admin'
			WHERE conversation_id = $1
			  AND NOT EXISTS (SELECT 1 FROM participants WHERE conversation_id = $1 AND role = 'admin')
			  AND user_id = (SELECT user_id FROM participants WHERE conversation_id = $1 ORDER BY joined_at, user_id LIMIT 1)`,
			convID); err != nil {
			return fmt.Errorf("next admin: %w", err)
		}
		if _, err = tx.Exec(ctx, `UPDATE conversations SET updated_at = $1, member_count = member_count - 1, version = $3 WHERE id = $2`, ms(at), convID, v); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, sqlq.Departure, userID, convID, v); err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "participant.removed", at, sqlq.WebhookParticipant{
			ConversationID: convID, UserID: userID, At: chat.Time{Time: at}})
	})
	if err != nil && chat.ErrorCode(err) == chat.CodeInternal {
		return fmt.Errorf("remove participant: %w", err)
	}
	return err
}
