package ws

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// A user's frame bucket is forgotten only once they have no socket left
// and it is full again: reconnecting does not refill a spent budget, and
// the map does not keep every user who ever connected.
func TestSweepBudgets_ForgetsOnlyFullBucketsOfUsersWithoutSockets(t *testing.T) {
	h := New(Options{Context: context.Background()})
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	spent := rate.NewLimiter(rate.Limit(1e-3), 5)
	spent.AllowN(time.Now(), 5)
	h.mu.Lock()
	h.budgets[1] = rate.NewLimiter(1, 5) // full, no socket: forgotten
	h.budgets[2] = spent                 // spent, no socket: kept
	h.budgets[3] = rate.NewLimiter(1, 5) // full, with a socket: kept
	h.perUser[3] = 1
	h.sweepBudgets()
	_, one := h.budgets[1]
	_, two := h.budgets[2]
	_, three := h.budgets[3]
	h.mu.Unlock()
	if one || !two || !three {
		t.Errorf("after a sweep: user 1 kept %v (want false), 2 kept %v, 3 kept %v (want true)", one, two, three)
	}
}
