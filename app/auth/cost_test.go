package auth_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/confab/confab/app/auth"
)

// Stored passwords cost a guesser real time: one hash at DefaultCost
// takes at least 50 ms on this machine (a lower bound, not a speed
// target), and a stored hash is made at that cost.
func TestPasswordHash_TakesAtLeast50ms(t *testing.T) {
	h := auth.NewHasher(0, auth.HashLimit{})
	start := time.Now()
	hash, err := h.Hash(context.Background(), "correct horse battery staple")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != auth.DefaultCost {
		t.Errorf("stored hash cost %d (%v), want DefaultCost %d", cost, err, auth.DefaultCost)
	}
	t.Logf("one hash at cost %d took %v", auth.DefaultCost, took)
	if took < 50*time.Millisecond {
		t.Errorf("one hash at DefaultCost %d took %v: under 50 ms, too cheap to slow down guessing", auth.DefaultCost, took)
	}
}
