package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Keys is the server's VAPID key pair (RFC 8292): a P-256 key whose
// public half browsers are given when they subscribe, and whose private
// half signs every request to a push service. The zero Keys has no key.
type Keys struct {
	priv *ecdsa.PrivateKey
}

// GenerateKeys makes a new VAPID key pair. Keep Private() somewhere
// durable: subscriptions made with one public key only accept requests
// signed by its private key.
func GenerateKeys() (Keys, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Keys{}, fmt.Errorf("webpush: generate VAPID key: %w", err)
	}
	return Keys{priv: priv}, nil
}

// ParseKeys reads a key pair from its private scalar, base64url as
// Private() writes it (padding and the standard alphabet are accepted
// too, as other Web Push libraries write them).
func ParseKeys(privateB64url string) (Keys, error) {
	b, err := decodeBase64(privateB64url)
	if err != nil {
		return Keys{}, fmt.Errorf("webpush: VAPID private key is not base64url: %w", err)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		return Keys{}, fmt.Errorf("webpush: VAPID private key is not a P-256 scalar (%d bytes): %w", len(b), err)
	}
	return Keys{priv: priv}, nil
}

// Public is the uncompressed P-256 public point, base64url without
// padding: what the browser's pushManager.subscribe takes as
// applicationServerKey. It is "" for the zero Keys.
func (k Keys) Public() string {
	if k.priv == nil {
		return ""
	}
	b, err := k.priv.PublicKey.Bytes()
	if err != nil {
		// Unreachable for a key made by GenerateKeys or ParseKeys.
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Private is the private scalar, base64url without padding, for
// ParseKeys. It is a secret: store it like a password, never log it.
// It is "" for the zero Keys.
func (k Keys) Private() string {
	if k.priv == nil {
		return ""
	}
	b, err := k.priv.Bytes()
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// String shows only the public key, so a Keys printed into a log by
// mistake does not leak the private one.
func (k Keys) String() string { return "webpush.Keys{public: " + k.Public() + "}" }

// decodeBase64 reads base64url without padding as browsers write it,
// and also padded or standard-alphabet forms some libraries produce.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if s == "" {
		return nil, errors.New("empty")
	}
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}
