package sqlq

import (
	"database/sql"

	"github.com/confab/confab/app/chat"
)

// AttachmentColumns are an upload's columns as an attachment shows it,
// from "uploads u": ScanAttachment reads them.
const AttachmentColumns = `u.id, u.name, u.mime, u.size, u.width, u.height, u.thumb_mime <> ''`

// AttachmentsOf reads the attachments of the messages whose ids the
// condition ids matches ("IN (…)" or "= ANY($1)"), each message's in
// order: the message id, then AttachmentColumns.
func AttachmentsOf(ids string) string {
	return `SELECT u.message_id, ` + AttachmentColumns + ` FROM uploads u WHERE u.message_id ` + ids + `
		ORDER BY u.message_id, u.position`
}

// ScanAttachment reads AttachmentColumns, through sql.Scanners (as the
// SQLite store's send path scans).
func ScanAttachment(row Row) (chat.Attachment, error) {
	var (
		id, size, w, h sql.NullInt64
		name, mime     sql.NullString
		thumb          sql.NullBool
	)
	if err := row.Scan(&id, &name, &mime, &size, &w, &h, &thumb); err != nil {
		return chat.Attachment{}, err
	}
	return chat.Attachment{ID: id.Int64, Name: name.String, MIME: mime.String, Size: size.Int64,
		Width: int(w.Int64), Height: int(h.Int64), Thumbnail: thumb.Bool}, nil
}

// ScanAttachments adds the rows of an AttachmentsOf query to out, by
// message.
func ScanAttachments(rows Rows, out map[int64]chat.Attachments) error {
	for rows.Next() {
		var msgID int64
		var a chat.Attachment
		if err := rows.Scan(&msgID, &a.ID, &a.Name, &a.MIME, &a.Size, &a.Width, &a.Height, &a.Thumbnail); err != nil {
			return err
		}
		out[msgID] = append(out[msgID], a)
	}
	return rows.Err()
}

// RemoveAttachments removes the uploads message $1 carries (a deleted
// message's), after ReleaseBlobsOf(`message_id = $1`) with $2 the time.
const RemoveAttachments = `DELETE FROM uploads WHERE message_id = $1`

// ReleaseBlobsOf sets the updated_at of the blobs of the uploads cond
// (on $1) names to $2: run before those uploads are removed, so that the
// collector keeps the files for the grace period after.
func ReleaseBlobsOf(cond string) string {
	return `UPDATE blobs SET updated_at = $2 WHERE sha256 IN (SELECT sha256 FROM uploads WHERE ` + cond + `)`
}

// Uploads and blobs (app/attach.Store). $n placeholders, for both
// stores.
const (
	// ReserveBlob takes blob $1 at $2, and returns whether its files are
	// stored.
	ReserveBlob = `INSERT INTO blobs (sha256, updated_at) VALUES ($1, $2)
		ON CONFLICT (sha256) DO UPDATE SET updated_at = excluded.updated_at
		RETURNING stored`
	// StoreBlob marks blob $1's files stored.
	StoreBlob = `UPDATE blobs SET stored = true WHERE sha256 = $1`
	// UploadBytes is how many bytes owner $1's uploads take.
	UploadBytes = `SELECT coalesce(sum(size), 0) FROM uploads WHERE owner_id = $1`
	// InsertUpload records an upload and returns its id.
	InsertUpload = `INSERT INTO uploads (owner_id, name, mime, size, sha256, width, height, thumb_mime, thumb_width, thumb_height, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`
	// UploadByID reads an upload: UploadColumns.
	UploadByID = `SELECT id, owner_id, name, mime, size, sha256, width, height, thumb_mime, thumb_width, thumb_height,
		coalesce(message_id, 0), coalesce(conversation_id, 0), created_at FROM uploads WHERE id = $1`
	// ExpiredUploads are up to $2 uploads no message carries, made before $1.
	ExpiredUploads = `SELECT id FROM uploads WHERE message_id IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`
	// DeleteExpiredUpload removes upload $1 if it is still unattached.
	DeleteExpiredUpload = `DELETE FROM uploads WHERE id = $1 AND message_id IS NULL`
	// LooseBlobs are up to $2 blobs no upload holds, last taken or let go
	// of before $1.
	LooseBlobs = `SELECT sha256 FROM blobs b WHERE updated_at < $1
		AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = b.sha256) LIMIT $2`
	// DeleteBlob removes blob $1's row: DeleteBlob's condition is
	// LooseBlobs's, checked again in the transaction that deletes.
	DeleteBlob = `DELETE FROM blobs WHERE sha256 = $1 AND updated_at < $2
		AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = blobs.sha256)`
)

// ErrUploadAttached refuses to delete an upload a message carries.
var ErrUploadAttached = &chat.Error{Code: chat.CodeConflict,
	Detail: "This upload is attached to a message: delete the message instead."}
