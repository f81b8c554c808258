package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

const (
	secretPrefix = "whsec_"
	// minSecretLen and maxSecretLen bound the key in bytes: 24 bytes (192
	// bits) is what the specification asks for at the least, and 64 is a
	// full HMAC-SHA256 block; anything longer is hashed down and adds nothing.
	minSecretLen = 24
	maxSecretLen = 64
	// newSecretLen is the size of a generated key: 256 bits, the output size
	// of SHA-256.
	newSecretLen = 32
)

// Secret is the key that signs webhook requests. Its zero value holds no
// key; get one from ParseSecret or NewSecret.
type Secret struct {
	key []byte
}

// ParseSecret reads a secret in the form the specification publishes:
// "whsec_" followed by the key in standard base64, 24 to 64 bytes long.
// Surrounding spaces are ignored. Its errors name WEBHOOK_SECRET and never
// repeat the secret.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Secret{}, errors.New("WEBHOOK_SECRET is empty: it must be whsec_ followed by a base64 key (generate one with webhook.NewSecret)")
	}
	encoded, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, errors.New("WEBHOOK_SECRET must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The decoder's error gives only a byte offset, never the input.
		return Secret{}, fmt.Errorf("WEBHOOK_SECRET: the part after whsec_ is not valid standard base64: %w", err)
	}
	if len(key) < minSecretLen {
		return Secret{}, fmt.Errorf("WEBHOOK_SECRET is too short: its key is %d bytes, it must be at least %d", len(key), minSecretLen)
	}
	if len(key) > maxSecretLen {
		return Secret{}, fmt.Errorf("WEBHOOK_SECRET is too long: its key is %d bytes, it must be at most %d", len(key), maxSecretLen)
	}
	return Secret{key: key}, nil
}

// NewSecret returns a new random 32-byte secret.
func NewSecret() Secret {
	key := make([]byte, newSecretLen)
	// crypto/rand.Read never returns an error; it crashes the program if the
	// system's source of randomness fails.
	rand.Read(key)
	return Secret{key: key}
}

// String returns the secret in its whsec_… form, the one ParseSecret reads
// and a receiver's library takes. It is the secret itself: print it only to
// hand it to the receiver's owner.
func (s Secret) String() string {
	return secretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// LogValue keeps the secret out of structured logs: slog shows a placeholder
// instead of calling String.
func (s Secret) LogValue() slog.Value {
	return slog.StringValue("whsec_[redacted]")
}
