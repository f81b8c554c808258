package attach

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/confab/confab/app/chat"
)

// Signer makes and checks the signed URLs of attachments: an HMAC-SHA256
// over the upload's id, the variant and the expiry, which opens the file
// without an Authorization header (an <img src>) until the expiry.
type Signer struct {
	key []byte
	now func() time.Time
	// ttl is how long a URL works at least; it works up to twice that,
	// so that every URL made within one period is the same (a browser
	// caches the file once per period, not once per page).
	ttl time.Duration
}

// NewSigner returns a Signer whose key is derived from secret (the
// server's token secret: a URL outlives no change of it), with URLs that
// work for at least ttl.
func NewSigner(secret []byte, ttl time.Duration, now func() time.Time) *Signer {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("confab attachment urls"))
	if now == nil {
		now = time.Now
	}
	return &Signer{key: mac.Sum(nil), now: now, ttl: ttl}
}

// Path is the address of variant of upload id, relative to the server.
func Path(id int64, variant string) string {
	p := "/api/attachments/" + strconv.FormatInt(id, 10) + "/"
	if variant == Thumbnail {
		p += "thumbnail/"
	}
	return p
}

// Sign sets a's URL and ThumbnailURL (for one with a thumbnail).
func (s *Signer) Sign(a *chat.Attachment) {
	// The expiry is the end of the period after the current one.
	exp := s.now().Truncate(s.ttl).Add(2 * s.ttl).Unix()
	a.URL = s.url(a.ID, Original, exp)
	if a.Thumbnail {
		u := s.url(a.ID, Thumbnail, exp)
		a.ThumbnailURL = &u
	}
}

func (s *Signer) url(id int64, variant string, exp int64) string {
	return Path(id, variant) + "?exp=" + strconv.FormatInt(exp, 10) + "&sig=" + s.sig(id, variant, exp)
}

func (s *Signer) sig(id int64, variant string, exp int64) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(strconv.FormatInt(id, 10) + ":" + variant + ":" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var (
	errSignature = &chat.Error{Code: chat.CodeSignature, Detail: "This link is not valid: get a new one from the message."}
	errExpired   = &chat.Error{Code: chat.CodeSignature, Detail: "This link has expired: get a new one from the message."}
)

// Check verifies the exp and sig of a URL of variant of upload id.
func (s *Signer) Check(id int64, variant, exp, sig string) error {
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return errSignature
	}
	want := s.sig(id, variant, e)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return errSignature
	}
	if s.now().Unix() >= e {
		return errExpired
	}
	return nil
}
