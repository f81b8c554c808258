package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/confab/confab/app/attach"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/sqlq"
)

var _ attach.Store = (*Store)(nil)

// ReserveBlob implements attach.Store.
func (s *Store) ReserveBlob(ctx context.Context, sha256 string, at time.Time) (bool, error) {
	var stored bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, sqlq.ReserveBlob, sha256, ms(at)).Scan(&stored)
	})
	if err != nil {
		return false, fmt.Errorf("reserve blob: %w", err)
	}
	return stored, nil
}

// CreateUpload implements attach.Store.
func (s *Store) CreateUpload(ctx context.Context, u attach.Upload, quota int64) (attach.Upload, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if quota > 0 {
			var used int64
			if err := tx.QueryRowContext(ctx, sqlq.UploadBytes, u.OwnerID).Scan(&used); err != nil {
				return err
			}
			if used+u.Size > quota {
				return attach.ErrQuota
			}
		}
		if _, err := tx.ExecContext(ctx, sqlq.StoreBlob, u.SHA256); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, sqlq.InsertUpload, u.OwnerID, u.Name, u.MIME, u.Size, u.SHA256, u.Width, u.Height,
			u.Thumb, u.ThumbWidth, u.ThumbHeight, ms(u.CreatedAt)).Scan(&u.ID)
	})
	if err != nil {
		return attach.Upload{}, fmt.Errorf("create upload: %w", err)
	}
	return u, nil
}

// Upload implements attach.Store.
func (s *Store) Upload(ctx context.Context, id int64) (attach.Upload, error) {
	u, err := scanUpload(s.read.QueryRowContext(ctx, sqlq.UploadByID, id))
	if err != nil {
		return attach.Upload{}, fmt.Errorf("upload: %w", notFound(err))
	}
	return u, nil
}

func scanUpload(row sqlq.Row) (attach.Upload, error) {
	var u attach.Upload
	var at int64
	err := row.Scan(&u.ID, &u.OwnerID, &u.Name, &u.MIME, &u.Size, &u.SHA256, &u.Width, &u.Height, &u.Thumb, &u.ThumbWidth, &u.ThumbHeight,
		&u.MessageID, &u.ConversationID, &at)
	u.CreatedAt = time.UnixMilli(at)
	return u, err
}

// DeleteUpload implements attach.Store.
func (s *Store) DeleteUpload(ctx context.Context, id, owner int64, at time.Time) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var attached bool
		err := tx.QueryRowContext(ctx, `SELECT message_id IS NOT NULL FROM uploads WHERE id = $1 AND owner_id = $2`, id, owner).Scan(&attached)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return chat.ErrNotFound
		case err != nil:
			return err
		case attached:
			return sqlq.ErrUploadAttached
		}
		if _, err := tx.ExecContext(ctx, sqlq.ReleaseBlobsOf(`id = $1`), id, ms(at)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete upload: %w", err)
	}
	return nil
}

// ExpireUploads implements attach.Store.
func (s *Store) ExpireUploads(ctx context.Context, before, now time.Time, limit int) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		expired := `id IN (` + sqlq.ExpiredUploads + `)`
		if _, err := tx.ExecContext(ctx, `UPDATE blobs SET updated_at = $3 WHERE sha256 IN (SELECT sha256 FROM uploads WHERE `+expired+`)`,
			ms(before), limit, ms(now)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE `+expired, ms(before), limit)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		n = int(m)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire uploads: %w", err)
	}
	return n, nil
}

// CollectBlobs implements attach.Store. Each blob goes in a write
// transaction of its own, which holds the one writer while its files are
// deleted: an upload of the same bytes (ReserveBlob) waits for it.
func (s *Store) CollectBlobs(ctx context.Context, before time.Time, limit int, remove func(ctx context.Context, sha256 string) error) (int, error) {
	rows, err := s.read.QueryContext(ctx, sqlq.LooseBlobs, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("collect blobs: %w", err)
	}
	var loose []string
	for rows.Next() {
		var sha string
		if err := rows.Scan(&sha); err != nil {
			rows.Close()
			return 0, fmt.Errorf("collect blobs: %w", err)
		}
		loose = append(loose, sha)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("collect blobs: %w", err)
	}
	n := 0
	for _, sha := range loose {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var still bool
			err := tx.QueryRowContext(ctx, `SELECT true FROM blobs WHERE sha256 = $1 AND updated_at < $2
				AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = blobs.sha256)`, sha, ms(before)).Scan(&still)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // taken again meanwhile
			}
			if err != nil {
				return err
			}
			if err := remove(ctx, sha); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, sqlq.DeleteBlob, sha, ms(before)); err != nil {
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
