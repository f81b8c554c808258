package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/attach"
	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/media"
)

// UploadTimeout bounds an upload or a download of an attachment (Deadline),
// in place of RequestTimeout: a file of MAX_UPLOAD_BYTES takes minutes on
// a slow phone connection.
const UploadTimeout = 10 * time.Minute

// longRequest reports whether path is one of the routes UploadTimeout
// bounds rather than RequestTimeout.
func longRequest(path string) bool {
	return path == "/api/uploads/" || strings.HasPrefix(path, "/api/attachments/")
}

// handleUpload is POST /api/uploads/: the file as the multipart field
// "file", or as the raw body with ?name=.
func (a *API) handleUpload(c echo.Context) error {
	if a.attach == nil {
		return &chat.Error{Code: chat.CodeUploadsOff, Detail: "This server keeps no files."}
	}
	r := c.Request()
	ctx := r.Context() // UploadTimeout (Deadline)
	// The server's read deadline is for ordinary requests: a large file
	// on a slow connection gets the upload's.
	http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(UploadTimeout))
	r.Body = http.MaxBytesReader(c.Response(), r.Body, a.opt.MaxUploadBytes+1<<20) // room for the multipart envelope
	user := currentUser(c)

	name, body := c.QueryParam("name"), io.Reader(r.Body)
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		part, err := filePart(multipart.NewReader(r.Body, params["boundary"]))
		if err != nil {
			return err
		}
		defer part.Close()
		name, body = part.FileName(), part
	}
	u, err := a.attach.Upload(ctx, user.ID, name, body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u.JSON())
}

// handleDeleteUpload is DELETE /api/uploads/{id}/: the uploader takes
// back a file no message carries yet.
func (a *API) handleDeleteUpload(c echo.Context) error {
	if a.attach == nil {
		return chat.ErrNotFound
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := a.attach.DeleteUpload(c.Request().Context(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

var errNoFile = chat.InvalidField("file", "No file was submitted: send it as the multipart field \"file\", or as the body with ?name=.")

// filePart returns the part named "file" of a multipart body.
func filePart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, errNoFile
		}
		if err != nil {
			if isTooLarge(err) {
				return nil, &chat.Error{Code: chat.CodeTooLarge, Detail: "This file is larger than allowed."}
			}
			return nil, chat.InvalidField("file", "Not a valid multipart body.")
		}
		if p.FormName() == "file" {
			return p, nil
		}
		p.Close()
	}
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// handleAttachment is GET /api/attachments/{id}/ and .../thumbnail/:
// for the owner of an upload not attached yet or a participant of the
// conversation whose message carries it (an access token), or for the
// holder of a signed URL (exp and sig).
func (a *API) handleAttachment(variant string) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.attach == nil {
			return chat.ErrNotFound
		}
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			return chat.ErrNotFound
		}
		r := c.Request()
		ctx := r.Context() // UploadTimeout (Deadline)
		var f attach.File
		if sig := c.QueryParam("sig"); sig != "" || c.QueryParam("exp") != "" {
			f, err = a.attach.OpenSigned(ctx, id, variant, c.QueryParam("exp"), sig)
		} else {
			token, ok := auth.BearerToken(r)
			if !ok {
				return &chat.Error{Code: chat.CodeNotAuthenticated, Detail: "Authentication credentials were not provided."}
			}
			u, _, aerr := a.auth.Authenticate(ctx, token)
			if aerr != nil {
				return aerr
			}
			f, err = a.attach.Open(ctx, u.ID, id, variant)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		serveFile(c.Response(), r.WithContext(ctx), f)
		return nil
	}
}

// serveFile writes f with Range, ETag and conditional requests
// (http.ServeContent). Only a raster image Confab re-encoded is shown
// inline; anything else is a download, under a policy that runs nothing,
// so that an uploaded HTML or SVG file never runs script on this origin.
func serveFile(w http.ResponseWriter, r *http.Request, f attach.File) {
	h := w.Header()
	h.Set("Content-Type", f.MIME)
	h.Set("ETag", f.ETag)
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	disposition := "attachment"
	if media.Inline(f.MIME) {
		disposition = "inline"
	}
	h.Set("Content-Disposition", disposition+"; filename*=UTF-8''"+extValue(f.Name))
	http.ServeContent(w, r, "", f.Modified, f)
}

// extValue percent-encodes s as an RFC 8187 ext-value: every byte but the
// attr-chars, so that no name can end the header's parameter or add one.
func extValue(s string) string {
	const attrChars = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(attrChars, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
