package ws

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestOps_StopCancelsRunningAndLaterOperations(t *testing.T) {
	var o ops
	parent := context.Background()
	a, endA := o.start(parent, time.Hour)
	b, endB := o.start(parent, time.Hour)
	endA() // ended before the close: cancelled by its own end
	if a.Err() == nil {
		t.Fatal("an ended operation's context is still live")
	}
	if b.Err() != nil || o.stopped() {
		t.Fatal("a running operation was cancelled before the close")
	}
	o.stop()
	if !errors.Is(b.Err(), context.Canceled) || !o.stopped() {
		t.Fatalf("running operation after stop: %v", b.Err())
	}
	endB()
	c, endC := o.start(parent, time.Hour)
	defer endC()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("an operation started after stop: %v, want cancelled", c.Err())
	}
	if o.live != nil {
		t.Fatalf("ops still holds %d operations", len(o.live))
	}
}

func TestOps_DeadlineAndParent(t *testing.T) {
	var o ops
	ctx, end := o.start(context.Background(), time.Nanosecond)
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", ctx.Err())
	}
	end()
	parent, cancel := context.WithCancel(context.Background())
	ctx, end = o.start(parent, time.Hour)
	defer end()
	cancel()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("err = %v, want cancelled with its parent", ctx.Err())
	}
	if len(o.live) != 1 {
		t.Fatalf("%d operations live, want 1 until it ends", len(o.live))
	}
}
