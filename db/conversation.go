package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
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
				var back int64
				for _, uid := range c.UserIDs {
					res, err := tx.ExecContext(ctx, `
						INSERT INTO participants (conversation_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)
						ON CONFLICT DO NOTHING`, id, uid, ms(c.At))
					if err != nil {
						return err
					}
					n, _ := res.RowsAffected()
					back += n
					if n > 0 {
						if err := s.keepWebhook(ctx, tx, "participant.added", c.At, sqlq.WebhookParticipant{
							ConversationID: id, UserID: uid, Role: chat.RoleMember, At: chat.Time{Time: c.At}}); err != nil {
							return err
						}
					}
				}
				if back > 0 {
					if _, err = tx.ExecContext(ctx, `UPDATE conversations SET member_count = member_count + ? WHERE id = ?`, back, id); err != nil {
						return err
					}
					_, _, err = bumpConversation(ctx, tx, id)
				}
				return err
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		v, err := takeVersions(ctx, tx, 1)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `
			INSERT INTO conversations (title, is_group, direct_key, created_by, created_at, updated_at, member_count, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`, c.Title, c.IsGroup, direct, c.UserIDs[0], ms(c.At), ms(c.At), len(c.UserIDs), v).Scan(&id)
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
		return s.keepWebhook(ctx, tx, "conversation.created", c.At, sqlq.WebhookConversation{ID: id, Title: c.Title,
			IsGroup: c.IsGroup, CreatedBy: c.UserIDs[0], ParticipantIDs: c.UserIDs, CreatedAt: chat.Time{Time: c.At}})
	})
	if err != nil {
		return 0, false, fmt.Errorf("create conversation: %w", err)
	}
	return id, created, nil
}

// Conversation implements chat.Store.
func (s *Store) Conversation(ctx context.Context, id, viewer int64) (chat.Conversation, error) {
	return sqlq.One(s.conversations(ctx, fixed(sqlq.Conversation), viewer, id))
}

// Conversations implements chat.Store: three queries in one read
// transaction, however many conversations viewer is in: how many (up to
// manyConversations), the page by the plan that suits that, and the
// page's participants.
func (s *Store) Conversations(ctx context.Context, viewer int64, before chat.Position, limit int) ([]chat.Conversation, error) {
	if limit <= 0 {
		return []chat.Conversation{}, nil
	}
	return s.conversations(ctx, func(tx *sql.Tx) (string, error) {
		var many bool
		if err := tx.QueryRowContext(ctx, sqlq.ManyConversations, viewer, manyConversations).Scan(&many); err != nil {
			return "", err
		}
		if many {
			return sqlq.ConversationPageByActivity, nil
		}
		return sqlq.ConversationPageByMember, nil
	}, sqlq.ConversationPageArgs(viewer, before, limit)...)
}

// manyConversations is where a page of conversations stops reading all of
// the viewer's and sorting them, and walks every conversation by recent
// activity instead. BenchmarkConversationPage, in 10,000 of 20,000: the
// sort took 25–30 ms a page, the walk 0.75–1.4 ms; sorting 500 costs
// about as much as that walk.
const manyConversations = 500

// conversations reads the conversations of the query that choose picks,
// then the first participants of each of them, in one read transaction:
// all see the same snapshot of the file.
func (s *Store) conversations(ctx context.Context, choose func(*sql.Tx) (string, error), args ...any) ([]chat.Conversation, error) {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	defer tx.Rollback() // read only: nothing to commit
	query, err := choose(tx)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
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
	ids, err := json.Marshal(sqlq.IDs(convs))
	if err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	if rows, err = tx.QueryContext(ctx, sqlq.ParticipantsOfPageSQLite, string(ids), chat.MaxInlineParticipants); err != nil {
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
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?`, title, ms(at), id)
		if err != nil {
			return fmt.Errorf("set title: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chat.ErrNotFound
		}
		if _, _, err = bumpConversation(ctx, tx, id); err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "conversation.updated", at, sqlq.WebhookTitle{ID: id, Title: title, UpdatedAt: chat.Time{Time: at}})
	})
}

// AddParticipant implements chat.Store.
func (s *Store) AddParticipant(ctx context.Context, convID, userID int64, role string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO participants (conversation_id, user_id, role, joined_at, last_read_message_id, last_read_seq)
			SELECT ?, ?, ?, ?, coalesce(last_message_id, 0), last_seq FROM conversations WHERE id = ?
			ON CONFLICT DO NOTHING`, convID, userID, role, ms(at), convID)
		if err != nil {
			return fmt.Errorf("add participant: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &chat.Error{Code: chat.CodeConflict, Detail: "That user is already a participant."}
		}
		if _, err = tx.ExecContext(ctx, `UPDATE conversations SET updated_at = ?, member_count = member_count + 1 WHERE id = ?`, ms(at), convID); err != nil {
			return err
		}
		if _, _, err = bumpConversation(ctx, tx, convID); err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "participant.added", at, sqlq.WebhookParticipant{
			ConversationID: convID, UserID: userID, Role: role, At: chat.Time{Time: at}})
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
		if _, err = tx.ExecContext(ctx, `UPDATE conversations SET updated_at = ?, member_count = member_count - 1 WHERE id = ?`, ms(at), convID); err != nil {
			return err
		}
		v, _, err := bumpConversation(ctx, tx, convID)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, sqlq.Departure, userID, convID, v); err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "participant.removed", at, sqlq.WebhookParticipant{
			ConversationID: convID, UserID: userID, At: chat.Time{Time: at}})
	})
}

// fixed chooses query whatever the data.
func fixed(query string) func(*sql.Tx) (string, error) {
	return func(*sql.Tx) (string, error) { return query, nil }
}
