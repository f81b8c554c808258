// Package auth owns accounts and credentials: password hashing, JWTs shaped
// like SimpleJWT's, refresh-token rotation with reuse detection, and the
// one-time WebSocket tickets. It never logs a password or a token.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/confab/confab/app/chat"
)

// Token types, the token_type claim.
const (
	Access  = "access"
	Refresh = "refresh"
)

// Claims are SimpleJWT's (token_type, user_id, jti, iat, exp) and the
// session the token belongs to (sid, epoch).
type Claims struct {
	TokenType string `json:"token_type"`
	UserID    int64  `json:"user_id"`
	Session
	jwt.RegisteredClaims
}

// Session says which login a token belongs to: SID is its refresh chain,
// Epoch the user's token epoch when it was issued. A password change
// moves the epoch on and keeps one chain: tokens of an older epoch are
// then valid only in that chain. Tokens issued before sessions existed
// have neither, and count as another session.
type Session struct {
	SID   string `json:"sid,omitempty"`
	Epoch int64  `json:"epoch,omitempty"`
}

// Expiry returns the exp claim.
func (c Claims) Expiry() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

// Tokens issues and verifies HS256 JWTs. The algorithm is pinned: a token
// signed any other way (alg none included) is rejected.
type Tokens struct {
	secret     []byte
	accessTTL  time.Duration
	refreshTTL time.Duration
	now        func() time.Time

	// verified holds access tokens whose signature and claims Parse has
	// checked, by their exact text: every request of a client carries the
	// same one, and checking it again (base64, HMAC, JSON) was a tenth of
	// the server's CPU per sent message. A hit still has its times
	// checked against the clock. Cleared when it reaches maxVerified.
	mu       sync.Mutex
	verified map[string]Claims
}

// maxVerified bounds Tokens.verified: about 1 MB of tokens.
const maxVerified = 4096

// ClockLeeway is how far in the future a token's iat (or nbf) may be and
// still be accepted: the clocks of the nodes that issue and check tokens
// may disagree by that much. A token from further ahead is refused. The
// expiry gets no leeway: a token is refused from its exp on, as before.
const ClockLeeway = 30 * time.Second

// NewTokens returns a Tokens signing with secret.
func NewTokens(secret []byte, accessTTL, refreshTTL time.Duration, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{secret: secret, accessTTL: accessTTL, refreshTTL: refreshTTL, now: now}
}

// Issue signs a new token of type typ for userID in session s.
func (t *Tokens) Issue(userID int64, typ string, sess Session) (string, Claims, error) {
	ttl := t.accessTTL
	if typ == Refresh {
		ttl = t.refreshTTL
	}
	now := t.now()
	c := Claims{
		TokenType: typ,
		UserID:    userID,
		Session:   sess,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        randomHex(16),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign token: %w", err)
	}
	return s, c, nil
}

// ErrTokenNotValid is returned for any token that fails verification; the
// reason is not told to the client.
var ErrTokenNotValid = &chat.Error{Code: chat.CodeTokenNotValid, Detail: "Given token not valid for any token type"}

// Parse verifies token and that its token_type is typ.
func (t *Tokens) Parse(token, typ string) (Claims, error) {
	if typ == Access {
		t.mu.Lock()
		c, ok := t.verified[token]
		t.mu.Unlock()
		if ok {
			// As Parse checks them: exp is exclusive, iat may be up
			// to ClockLeeway ahead.
			if now := t.now(); now.Before(c.ExpiresAt.Time) && !now.Add(ClockLeeway).Before(c.IssuedAt.Time) {
				return c, nil
			}
			t.mu.Lock()
			delete(t.verified, token)
			t.mu.Unlock()
		}
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		// Only the one encoding of a signature: base64 ignores the last
		// character's spare bits, so without this four spellings of one
		// token pass, and a refresh token kept by its hash could be shown
		// again under another name.
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		// Another node's clock may run a little ahead of ours: its
		// fresh tokens' iat is then in our future. jwt applies the
		// leeway to exp as well; exp is checked again without it below.
		jwt.WithLeeway(ClockLeeway),
		jwt.WithTimeFunc(t.now),
	)
	if err == nil && !t.now().Before(c.ExpiresAt.Time) {
		err = errors.New("token is expired")
	}
	if err != nil {
		return Claims{}, &chat.Error{Code: ErrTokenNotValid.Code, Detail: ErrTokenNotValid.Detail, Err: err}
	}
	if c.TokenType != typ || c.UserID <= 0 || c.ID == "" {
		return Claims{}, &chat.Error{Code: ErrTokenNotValid.Code, Detail: ErrTokenNotValid.Detail,
			Err: errors.New("wrong token type or claims")}
	}
	if typ == Access && c.IssuedAt != nil { // exp is required; iat is checked when present
		t.mu.Lock()
		if t.verified == nil || len(t.verified) >= maxVerified {
			t.verified = make(map[string]Claims)
		}
		t.verified[token] = c
		t.mu.Unlock()
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}

// hashToken is how a refresh token is stored: a leaked table yields no
// usable token.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
