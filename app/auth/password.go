package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"github.com/confab/confab/app/chat"
)

// DefaultCost is the bcrypt cost of stored passwords: about 50–100 ms per
// hash on a small machine, slow enough to make guessing expensive.
const DefaultCost = 11

// HashLimit bounds the password hashing of a whole server: a hash takes a
// core for tens of milliseconds, so a storm of logins from many addresses
// (each within its own rate limit) could otherwise take every core.
type HashLimit struct {
	// Concurrent is how many hashes may run at once; zero means no
	// limit.
	Concurrent int
	// Waiting is how many more may wait for one of those; past it a
	// hash is refused at once with ErrOverloaded. Zero means none wait.
	Waiting int
}

// ErrOverloaded is the answer to a login, registration or password change
// when too many passwords are being hashed already.
var ErrOverloaded = &chat.Error{Code: chat.CodeOverloaded, Detail: "Too many sign-ins at once; retry in a moment."}

// Hasher hashes passwords with bcrypt.
type Hasher struct {
	Cost int // bcrypt cost; zero means DefaultCost
	// dummy is compared against when a username does not exist, so that a
	// failed login takes as long either way. It is made in the background
	// at start (a hash takes as long as a login), not on the start's path.
	dummy func() []byte
	// slots holds a token per running hash; nil: no limit.
	slots   chan struct{}
	waiting atomic.Int64
	maxWait int64
}

// NewHasher returns a Hasher with the given cost (0 for DefaultCost) and
// limit.
func NewHasher(cost int, lim HashLimit) *Hasher {
	if cost == 0 {
		cost = DefaultCost
	}
	h := &Hasher{Cost: cost, maxWait: int64(max(lim.Waiting, 0))}
	if lim.Concurrent > 0 {
		h.slots = make(chan struct{}, lim.Concurrent)
	}
	h.dummy = sync.OnceValue(func() []byte {
		b, _ := bcrypt.GenerateFromPassword(prehash("confab-no-such-user"), cost)
		return b
	})
	go h.dummy()
	return h
}

// acquire takes a hashing slot, waiting for one while fewer than Waiting
// others do and ctx allows. Every nil return needs a release.
func (h *Hasher) acquire(ctx context.Context) error {
	if h.slots == nil {
		return nil
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > h.maxWait {
		h.waiting.Add(-1)
		return ErrOverloaded
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &chat.Error{Code: ErrOverloaded.Code, Detail: ErrOverloaded.Detail, Err: ctx.Err()}
	}
}

func (h *Hasher) release() {
	if h.slots != nil {
		<-h.slots
	}
}

// Hash returns the bcrypt hash of password. Returns ErrOverloaded when
// the hashing queue is full, or ctx ends while it waits.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
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
// still does the work of a comparison and reports false. Returns
// ErrOverloaded, as Hash does, without comparing.
func (h *Hasher) Check(ctx context.Context, hash, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if hash == "" {
		bcrypt.CompareHashAndPassword(h.dummy(), prehash(password))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), prehash(password)) == nil, nil
}
