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

var errUsernameTaken = &chat.Error{Code: chat.CodeConflict, Detail: "A user with that username already exists.",
	Fields: map[string][]string{"username": {"already taken"}}}

// CreateUser implements chat.Store.
func (s *Store) CreateUser(ctx context.Context, username, displayName, passwordHash string, at time.Time) (chat.User, error) {
	// ON CONFLICT rather than a look first: another node may register the
	// same name at the same moment.
	const insert = `
		INSERT INTO users (username, username_key, display_name, display_key, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (username_key) DO NOTHING
		RETURNING ` + sqlq.UserColumns
	args := []any{username, sqlq.Fold(username), displayName, sqlq.Fold(displayName), passwordHash, ms(at)}
	var u chat.User
	var err error
	if !s.webhooks().Has("user.created") {
		u, err = sqlq.ScanUser(s.pool.QueryRow(ctx, insert, args...))
	} else {
		// The event goes in the user's transaction.
		err = s.tx(ctx, func(tx pgx.Tx) error {
			if u, err = sqlq.ScanUser(tx.QueryRow(ctx, insert, args...)); err != nil {
				return err
			}
			return s.keepWebhook(ctx, tx, "user.created", at, sqlq.WebhookUser{ID: u.ID, Username: u.Username,
				DisplayName: u.DisplayName, CreatedAt: u.CreatedAt})
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.User{}, errUsernameTaken
	}
	if err != nil {
		return chat.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// UserByID implements chat.Store. Nothing is cached: another node may have
// changed the user a moment ago.
func (s *Store) UserByID(ctx context.Context, id int64) (chat.Account, error) {
	a, err := sqlq.ScanAccount(s.pool.QueryRow(ctx, sqlq.AccountByID, id))
	if err != nil {
		return chat.Account{}, notFound(err)
	}
	return a, nil
}

// UpdateUser implements chat.Store.
func (s *Store) UpdateUser(ctx context.Context, id int64, displayName, passwordHash *string) (chat.User, error) {
	var displayKey *string
	if displayName != nil {
		k := sqlq.Fold(*displayName)
		displayKey = &k
	}
	u, err := sqlq.ScanUser(s.pool.QueryRow(ctx, `
		UPDATE users SET display_name = coalesce($1, display_name), display_key = coalesce($2, display_key),
			password_hash = coalesce($3, password_hash)
		WHERE id = $4
		RETURNING `+sqlq.UserColumns, displayName, displayKey, passwordHash, id))
	if err != nil {
		return chat.User{}, fmt.Errorf("update user: %w", notFound(err))
	}
	return u, nil
}

// ChangePassword implements chat.Store.
func (s *Store) ChangePassword(ctx context.Context, id int64, passwordHash, keepChain string, at time.Time) (chat.Account, error) {
	var a chat.Account
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = sqlq.ScanAccount(tx.QueryRow(ctx, `
			UPDATE users SET password_hash = $1, token_epoch = token_epoch + 1, kept_session = $2
			WHERE id = $3
			RETURNING `+sqlq.AccountColumns, passwordHash, keepChain, id))
		if err != nil {
			return notFound(err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE refresh_tokens SET revoked_at = $1
			WHERE user_id = $2 AND chain_id <> $3 AND revoked_at IS NULL`, ms(at), id, keepChain)
		return err
	})
	if err != nil {
		return chat.Account{}, fmt.Errorf("change password: %w", err)
	}
	return a, nil
}

// DeleteUser implements chat.Store.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// The user first, then the conversations in id order: the
		// order InsertMessages locks them in. Holding the user also
		// keeps their messages from growing meanwhile (a send locks
		// its sender first).
		// The clock before them (takeVersion): it is everyone's first lock.
		v, err := takeVersion(ctx, tx)
		if err != nil {
			return err
		}
		var uid int64
		if err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&uid); err != nil {
			return notFound(err)
		}
		// The user's messages go with them (ON DELETE CASCADE); a
		// conversation whose last message was one of them falls back to
		// its newest remaining message, or the dangling id would hide the
		// conversation from everyone left in it.
		// The conversations they created are locked here too, in order,
		// rather than by the ON DELETE SET NULL of created_by later.
		rows, err := tx.Query(ctx, `
			SELECT id FROM conversations
			WHERE last_message_id IN (SELECT id FROM messages WHERE sender_id = $1) OR created_by = $1
			   OR id IN (SELECT conversation_id FROM participants WHERE user_id = $1)
			ORDER BY id
			FOR NO KEY UPDATE`, id)
		if err != nil {
			return fmt.Errorf("last messages: %w", err)
		}
		convs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("last messages: %w", err)
		}
		if len(convs) > 0 {
			if _, err := tx.Exec(ctx, `
				UPDATE conversations c SET last_message_id = (
					SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id AND m.sender_id <> $1)
				WHERE c.id = ANY($2) AND c.last_message_id IN (SELECT id FROM messages WHERE sender_id = $1)`, id, convs); err != nil {
				return fmt.Errorf("last messages: %w", err)
			}
		}
		// Their participant rows go too: every conversation they were
		// in counts one member fewer.
		if _, err := tx.Exec(ctx, `
			UPDATE conversations SET member_count = member_count - 1, version = $2
			WHERE id IN (SELECT conversation_id FROM participants WHERE user_id = $1)`, id, v); err != nil {
			return fmt.Errorf("member counts: %w", err)
		}
		// Their uploads go with them: the files stay for the grace
		// period (app/attach).
		if _, err := tx.Exec(ctx, sqlq.ReleaseBlobsOf(`owner_id = $1`), id, ms(time.Now())); err != nil {
			return fmt.Errorf("release files: %w", err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// Setting implements chat.Store. Two nodes that start at once both insert;
// the second waits for the first and keeps its value.
func (s *Store) Setting(ctx context.Context, key string, def []byte) ([]byte, error) {
	var v []byte
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, def)
	b.Queue(`SELECT value FROM settings WHERE key = $1`, key).QueryRow(func(row pgx.Row) error { return row.Scan(&v) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// InsertRefreshToken implements chat.Store.
func (s *Store) InsertRefreshToken(ctx context.Context, t chat.RefreshToken) error {
	return insertRefresh(ctx, s.pool, t)
}

func insertRefresh(ctx context.Context, q querier, t chat.RefreshToken) error {
	_, err := q.Exec(ctx, `
		INSERT INTO refresh_tokens (token_hash, user_id, chain_id, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5)`, t.Hash, t.UserID, t.ChainID, ms(t.ExpiresAt), ms(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// RotateRefreshToken implements chat.Store. The token's row is locked, so
// that two nodes given the same token at once cannot both spend it: the
// second sees it spent, and that is reuse.
func (s *Store) RotateRefreshToken(ctx context.Context, old []byte, next chat.RefreshToken, at time.Time) error {
	var reused bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		reused = false
		var id, userID, expires int64
		var chain string
		var used, revoked *int64
		err := tx.QueryRow(ctx, `
			SELECT id, user_id, chain_id, expires_at, used_at, revoked_at
			FROM refresh_tokens WHERE token_hash = $1
			FOR UPDATE`, old).Scan(&id, &userID, &chain, &expires, &used, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.ErrTokenNotValid
		}
		if err != nil {
			return err
		}
		switch {
		case revoked != nil || expires <= ms(at) || userID != next.UserID:
			return chat.ErrTokenNotValid
		case used != nil:
			// Reuse of a spent token: someone else holds a copy. Revoke
			// the whole login, and commit that, then refuse.
			reused = true
			_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE chain_id = $2 AND revoked_at IS NULL`, ms(at), chain)
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE id = $2`, ms(at), id); err != nil {
			return err
		}
		next.ChainID = chain
		return insertRefresh(ctx, tx, next)
	})
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeInternal {
			return err
		}
		return fmt.Errorf("rotate refresh token: %w", err)
	}
	if reused {
		return chat.ErrTokenReused
	}
	return nil
}

// RevokeRefreshChain implements chat.Store.
func (s *Store) RevokeRefreshChain(ctx context.Context, h []byte, at time.Time) (int64, error) {
	var userID int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var chain string
		err := tx.QueryRow(ctx, `
			SELECT user_id, chain_id FROM refresh_tokens
			WHERE token_hash = $1 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2
			FOR UPDATE`, h, ms(at)).Scan(&userID, &chain)
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.ErrTokenNotValid
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE chain_id = $2 AND revoked_at IS NULL`, ms(at), chain)
		return err
	})
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeInternal {
			return 0, err
		}
		return 0, fmt.Errorf("revoke refresh chain: %w", err)
	}
	return userID, nil
}
