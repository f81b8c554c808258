package attach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/confab/confab/app/blob"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/media"
)

// Options configures the Service. Zero values are not defaults: main
// fills every field from config.
type Options struct {
	// MaxBytes is the largest file accepted (MAX_UPLOAD_BYTES).
	MaxBytes int64
	// Quota is how many bytes of uploads one user may keep
	// (UPLOAD_QUOTA_BYTES); 0: no quota.
	Quota int64
	// PerMinute is how many uploads one user may make per minute
	// (UPLOADS_PER_MINUTE).
	PerMinute int
	// MaxPixels is the most pixels an image may have
	// (UPLOAD_MAX_PIXELS).
	MaxPixels int64
	// Grace is how long an upload no message carries is kept, and a
	// file nothing holds (UPLOAD_GRACE).
	Grace time.Duration
	// TempDir holds uploads while they are received and processed.
	TempDir string
	// Off, when set, refuses every upload with it (CodeUploadsOff): a
	// server of several nodes without an object store.
	Off string
	Now func() time.Time
	Log *slog.Logger
}

// Service is the attachments' rules.
type Service struct {
	store  Store
	files  blob.Store
	member func(ctx context.Context, convID, userID int64) error
	sign   *Signer
	opt    Options
	// work bounds the uploads processed at once: decoding an image holds
	// about 12 bytes per pixel.
	work chan struct{}

	mu      sync.Mutex
	perUser map[int64]*rate.Limiter
}

// New returns the Service. member reports chat.ErrNotFound when a user is
// not a participant of a conversation.
func New(store Store, files blob.Store, member func(ctx context.Context, convID, userID int64) error, sign *Signer, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, files: files, member: member, sign: sign, opt: opt,
		work: make(chan struct{}, 1), perUser: map[int64]*rate.Limiter{}}
}

// Signer returns the service's URL signer.
func (s *Service) Signer() *Signer { return s.sign }

var errTooLarge = &chat.Error{Code: chat.CodeTooLarge, Detail: "This upload is larger than the server accepts."}

// Upload receives a file of owner's from body: name is the client's name
// for it (only shown), the type is sniffed from the bytes. Images are
// stored re-encoded without their metadata, with a thumbnail.
func (s *Service) Upload(ctx context.Context, owner int64, name string, body io.Reader) (Upload, error) {
	if s.opt.Off != "" {
		return Upload{}, &chat.Error{Code: chat.CodeUploadsOff, Detail: s.opt.Off}
	}
	if !s.allow(owner) {
		return Upload{}, &chat.Error{Code: chat.CodeRateLimited,
			Detail: fmt.Sprintf("Too many uploads: at most %d per minute.", s.opt.PerMinute)}
	}
	name = cleanName(name)
	in, err := s.spool(body)
	if err != nil {
		return Upload{}, err
	}
	defer removeTemp(in)
	out, err := os.CreateTemp(s.opt.TempDir, "upload-*")
	if err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	defer removeTemp(out)

	select {
	case s.work <- struct{}{}:
	case <-ctx.Done():
		return Upload{}, &chat.Error{Code: chat.CodeOverloaded, Detail: "The server is busy with other uploads; retry shortly.", Err: ctx.Err()}
	}
	info, err := media.Process(in, out, media.Limits{MaxPixels: s.opt.MaxPixels})
	<-s.work
	switch {
	case errors.Is(err, media.ErrTooManyPixels):
		msg := fmt.Sprintf("This image has more than %d pixels.", s.opt.MaxPixels)
		return Upload{}, &chat.Error{Code: chat.CodeImageTooLarge, Detail: msg, Fields: map[string][]string{"file": {msg}}}
	case errors.Is(err, media.ErrBadImage):
		msg := "This file looks like an image but is not a valid one."
		return Upload{}, &chat.Error{Code: chat.CodeInvalidImage, Detail: msg, Fields: map[string][]string{"file": {msg}}}
	case err != nil:
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	if s.opt.Quota > 0 && info.Size > s.opt.Quota {
		return Upload{}, ErrQuota
	}

	stored, err := s.store.ReserveBlob(ctx, info.SHA256, s.opt.Now())
	if err != nil {
		return Upload{}, err
	}
	if !stored {
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return Upload{}, fmt.Errorf("upload: %w", err)
		}
		if err := s.files.Put(ctx, blobKey(Original, info.SHA256), out, info.Size); err != nil {
			return Upload{}, fmt.Errorf("upload: store the file: %w", err)
		}
		if t := info.Thumbnail; t != nil {
			if err := s.files.Put(ctx, blobKey(Thumbnail, info.SHA256), strings.NewReader(string(t.Data)), int64(len(t.Data))); err != nil {
				return Upload{}, fmt.Errorf("upload: store the thumbnail: %w", err)
			}
		}
	}
	u := Upload{OwnerID: owner, Name: name, MIME: info.MIME, Size: info.Size, SHA256: info.SHA256,
		Width: info.Width, Height: info.Height, CreatedAt: s.opt.Now()}
	if t := info.Thumbnail; t != nil {
		u.Thumb, u.ThumbWidth, u.ThumbHeight = t.MIME, t.Width, t.Height
	}
	return s.store.CreateUpload(ctx, u, s.opt.Quota)
}

// DeleteUpload removes owner's upload id that no message carries yet (a
// file taken back before sending): chat.ErrNotFound for anyone else's,
// CodeConflict once a message carries it.
func (s *Service) DeleteUpload(ctx context.Context, owner, id int64) error {
	return s.store.DeleteUpload(ctx, id, owner, s.opt.Now())
}

// spool copies body into a temporary file, refusing more than MaxBytes,
// and returns it rewound.
func (s *Service) spool(body io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(s.opt.TempDir, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, s.opt.MaxBytes+1))
	if err == nil && n > s.opt.MaxBytes {
		err = &chat.Error{Code: chat.CodeTooLarge,
			Detail: fmt.Sprintf("This file is larger than the %d bytes allowed.", s.opt.MaxBytes)}
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		removeTemp(f)
		var ce *chat.Error
		if errors.As(err, &ce) {
			return nil, err
		}
		var mbe interface{ MaxBytes() int64 }
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, fmt.Errorf("upload: receive the file: %w", err)
	}
	return f, nil
}

func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// allow takes one of owner's uploads of this minute.
func (s *Service) allow(owner int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.perUser[owner]
	if l == nil {
		if len(s.perUser) > 10000 {
			clear(s.perUser) // a bucket at rest is a full one: forgetting it loses nothing
		}
		l = rate.NewLimiter(rate.Limit(float64(s.opt.PerMinute)/60), max(s.opt.PerMinute, 1))
		s.perUser[owner] = l
	}
	return l.AllowN(s.opt.Now(), 1)
}

// maxName is the longest file name kept, in characters.
const maxName = 255

// cleanName makes a client's file name safe to show and to send back in
// Content-Disposition: its last path element, without control
// characters, at most maxName characters, "file" when nothing is left.
func cleanName(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxName {
		name = string([]rune(name)[:maxName])
	}
	if name == "" || name == "." || name == "/" {
		return "file"
	}
	return name
}

// File is a stored file to serve.
type File struct {
	blob.Object
	Name, MIME, ETag string
	Modified         time.Time
}

// Open opens variant of upload id for viewer: its owner, or a participant
// of the conversation whose message carries it; chat.ErrNotFound for
// anyone else, as for an upload that does not exist.
func (s *Service) Open(ctx context.Context, viewer, id int64, variant string) (File, error) {
	u, err := s.store.Upload(ctx, id)
	if err != nil {
		return File{}, err
	}
	switch {
	case u.MessageID == 0 && u.OwnerID != viewer:
		return File{}, chat.ErrNotFound
	case u.MessageID != 0:
		if err := s.member(ctx, u.ConversationID, viewer); err != nil {
			return File{}, err
		}
	}
	return s.open(ctx, u, variant)
}

// OpenSigned opens variant of upload id for whoever holds a URL signed
// for it (Signer.Check).
func (s *Service) OpenSigned(ctx context.Context, id int64, variant, exp, sig string) (File, error) {
	if err := s.sign.Check(id, variant, exp, sig); err != nil {
		return File{}, err
	}
	u, err := s.store.Upload(ctx, id)
	if err != nil {
		return File{}, err
	}
	return s.open(ctx, u, variant)
}

func (s *Service) open(ctx context.Context, u Upload, variant string) (File, error) {
	if s.files == nil {
		return File{}, chat.ErrNotFound
	}
	f := File{Name: u.Name, MIME: u.MIME, ETag: `"` + u.SHA256 + `"`, Modified: u.CreatedAt}
	if variant == Thumbnail {
		if u.Thumb == "" {
			return File{}, chat.ErrNotFound
		}
		f.MIME, f.ETag = u.Thumb, `"t-`+u.SHA256+`"`
		f.Name = strings.TrimSuffix(u.Name, path.Ext(u.Name)) + thumbExt(u.Thumb)
	}
	obj, err := s.files.Open(ctx, blobKey(variant, u.SHA256))
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			s.opt.Log.Error("an upload's file is missing", "upload_id", u.ID, "sha256", u.SHA256, "variant", variant)
			return File{}, chat.ErrNotFound
		}
		return File{}, fmt.Errorf("open attachment: %w", err)
	}
	f.Object = obj
	return f, nil
}

func thumbExt(mime string) string {
	if mime == media.MIMEPNG {
		return ".png"
	}
	return ".jpg"
}

// UploadJSON is an upload as POST /api/uploads/ answers it.
type UploadJSON struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	MIME      string     `json:"mime"`
	Size      int64      `json:"size"`
	SHA256    string     `json:"sha256"`
	Width     int        `json:"width"`
	Height    int        `json:"height"`
	Thumbnail *ThumbJSON `json:"thumbnail"`
}

// ThumbJSON is an upload's thumbnail's size.
type ThumbJSON struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// JSON is u as the API shows it.
func (u Upload) JSON() UploadJSON {
	out := UploadJSON{ID: u.ID, Name: u.Name, MIME: u.MIME, Size: u.Size, SHA256: u.SHA256, Width: u.Width, Height: u.Height}
	if u.Thumb != "" {
		out.Thumbnail = &ThumbJSON{u.ThumbWidth, u.ThumbHeight}
	}
	return out
}

// collectEvery is how often the collector runs; collectBatch how many
// uploads or blobs one of its transactions removes at most, and
// collectTimeout bounds one run.
const (
	collectEvery   = 10 * time.Minute
	collectBatch   = 500
	collectTimeout = 5 * time.Minute
)

// Collect removes the uploads no message carries that are older than the
// grace period, then the files no upload holds any more (once the grace
// period has passed since they were let go of). It returns how many of
// each went.
func (s *Service) Collect(ctx context.Context) (uploads, blobs int, err error) {
	now := s.opt.Now()
	before := now.Add(-s.opt.Grace)
	for {
		n, err := s.store.ExpireUploads(ctx, before, now, collectBatch)
		uploads += n
		if err != nil {
			return uploads, blobs, err
		}
		if n < collectBatch {
			break
		}
	}
	remove := func(ctx context.Context, sha256 string) error {
		for _, v := range []string{Thumbnail, Original} {
			if err := s.files.Delete(ctx, blobKey(v, sha256)); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		n, err := s.store.CollectBlobs(ctx, before, collectBatch, remove)
		blobs += n
		if err != nil || n < collectBatch {
			return uploads, blobs, err
		}
	}
}

// Run collects every collectEvery until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(collectEvery)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, collectTimeout)
		uploads, blobs, err := s.Collect(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			s.opt.Log.Error("attachments: collect", "err", err, "uploads", uploads, "files", blobs)
		case uploads+blobs > 0:
			s.opt.Log.Info("attachments: collected", "uploads", uploads, "files", blobs)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
