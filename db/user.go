package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

// CreateUser implements chat.Store.
func (s *Store) CreateUser(ctx context.Context, username, displayName, passwordHash string, at time.Time) (chat.User, error) {
	var u chat.User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var holder, reserved int64
		var deleted bool
		err := tx.QueryRowContext(ctx, sqlq.ReservedUsername, sqlq.Fold(username)).Scan(&holder, &deleted, &reserved)
		switch {
		case err == nil && deleted && reserved <= ms(at):
			// A deleted account's name whose reservation is over.
			if _, err := tx.ExecContext(ctx, sqlq.FreeUsername, holder); err != nil {
				return fmt.Errorf("free username: %w", err)
			}
		case err == nil && deleted:
			return chat.ErrUsernameReserved
		case err == nil:
			return &chat.Error{Code: chat.CodeConflict, Detail: "A user with that username already exists.",
				Fields: map[string][]string{"username": {"already taken"}}}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		row := tx.QueryRowContext(ctx, `
			INSERT INTO users (username, username_key, display_name, display_key, password_hash, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			RETURNING `+sqlq.UserColumns,
			username, sqlq.Fold(username), displayName, sqlq.Fold(displayName), passwordHash, ms(at))
		if u, err = sqlq.ScanUser(row); err != nil {
			return err
		}
		return s.keepWebhook(ctx, tx, "user.created", at, sqlq.WebhookUser{ID: u.ID, Username: u.Username,
			DisplayName: u.DisplayName, CreatedAt: u.CreatedAt})
	})
	if err != nil {
		return chat.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// UserByID implements chat.Store.
func (s *Store) UserByID(ctx context.Context, id int64) (chat.Account, error) {
	if a, ok := s.users.get(id); ok {
		return a, nil
	}
	gen := s.users.generation()
	// Every authenticated request runs this: prepared once.
	st, err := s.stmt(ctx, s.read, sqlq.AccountByID)
	if err != nil {
		return chat.Account{}, err
	}
	a, err := sqlq.ScanAccount(st.QueryRowContext(ctx, id))
	if err != nil {
		return chat.Account{}, notFound(err)
	}
	s.users.put(gen, a)
	return a, nil
}

// userCache keeps accounts by id: every authenticated request and socket
// looks its user up. Every change of a user goes through this Store, which
// drops the cache entry after committing; a read that raced with a change
// does not store what it read (the generation moved on).
type userCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[int64]chat.Account
}

// maxCachedUsers bounds the cache; past it, it starts over.
const maxCachedUsers = 1 << 16

func (c *userCache) get(id int64) (chat.Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[id]
	return a, ok
}

func (c *userCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *userCache) put(gen uint64, a chat.Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedUsers {
		c.m = map[int64]chat.Account{}
	}
	c.m[a.ID] = a
}

func (c *userCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, id)
}

// UpdateUser implements chat.Store.
func (s *Store) UpdateUser(ctx context.Context, id int64, displayName, passwordHash *string) (chat.User, error) {
	var u chat.User
	var displayKey *string
	if displayName != nil {
		k := sqlq.Fold(*displayName)
		displayKey = &k
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `
			UPDATE users SET display_name = coalesce(?, display_name), display_key = coalesce(?, display_key),
				password_hash = coalesce(?, password_hash)
			WHERE id = ?
			RETURNING `+sqlq.UserColumns, displayName, displayKey, passwordHash, id)
		var err error
		u, err = sqlq.ScanUser(row)
		return notFound(err)
	})
	s.users.forget(id)
	if err != nil {
		return chat.User{}, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

// ChangePassword implements chat.Store.
func (s *Store) ChangePassword(ctx context.Context, id int64, passwordHash, keepChain string, at time.Time) (chat.Account, error) {
	var a chat.Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = sqlq.ScanAccount(tx.QueryRowContext(ctx, `
			UPDATE users SET password_hash = ?, token_epoch = token_epoch + 1, kept_session = ?
			WHERE id = ?
			RETURNING `+sqlq.AccountColumns, passwordHash, keepChain, id))
		if err != nil {
			return notFound(err)
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE refresh_tokens SET revoked_at = ?
			WHERE user_id = ? AND chain_id <> ? AND revoked_at IS NULL`, ms(at), id, keepChain)
		return err
	})
	s.users.forget(id)
	if err != nil {
		return chat.Account{}, fmt.Errorf("change password: %w", err)
	}
	return a, nil
}

// Setting implements chat.Store.
func (s *Store) Setting(ctx context.Context, key string, def []byte) ([]byte, error) {
	var v []byte
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, def); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// InsertRefreshToken implements chat.Store.
func (s *Store) InsertRefreshToken(ctx context.Context, t chat.RefreshToken) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return insertRefresh(ctx, tx, t) })
}

func insertRefresh(ctx context.Context, tx *sql.Tx, t chat.RefreshToken) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO refresh_tokens (token_hash, user_id, chain_id, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?)`, t.Hash, t.UserID, t.ChainID, ms(t.ExpiresAt), ms(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// RotateRefreshToken implements chat.Store.
func (s *Store) RotateRefreshToken(ctx context.Context, old []byte, next chat.RefreshToken, at time.Time) error {
	var reused bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id, userID, expires int64
		var chain string
		var used, revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `
			SELECT id, user_id, chain_id, expires_at, used_at, revoked_at
			FROM refresh_tokens WHERE token_hash = ?`, old).Scan(&id, &userID, &chain, &expires, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrTokenNotValid
		}
		if err != nil {
			return err
		}
		switch {
		case revoked.Valid || expires <= ms(at) || userID != next.UserID:
			return chat.ErrTokenNotValid
		case used.Valid:
			// Reuse of a spent token: someone else holds a copy. Revoke
			// the whole login, and commit that, then refuse.
			reused = true
			_, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE chain_id = ? AND revoked_at IS NULL`, ms(at), chain)
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE id = ?`, ms(at), id); err != nil {
			return err
		}
		next.ChainID = chain
		return insertRefresh(ctx, tx, next)
	})
	if err != nil {
		return err
	}
	if reused {
		return chat.ErrTokenReused
	}
	return nil
}

// RevokeRefreshChain implements chat.Store.
func (s *Store) RevokeRefreshChain(ctx context.Context, h []byte, at time.Time) (int64, error) {
	var userID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var chain string
		err := tx.QueryRowContext(ctx, `
			SELECT user_id, chain_id FROM refresh_tokens
			WHERE token_hash = ? AND revoked_at IS NULL AND used_at IS NULL AND expires_at > ?`, h, ms(at)).Scan(&userID, &chain)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrTokenNotValid
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE chain_id = ? AND revoked_at IS NULL`, ms(at), chain)
		return err
	})
	return userID, err
}
