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
}

func newKeyedLimiter(perMinute int, now func() time.Time) *keyedLimiter {
	return &keyedLimiter{perMin: perMinute, buckets: map[string]*bucket{}, now: now}
}

func (k *keyedLimiter) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(k.sweep) > time.Minute {
		for key, b := range k.buckets {
			if now.Sub(b.seen) > 2*time.Minute {
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
	return b.lim
}

// wait returns how long key must wait before its next attempt; zero means
// it may go ahead. It takes nothing from the bucket.
func (k *keyedLimiter) wait(key string) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	lim := k.bucket(key, now)
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1-tokens)/float64(lim.Limit())*1e9)) * time.Nanosecond
}

// take spends one attempt of key, whether or not one was left.
func (k *keyedLimiter) take(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	k.bucket(key, now).AllowN(now, 1)
}

// allow takes one attempt and returns the wait when none was left.
func (k *keyedLimiter) allow(key string) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	lim := k.bucket(key, now)
	if lim.AllowN(now, 1) {
		return 0
	}
	tokens := lim.TokensAt(now)
	return time.Duration(math.Ceil((1-tokens)/float64(lim.Limit())*1e9)) * time.Nanosecond
}
