package notify

import (
	"context"
	"sync"
)

// loops runs a dispatcher's background loops: Start starts them once,
// Close cancels their context and waits for them, once. Both may be
// called more than once, and Close without Start.
type loops struct {
	start  sync.Once
	stop   sync.Once
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs each of run in a goroutine of its own, with a context that
// Close cancels.
func (l *loops) Start(run ...func(ctx context.Context)) {
	l.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel = cancel
		l.wg.Add(len(run))
		for _, f := range run {
			go func() {
				defer l.wg.Done()
				f(ctx)
			}()
		}
	})
}

// Close cancels the loops' context and waits for them to return.
func (l *loops) Close() {
	l.stop.Do(func() {
		if l.cancel != nil {
			l.cancel()
			l.wg.Wait()
		}
	})
}
