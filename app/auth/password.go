package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// DefaultCost is the bcrypt cost of stored passwords: about 50–100 ms per
// hash on a small machine, slow enough to make guessing expensive.
const DefaultCost = 11

// Hasher hashes passwords with bcrypt.
type Hasher struct {
	Cost int // bcrypt cost; zero means DefaultCost
	// dummy is compared against when a username does not exist, so that a
	// failed login takes as long either way. It is made in the background
	// at start (a hash takes as long as a login), not on the start's path.
	dummy func() []byte
}

// NewHasher returns a Hasher with the given cost (0 for DefaultCost).
func NewHasher(cost int) *Hasher {
	if cost == 0 {
		cost = DefaultCost
	}
	h := &Hasher{Cost: cost}
	h.dummy = sync.OnceValue(func() []byte {
		b, _ := bcrypt.GenerateFromPassword(prehash("confab-no-such-user"), cost)
		return b
	})
	go h.dummy()
	return h
}

// Hash returns the bcrypt hash of password.
func (h *Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword(prehash(password), h.Cost)
	return string(b), err
}

// prehash lets passwords of up to 128 characters (up to 512 bytes of
// UTF-8) through bcrypt, which reads only 72 bytes: every byte counts.
func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// Check reports whether password matches hash. With an empty hash it
// still does the work of a comparison and reports false.
func (h *Hasher) Check(hash, password string) bool {
	if hash == "" {
		bcrypt.CompareHashAndPassword(h.dummy(), prehash(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), prehash(password)) == nil
}
