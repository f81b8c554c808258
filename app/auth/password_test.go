package auth

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/confab/confab/app/chat"
)

// With every hashing slot taken, a hash waits while fewer than Waiting
// others do, is refused at once with ErrOverloaded past that, and gives up
// with the same code when its request's context ends; a freed slot lets
// the waiter through.
func TestHasher_BoundedQueue(t *testing.T) {
	h := NewHasher(4, HashLimit{Concurrent: 1, Waiting: 1})
	ctx := context.Background()
	if _, err := h.Hash(ctx, "password1"); err != nil {
		t.Fatalf("a free slot: %v", err)
	}
	h.slots <- struct{}{} // a hash in progress

	waited := make(chan error)
	go func() {
		_, err := h.Check(ctx, "", "password1")
		waited <- err
	}()
	for h.waiting.Load() != 1 { // the waiter is queued
		runtime.Gosched()
	}
	if _, err := h.Hash(ctx, "password1"); !errors.Is(err, ErrOverloaded) {
		t.Errorf("past the queue: %v, want ErrOverloaded", err)
	}
	<-h.slots // the hash in progress ends
	if err := <-waited; err != nil {
		t.Errorf("the waiter: %v", err)
	}

	h.slots <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := h.Hash(cctx, "password1")
	if chat.ErrorCode(err) != chat.CodeOverloaded || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v, want overloaded (context canceled)", err)
	}
	if n := h.waiting.Load(); n != 0 {
		t.Errorf("%d still counted as waiting", n)
	}
}

// A zero HashLimit never refuses.
func TestHasher_NoLimit(t *testing.T) {
	h := NewHasher(4, HashLimit{})
	for range 3 {
		if ok, err := h.Check(context.Background(), "", "password1"); ok || err != nil {
			t.Fatalf("check: %v %v", ok, err)
		}
	}
}
