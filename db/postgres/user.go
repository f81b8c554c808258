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
	var u chat.User
	err := s.tx(ctx, func(tx pgx.Tx) error {
		insert := func() (err error) {
			u, err = sqlq.ScanUser(tx.QueryRow(ctx, `
				INSERT INTO users (username, username_key, display_name, display_key, password_hash, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (username_key) DO NOTHING
				RETURNING `+sqlq.UserColumns,
				username, sqlq.Fold(username), displayName, sqlq.Fold(displayName), passwordHash, ms(at)))
			return err
		}
		// The event goes in the user's transaction.
		created := func() error {
			return s.keepWebhook(ctx, tx, "user.created", at, sqlq.WebhookUser{ID: u.ID, Username: u.Username,
				DisplayName: u.DisplayName, CreatedAt: u.CreatedAt})
		}
		err := insert()
		if !errors.Is(err, pgx.ErrNoRows) {
			if err != nil {
				return err
			}
			return created()
		}
		// Taken: by a live account, or by a deleted one's reservation,
		// which may be over. The row that holds it is locked meanwhile.
		var holder, reserved int64
		var deleted bool
		err = tx.QueryRow(ctx, sqlq.ReservedUsername+` FOR UPDATE`, sqlq.Fold(username)).Scan(&holder, &deleted, &reserved)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errUsernameTaken // gone meanwhile: the client may try again
		case err != nil:
			return err
		case !deleted:
			return errUsernameTaken
		case reserved > ms(at):
			return chat.ErrUsernameReserved
		}
		if _, err := tx.Exec(ctx, sqlq.FreeUsername, holder); err != nil {
			return fmt.Errorf("free username: %w", err)
		}
		if err := insert(); err != nil {
			return err
		}
		return created()
	})
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeInternal {
			return chat.User{}, err
		}
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
