package webpush

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

const (
	// tokenLife is how long a VAPID token is valid. RFC 8292 allows at
	// most 24 hours; 12 leaves room for a push service's clock running
	// ahead of ours.
	tokenLife = 12 * time.Hour
	// tokenRenew is how close to expiry a cached token is replaced, so
	// none expires while a request carrying it is on its way.
	tokenRenew = time.Hour
)

// jwtHeaderB64 is the fixed JOSE header of every VAPID token, base64url.
const jwtHeaderB64 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9" // {"typ":"JWT","alg":"ES256"}

// token is a signed VAPID JWT and when it expires.
type token struct {
	jwt string
	exp time.Time
}

// authorization is the Authorization header for a request to the push
// service at aud (its origin), reusing a cached token while it has more
// than tokenRenew left: signing costs an ECDSA operation per request.
func (s *Sender) authorization(aud string) (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[aud]
	if !ok || now.Add(tokenRenew).After(t.exp) {
		exp := now.Add(tokenLife).Truncate(time.Second)
		jwt, err := signJWT(s.keys.priv, aud, s.subject, exp)
		if err != nil {
			return "", err
		}
		// Forget expired tokens so audiences seen once (the many
		// notify.windows.com hosts) do not pile up.
		for a, old := range s.tokens {
			if !now.Before(old.exp) {
				delete(s.tokens, a)
			}
		}
		t = token{jwt: jwt, exp: exp}
		s.tokens[aud] = t
	}
	return "vapid t=" + t.jwt + ", k=" + s.public, nil
}

// signJWT makes an ES256 JWT with the claims RFC 8292 §2 asks for.
func signJWT(priv *ecdsa.PrivateKey, aud, sub string, exp time.Time) (string, error) {
	claims, err := json.Marshal(struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}{aud, exp.Unix(), sub})
	if err != nil {
		return "", fmt.Errorf("webpush: VAPID claims: %w", err)
	}
	input := jwtHeaderB64 + "." + base64.RawURLEncoding.EncodeToString(claims)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		return "", fmt.Errorf("webpush: sign VAPID token: %w", err)
	}
	// JWS wants the raw r||s, each 32 bytes, not ASN.1.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
