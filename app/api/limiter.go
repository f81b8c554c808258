package api

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a client address, an address and
// a username). Buckets idle long enough to be full again are forgotten, so
// memory stays bounded by the keys seen in the last window.
type keyedLimiter struct {
	mu      sync.Mutex
	perMin  int
	buckets map[string]*bucket
	sweep   time.Time
	now     func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
	// pending counts attempts let through by begin and not yet ended: they
	// may each still fail, so they hold a token until they do.
	pending int
}

func newKeyedLimiter(perMinute int, now func() time.Time) *keyedLimiter {
	return &keyedLimiter{perMin: perMinute, buckets: map[string]*bucket{}, now: now}
}

func (k *keyedLimiter) bucket(key string, now time.Time) *bucket {
	if now.Sub(k.sweep) > time.Minute {
		for key, b := range k.buckets {
			if now.Sub(b.seen) > 2*time.Minute && b.pending == 0 {
				delete(k.buckets, key)
			}
		}
		k.sweep = now
	}
	b := k.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(float64(k.perMin)/60), k.perMin)}
		k.buckets[key] = b
	}
	b.seen = now
	return b
}

// begin lets one attempt of key go ahead, or returns how long key must
// wait. An attempt that goes ahead holds one token until end says whether
// it counted, so that guesses sent all at once cannot all pass before the
// first failure is recorded. Every begin that returns zero needs an end.
func (k *keyedLimiter) begin(key string) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b := k.bucket(key, now)
	tokens := b.lim.TokensAt(now) - float64(b.pending)
	if tokens >= 1 {
		b.pending++
		return 0
	}
	return time.Duration(math.Ceil((1-tokens)/float64(b.lim.Limit())*1e9)) * time.Nanosecond
}

// end finishes an attempt that begin let through; a failed one spends its
// token, a successful one gives it back.
func (k *keyedLimiter) end(key string, failed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b := k.bucket(key, now)
	if b.pending > 0 {
		b.pending--
	}
	if failed {
		b.lim.AllowN(now, 1)
	}
}

// allow takes one attempt and returns the wait when none was left.
func (k *keyedLimiter) allow(key string) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	lim := k.bucket(key, now).lim
	if lim.AllowN(now, 1) {
		return 0
	}
	tokens := lim.TokensAt(now)
	return time.Duration(math.Ceil((1-tokens)/float64(lim.Limit())*1e9)) * time.Nanosecond
}
