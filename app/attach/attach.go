// Package attach is Confab's attachments: uploads (a file a user sends,
// made safe by app/media and kept in an app/blob store), the rules of who
// may read them, their signed URLs, and the garbage collector that
// removes the files nothing holds any more (docs/API.md, "Attachments").
//
// Files are kept by the SHA-256 of their bytes as stored, so the same
// file sent twice is kept once: "f/<sha256>" and, for an image,
// "t/<sha256>", its thumbnail. An upload takes its blob first (the
// store's blobs row, updated_at now), stores the files when they are not
// stored yet, and only then records the upload, so that the database
// never names a file that is not durable. The collector removes a blob
// once no upload holds it and it was last taken or let go of more than
// the grace period ago, holding the blob's row while it deletes the
// files, so that an upload of the same bytes waits for it rather than
// losing its file.
package attach

import (
	"context"
	"errors"
	"time"

	"github.com/confab/confab/app/chat"
)

// Store is what attachments keep in the database: implemented by both
// stores (db and db/postgres).
type Store interface {
	// ReserveBlob takes blob sha256 at at (creating its row), so that the
	// collector leaves it alone for the grace period, and reports whether
	// its files are stored already.
	ReserveBlob(ctx context.Context, sha256 string, at time.Time) (stored bool, err error)
	// CreateUpload records u, whose blob's files are now stored, unless
	// the owner's uploads would then take more than quota bytes
	// (ErrQuota; 0: no quota).
	CreateUpload(ctx context.Context, u Upload, quota int64) (Upload, error)
	// Upload returns upload id: chat.ErrNotFound when there is none.
	Upload(ctx context.Context, id int64) (Upload, error)
	// DeleteUpload removes upload id when owner owns it and no message
	// carries it, letting go of its blob at at: chat.ErrNotFound when it
	// is not owner's, CodeConflict when a message carries it.
	DeleteUpload(ctx context.Context, id, owner int64, at time.Time) error
	// ExpireUploads removes up to limit uploads that no message carries,
	// made before before, and returns how many; their blobs are let go of
	// at now.
	ExpireUploads(ctx context.Context, before, now time.Time, limit int) (int, error)
	// CollectBlobs removes up to limit blobs that no upload holds and that
	// were last taken or let go of before before: for each, in one
	// transaction that holds its row, remove deletes its files, then its
	// row goes. It returns how many went.
	CollectBlobs(ctx context.Context, before time.Time, limit int, remove func(ctx context.Context, sha256 string) error) (int, error)
}

// Upload is a file a user sent: its owner's until a message carries it.
type Upload struct {
	ID      int64
	OwnerID int64
	Name    string
	MIME    string
	Size    int64
	SHA256  string
	Width   int
	Height  int
	// Thumb is the thumbnail's MIME type, "" without one.
	Thumb                   string
	ThumbWidth, ThumbHeight int
	// MessageID and ConversationID are those of the message that
	// carries it; 0 before it is attached.
	MessageID, ConversationID int64
	CreatedAt                 time.Time
}

// ErrQuota refuses an upload past the owner's storage quota.
var ErrQuota = &chat.Error{Code: chat.CodeQuota, Detail: "This upload would take you past your storage quota."}

// Variants of a stored file.
const (
	Original  = "f"
	Thumbnail = "t"
)

// blobKey is the file-store key of variant of blob sha256.
func blobKey(variant, sha256 string) string { return variant + "/" + sha256 }

var errNoThumbnail = errors.New("no thumbnail")
