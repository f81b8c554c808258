package sqlq

import "github.com/confab/confab/app/chat"

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

// ScanAttachment reads AttachmentColumns.
func ScanAttachment(row Row) (chat.Attachment, error) {
	var a chat.Attachment
	return a, row.Scan(&a.ID, &a.Name, &a.MIME, &a.Size, &a.Width, &a.Height, &a.Thumbnail)
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
// message's).
const RemoveAttachments = `DELETE FROM uploads WHERE message_id = $1`
