package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/confab/confab/app/attach"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

var _ attach.Store = (*Store)(nil)

// ReserveBlob implements attach.Store.
func (s *Store) ReserveBlob(ctx context.Context, sha256 string, at time.Time) (bool, error) {
	var stored bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, sqlq.ReserveBlob, sha256, ms(at)).Scan(&stored)
	})
	if err != nil {
		return false, fmt.Errorf("reserve blob: %w", err)
	}
	return stored, nil
}

// CreateUpload implements attach.Store. The owner's row is locked first,
// so that two uploads of one owner on two nodes check the quota one after
// the other.
func (s *Store) CreateUpload(ctx context.Context, u attach.Upload, quota int64) (attach.Upload, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if quota > 0 {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, u.OwnerID); err != nil {
				return err
			}
			var used int64
			if err := tx.QueryRow(ctx, sqlq.UploadBytes, u.OwnerID).Scan(&used); err != nil {
				return err
			}
			if used+u.Size > quota {
				return attach.ErrQuota
			}
		}
		if _, err := tx.Exec(ctx, sqlq.StoreBlob, u.SHA256); err != nil {
			return err
		}
		return tx.QueryRow(ctx, sqlq.InsertUpload, u.OwnerID, u.Name, u.MIME, u.Size, u.SHA256, u.Width, u.Height,
			u.Thumb, u.ThumbWidth, u.ThumbHeight, ms(u.CreatedAt)).Scan(&u.ID)
	})
	if err != nil {
		return attach.Upload{}, fmt.Errorf("create upload: %w", err)
	}
	return u, nil
}

// Upload implements attach.Store.
func (s *Store) Upload(ctx context.Context, id int64) (attach.Upload, error) {
	var u attach.Upload
	var at int64
	err := s.pool.QueryRow(ctx, sqlq.UploadByID, id).Scan(&u.ID, &u.OwnerID, &u.Name, &u.MIME, &u.Size, &u.SHA256, &u.Width, &u.Height,
		&u.Thumb, &u.ThumbWidth, &u.ThumbHeight, &u.MessageID, &u.ConversationID, &at)
	if err != nil {
		return attach.Upload{}, fmt.Errorf("upload: %w", notFound(err))
	}
	u.CreatedAt = time.UnixMilli(at)
	return u, nil
}

// DeleteUpload implements attach.Store.
func (s *Store) DeleteUpload(ctx context.Context, id, owner int64, at time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var attached bool
		err := tx.QueryRow(ctx, `SELECT message_id IS NOT NULL FROM uploads WHERE id = $1 AND owner_id = $2 FOR UPDATE`, id, owner).Scan(&attached)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return chat.ErrNotFound
		case err != nil:
			return err
		case attached:
			return sqlq.ErrUploadAttached
		}
		if _, err := tx.Exec(ctx, sqlq.ReleaseBlobsOf(`id = $1`), id, ms(at)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete upload: %w", err)
	}
	return nil
}

// ExpireUploads implements attach.Store.
func (s *Store) ExpireUploads(ctx context.Context, before, now time.Time, limit int) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlq.ExpiredUploads+` FOR UPDATE SKIP LOCKED`, ms(before), limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, sqlq.ReleaseBlobsOf(`id = ANY($1)`), ids, ms(now)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM uploads WHERE id = ANY($1) AND message_id IS NULL`, ids)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire uploads: %w", err)
	}
	return int(n), nil
}

// CollectBlobs implements attach.Store. Each blob goes in a transaction
// of its own that holds its row while its files are deleted: an upload
// of the same bytes (ReserveBlob) waits for it, and another node's
// collector skips it.
func (s *Store) CollectBlobs(ctx context.Context, before time.Time, limit int, remove func(ctx context.Context, sha256 string) error) (int, error) {
	rows, err := s.pool.Query(ctx, sqlq.LooseBlobs, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("collect blobs: %w", err)
	}
	loose, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("collect blobs: %w", err)
	}
	n := 0
	for _, sha := range loose {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var still bool
			err := tx.QueryRow(ctx, `SELECT true FROM blobs WHERE sha256 = $1 AND updated_at < $2
				AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = blobs.sha256) FOR UPDATE SKIP LOCKED`, sha, ms(before)).Scan(&still)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // taken again meanwhile, or another node's
			}
			if err != nil {
				return err
			}
			if err := remove(ctx, sha); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, sqlq.DeleteBlob, sha, ms(before)); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("collect blob %s: %w", sha, err)
		}
	}
	return n, nil
}
