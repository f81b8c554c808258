package api

import (
	"fmt"
	"testing"
	"time"
)

// The limiter forgets the buckets of keys that have been idle long enough
// to be full again, so a stream of new addresses does not grow it without
// end, and forgetting them refuses nobody anything.
func TestKeyedLimiter_ForgetsIdleKeys(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k := newKeyedLimiter(50, 100, func() time.Time { return now })
	for i := range 10000 {
		k.allow(fmt.Sprint("198.51.100.", i))
	}
	if n := k.size(); n != 10000 {
		t.Fatalf("%d keys, want 10000", n)
	}
	for range 100 { // one key spends its whole burst
		k.allow("203.0.113.1")
	}
	if r := k.allow("203.0.113.1"); r.wait <= 0 {
		t.Fatal("the 101st request of a burst of 100 went through")
	}
	now = now.Add(minSweep + time.Second)
	k.allow("203.0.113.2")
	if n := k.size(); n != 1 {
		t.Errorf("%d keys after a sweep, want 1 (the one just seen)", n)
	}
	if r := k.allow("203.0.113.1"); r.wait > 0 {
		t.Error("a forgotten key was refused")
	}
}
