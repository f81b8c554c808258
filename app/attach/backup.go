package attach

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // the backup's database is read directly

	"github.com/confab/confab/app/blob"
)

// BackupFiles copies into the folder dst (which must not exist) the files
// of every blob the SQLite database at dbPath (a backup just made) holds,
// from the file store src: with that copy, the backup is whole. It
// writes under a temporary name and renames once every file is durable,
// so dst is complete or absent, and returns how many files it copied.
//
// Files nothing held any more at the backup are kept by the collector
// for UPLOAD_GRACE after (the blob's updated_at), so a backup copies all
// of its files within that period.
func BackupFiles(ctx context.Context, dbPath string, src blob.Store, dst string) (int, error) {
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("%s already exists; choose a new path", dst)
	}
	d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: dbPath}).EscapedPath()+"?mode=ro&immutable=1")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	rows, err := d.QueryContext(ctx, `SELECT sha256 FROM blobs WHERE stored`)
	if err != nil {
		return 0, fmt.Errorf("files of the backup: %w", err)
	}
	var shas []string
	for rows.Next() {
		var sha string
		if err := rows.Scan(&sha); err != nil {
			rows.Close()
			return 0, err
		}
		shas = append(shas, sha)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	tmp := dst + ".partial"
	os.RemoveAll(tmp)
	out, err := blob.OpenDir(tmp)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sha := range shas {
		for _, v := range []string{Original, Thumbnail} {
			copied, err := copyBlob(ctx, src, out, blobKey(v, sha))
			if err != nil {
				os.RemoveAll(tmp)
				return n, fmt.Errorf("copy %s: %w", blobKey(v, sha), err)
			}
			if copied {
				n++
			}
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return n, err
	}
	return n, nil
}

// copyBlob copies key from src to dst; false when src has no such blob
// (a file without a thumbnail).
func copyBlob(ctx context.Context, src, dst blob.Store, key string) (bool, error) {
	obj, err := src.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer obj.Close()
	return true, dst.Put(ctx, key, obj, obj.Size())
}
