package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
)

// CreateConversation implements chat.Store.
func (s *Store) CreateConversation(ctx context.Context, c chat.NewConversation) (int64, bool, error) {
	var id int64
	created := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var direct any
		if c.DirectKey != "" {
			direct = c.DirectKey
			err := tx.QueryRowContext(ctx, `SELECT id FROM conversations WHERE direct_key = ?`, c.DirectKey).Scan(&id)
			if err == nil {
				// Bring back anyone who had left, so that the pair
				// can talk again in the one conversation they share.
				for _, uid := range c.UserIDs {
					if _, err := tx.ExecContext(ctx, `
						INSERT INTO participants (conversation_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)
						ON CONFLICT DO NOTHING`, id, uid, ms(c.At)); err != nil {
						return err
					}
				}
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		err := tx.QueryRowContext(ctx, `
			INSERT INTO conversations (title, is_group, direct_key, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			RETURNING id`, c.Title, c.IsGroup, direct, c.UserIDs[0], ms(c.At), ms(c.At)).Scan(&id)
		if err != nil {
			return err
		}
		for i, uid := range c.UserIDs {
			role := chat.RoleMember
			if i == 0 {
				role = chat.RoleAdmin
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO participants (conversation_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)`,
				id, uid, role, ms(c.At)); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("create conversation: %w", err)
	}
	return id, created, nil
}

// Conversation implements chat.Store.
func (s *Store) Conversation(ctx context.Context, id, viewer int64) (chat.Conversation, error) {
	var c chat.Conversation
	var createdBy, lastMsg sql.NullInt64
	var created, updated, lastRead int64
	err := s.read.QueryRowContext(ctx, `
		SELECT c.id, c.title, c.is_group, c.created_by, c.created_at, c.updated_at, c.last_message_id, p.last_read_message_id
		FROM conversations c JOIN participants p ON p.conversation_id = c.id AND p.user_id = ?
		WHERE c.id = ?`, viewer, id).Scan(&c.ID, &c.Title, &c.IsGroup, &createdBy, &created, &updated, &lastMsg, &lastRead)
	if err != nil {
		return chat.Conversation{}, notFound(err)
	}
	c.CreatedBy = chat.OptID(createdBy.Int64)
	c.CreatedAt, c.UpdatedAt = chat.UnixMilli(created), chat.UnixMilli(updated)

	rows, err := s.read.QueryContext(ctx, `
		SELECT u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at, p.last_read_message_id
		FROM participants p JOIN users u ON u.id = p.user_id
		WHERE p.conversation_id = ?
		ORDER BY p.joined_at, u.id`, id)
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("participants: %w", err)
	}
	defer rows.Close()
	c.Participants = []chat.Participant{}
	for rows.Next() {
		var p chat.Participant
		var joined, read int64
		if p.User, err = scanUser(rows, &p.Role, &joined, &read); err != nil {
			return chat.Conversation{}, err
		}
		p.JoinedAt, p.LastReadMessageID = chat.UnixMilli(joined), chat.OptID(read)
		c.Participants = append(c.Participants, p)
	}
	if err := rows.Err(); err != nil {
		return chat.Conversation{}, err
	}
	if lastMsg.Valid {
		m, err := s.Message(ctx, lastMsg.Int64)
		if err != nil {
			return chat.Conversation{}, fmt.Errorf("last message: %w", err)
		}
		c.LastMessage = &m
	}
	if c.UnreadCount, err = s.unread(ctx, s.read, id, viewer, lastRead); err != nil {
		return chat.Conversation{}, err
	}
	return c, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) unread(ctx context.Context, q querier, convID, userID, after int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `
		SELECT count(*) FROM messages
		WHERE conversation_id = ? AND id > ? AND sender_id <> ? AND deleted_at IS NULL`,
		convID, after, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unread count: %w", err)
	}
	return n, nil
}

// Conversations implements chat.Store.
func (s *Store) Conversations(ctx context.Context, viewer int64) ([]chat.Conversation, error) {
	ids, err := s.ConversationIDs(ctx, viewer)
	if err != nil {
		return nil, err
	}
	out := make([]chat.Conversation, 0, len(ids))
	for _, id := range ids {
		c, err := s.Conversation(ctx, id, viewer)
		if errors.Is(err, chat.ErrNotFound) {
			continue // left between the two reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ConversationIDs implements chat.Store; most recent activity first.
func (s *Store) ConversationIDs(ctx context.Context, userID int64) ([]int64, error) {
	return s.ids(ctx, `
		SELECT c.id FROM participants p JOIN conversations c ON c.id = p.conversation_id
		WHERE p.user_id = ?
		ORDER BY c.updated_at DESC, c.id DESC`, userID)
}

// ParticipantIDs implements chat.Store.
func (s *Store) ParticipantIDs(ctx context.Context, convID int64) ([]int64, error) {
	return s.ids(ctx, `SELECT user_id FROM participants WHERE conversation_id = ? ORDER BY user_id`, convID)
}

func (s *Store) ids(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// SetTitle implements chat.Store.
func (s *Store) SetTitle(ctx context.Context, id int64, title string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?`, title, ms(at), id)
		if err != nil {
			return fmt.Errorf("set title: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chat.ErrNotFound
		}
		return nil
	})
}

// AddParticipant implements chat.Store.
func (s *Store) AddParticipant(ctx context.Context, convID, userID int64, role string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO participants (conversation_id, user_id, role, joined_at, last_read_message_id)
			SELECT ?, ?, ?, ?, coalesce(last_message_id, 0) FROM conversations WHERE id = ?
			ON CONFLICT DO NOTHING`, convID, userID, role, ms(at), convID)
		if err != nil {
			return fmt.Errorf("add participant: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &chat.Error{Code: chat.CodeConflict, Detail: "That user is already a participant."}
		}
		_, err = tx.ExecContext(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ?`, ms(at), convID)
		return err
	})
}

// RemoveParticipant implements chat.Store.
func (s *Store) RemoveParticipant(ctx context.Context, convID, userID int64, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM participants WHERE conversation_id = ? AND user_id = ?`, convID, userID)
		if err != nil {
			return fmt.Errorf("remove participant: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chat.ErrNotFound
		}
		// A group is never left without an admin: when the last one
		// goes, the longest-standing member takes over.
		if _, err := tx.ExecContext(ctx, `
			UPDATE participants SET role = 'admin'
			WHERE conversation_id = ?1
			  AND NOT EXISTS (SELECT 1 FROM participants WHERE conversation_id = ?1 AND role = 'admin')
			  AND user_id = (SELECT user_id FROM participants WHERE conversation_id = ?1 ORDER BY joined_at, user_id LIMIT 1)`,
			convID); err != nil {
			return fmt.Errorf("remove participant: next admin: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ?`, ms(at), convID)
		return err
	})
}

// Membership implements chat.Store.
func (s *Store) Membership(ctx context.Context, convID, userID int64) (string, bool, error) {
	var role string
	var group bool
	err := s.read.QueryRowContext(ctx, `
		SELECT p.role, c.is_group FROM participants p JOIN conversations c ON c.id = p.conversation_id
		WHERE p.conversation_id = ? AND p.user_id = ?`, convID, userID).Scan(&role, &group)
	if err != nil {
		return "", false, notFound(err)
	}
	return role, group, nil
}
