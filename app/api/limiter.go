package api

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a client address, an address and
// a username). Buckets idle long enough to be full again are forgotten, so
// memory stays bounded by the keys seen in the last sweep interval.
type keyedLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*bucket
	// full is how long an idle bucket takes to fill up again: after
	// that, forgetting it changes nothing.
	full  time.Duration
	sweep time.Time
	now   func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
	// pending counts attempts let through by begin and not yet ended: they
	// may each still fail, so they hold a token until they do.
	pending int
	// refused counts refusals since the key was last let through.
	refused int
}

// refusal is a limiter's answer: zero to go ahead, else how long to wait
// and how many times in a row the key has now been refused.
type refusal struct {
	wait   time.Duration
	streak int
}

func (b *bucket) refuse(wait time.Duration) refusal {
	b.refused++
	return refusal{wait, b.refused}
}

// newKeyedLimiter returns a limiter of perSecond attempts a second per
// key, with bursts of burst.
func newKeyedLimiter(perSecond float64, burst int, now func() time.Time) *keyedLimiter {
	return &keyedLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}, now: now,
		full: time.Duration(float64(burst) / perSecond * float64(time.Second))}
}

// perMinute returns a limiter of n attempts a minute per key, all of
// which may come at once.
func perMinute(n int, now func() time.Time) *keyedLimiter {
	return newKeyedLimiter(float64(n)/60, n, now)
}

// minSweep bounds how often the idle buckets are looked for: a sweep
// walks every key under the lock.
const minSweep = time.Minute

func (k *keyedLimiter) bucket(key string, now time.Time) *bucket {
	if now.Sub(k.sweep) > max(k.full, minSweep) {
		for key, b := range k.buckets {
			if now.Sub(b.seen) > k.full && b.pending == 0 {
				delete(k.buckets, key)
			}
		}
		k.sweep = now
	}
	b := k.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	return b
}

// size is how many keys the limiter holds.
func (k *keyedLimiter) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// begin lets one attempt of key go ahead, or returns how long key must
// wait. An attempt that goes ahead holds one token until end says whether
// it counted, so that guesses sent all at once cannot all pass before the
// first failure is recorded. Every begin that returns zero needs an end.
func (k *keyedLimiter) begin(key string) refusal {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b := k.bucket(key, now)
	tokens := b.lim.TokensAt(now) - float64(b.pending)
	if tokens >= 1 {
		b.pending++
		b.refused = 0
		return refusal{}
	}
	return b.refuse(time.Duration(math.Ceil((1-tokens)/float64(b.lim.Limit())*1e9)) * time.Nanosecond)
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

// allow takes one attempt, or refuses it with the wait.
func (k *keyedLimiter) allow(key string) refusal {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b := k.bucket(key, now)
	if b.lim.AllowN(now, 1) {
		b.refused = 0
		return refusal{}
	}
	tokens := b.lim.TokensAt(now)
	return b.refuse(time.Duration(math.Ceil((1-tokens)/float64(b.lim.Limit())*1e9)) * time.Nanosecond)
}

// Refusals past freeRefusals in a row are held for their wait, a second
// at most, before the 429: a client that keeps asking on one connection
// then gets an answer a second instead of as many as the server can say
// no to, and holding a request costs less than answering it. A client
// that stops at the first few 429s never waits for them.
const (
	freeRefusals = 3
	maxHold      = time.Second
)

// limited answers a refused request.
func limited(ctx context.Context, r refusal) error {
	if r.streak > freeRefusals {
		t := time.NewTimer(min(r.wait, maxHold))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return &rateLimited{r.wait}
}

// LimitRequests applies the per-address request limit to /api/ requests.
// Health checks, metrics, the console's files and socket handshakes are
// not limited by it: probes must always get through, the console's files
// cost next to nothing, and sockets have limits of their own. It runs
// before authentication, so that a loop of bad tokens is limited too.
func (a *API) LimitRequests() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if a.opt.RequestsPerSecond <= 0 {
			return next
		}
		return func(c echo.Context) error {
			if !strings.HasPrefix(c.Request().URL.Path, "/api/") {
				return next(c)
			}
			if r := a.requests.allow(c.RealIP()); r.wait > 0 {
				return limited(c.Request().Context(), r)
			}
			return next(c)
		}
	}
}
