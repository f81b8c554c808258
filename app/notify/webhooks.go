package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/confab/confab/app/webhook"
)

// The webhook dispatcher sends the events the stores write in the
// changes' transactions (WebhookOutbox). One loop claims due events (a
// lease, not a transaction held open) and sends each from a goroutine of
// its own with a deadline, at most Concurrency at once, then records the
// outcome; the same loop prunes old rows now and then. A receiver that
// hangs holds up nothing but its own sends' slots: the send path only
// writes rows.

// OnResult is told ResultSent, ResultFailed (to be retried) or
// ResultGivenUp (refused, 410, or still failing at MaxAge), the results
// deliveries report (see DispatchOptions.Delivery).

// Sender makes one delivery attempt of a webhook event: *webhook.Sender.
type Sender interface {
	Send(ctx context.Context, e webhook.Event) error
}

// WebhookOptions configures a Webhooks dispatcher. Every field has a
// working zero value.
type WebhookOptions struct {
	// Every is how often the loop looks for due events; zero: 250ms.
	Every time.Duration
	// Concurrency is the most attempts in flight; zero: 16.
	Concurrency int
	// SendTimeout bounds one attempt; zero: 15s.
	SendTimeout time.Duration
	// StoreTimeout bounds one store call; zero: 30s.
	StoreTimeout time.Duration
	// MaxAge is how long an event is retried before it is given up
	// (WEBHOOK_MAX_AGE); zero: 24 hours.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry, which
	// doubles with each attempt; zero: 5s and 1 hour.
	MinBackoff, MaxBackoff time.Duration
	// Retention is how long sent and given-up events are kept
	// (WEBHOOK_RETENTION); zero: 7 days.
	Retention time.Duration
	// PruneEvery is how often old events are pruned; zero: 10 minutes.
	PruneEvery time.Duration
	// OnResult, when not nil, is told each attempt's result (ResultSent,
	// ResultFailed or ResultGivenUp), from the attempt's goroutine: it
	// must not block.
	OnResult func(result string)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log is where failures go; nil: slog.Default().
	Log *slog.Logger
}

// Webhooks sends webhook events from the outbox.
type Webhooks struct {
	store  WebhookOutbox
	sender Sender
	opt    WebhookOptions

	loops loops
	sends sync.WaitGroup // attempts in flight
}

// NewWebhooks returns a dispatcher of store's events through sender;
// Start starts it.
func NewWebhooks(store WebhookOutbox, sender Sender, opt WebhookOptions) *Webhooks {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opt.Every, 250*time.Millisecond)
	def(&opt.SendTimeout, 15*time.Second)
	def(&opt.StoreTimeout, 30*time.Second)
	def(&opt.MaxAge, 24*time.Hour)
	def(&opt.MinBackoff, 5*time.Second)
	def(&opt.MaxBackoff, time.Hour)
	def(&opt.Retention, 7*24*time.Hour)
	def(&opt.PruneEvery, 10*time.Minute)
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Webhooks{store: store, sender: sender, opt: opt}
}

// Start starts the loop; Close stops it.
func (w *Webhooks) Start() { w.loops.Start(w.run) }

// Close stops the loop and waits for it and for the attempts in flight
// (each bounded by SendTimeout). It may be called more than once, and
// without Start.
func (w *Webhooks) Close() { w.loops.Close() }

// Pending counts the events not sent or given up yet (for a gauge).
func (w *Webhooks) Pending(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opt.StoreTimeout)
	defer cancel()
	return w.store.PendingWebhooks(ctx)
}

func (w *Webhooks) run(ctx context.Context) {
	defer w.sends.Wait()
	slots := make(chan struct{}, w.opt.Concurrency)
	tick := time.NewTicker(w.opt.Every)
	defer tick.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if now := w.opt.Now(); now.Sub(pruned) >= w.opt.PruneEvery {
			pruned = now
			w.prune(ctx)
		}
		for {
			free := cap(slots) - len(slots)
			if free == 0 {
				break // every slot is sending: wait for the next round
			}
			list, err := w.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					w.opt.Log.Warn("webhook: claim events", "err", err)
				}
				break
			}
			for _, e := range list {
				slots <- struct{}{}
				w.sends.Add(1)
				go func() {
					defer func() { <-slots; w.sends.Done() }()
					w.deliver(ctx, e)
				}()
			}
			if len(list) < free {
				break
			}
		}
	}
}

func (w *Webhooks) claim(ctx context.Context, limit int) ([]WebhookEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opt.StoreTimeout)
	defer cancel()
	now := w.opt.Now()
	// The lease outlasts the attempt and the recording of its outcome.
	return w.store.ClaimWebhooks(ctx, now, now.Add(w.opt.SendTimeout+w.opt.StoreTimeout), limit)
}

func (w *Webhooks) prune(ctx context.Context) {
	before := w.opt.Now().Add(-w.opt.Retention)
	for {
		pctx, cancel := context.WithTimeout(ctx, w.opt.StoreTimeout)
		n, err := w.store.PruneWebhooks(pctx, before, pruneBatch)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.opt.Log.Warn("webhook: prune events", "err", err)
			}
			return
		}
		if n < pruneBatch {
			return
		}
	}
}

// deliver makes one attempt of a claimed event and records its outcome.
func (w *Webhooks) deliver(ctx context.Context, e WebhookEvent) {
	sctx, cancel := context.WithTimeout(ctx, w.opt.SendTimeout)
	err := w.sender.Send(sctx, e.Event)
	cancel()
	state, next, result := w.outcome(e, err)
	log := w.opt.Log.With("webhook_id", e.Event.ID, "type", e.Event.Type, "attempts", e.Attempts)
	errText := ""
	switch {
	case err == nil:
	case result == ResultGivenUp && retryableWebhook(err) && !errors.Is(err, webhook.ErrGone):
		errText = fmt.Sprintf("gave up after %d attempts in %s: %v", e.Attempts, w.opt.MaxAge, err)
	default:
		errText = err.Error()
	}
	switch result {
	case ResultGivenUp:
		log.Warn("webhook: event given up", "err", errText)
	case ResultFailed:
		log.Debug("webhook: retry", "err", errText, "next_at", next)
	}
	// The outcome is recorded even when the dispatcher is stopping (an
	// attempt in flight at Close), within its own deadline: otherwise
	// the lease would hold the event back until it ends.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), w.opt.StoreTimeout)
	defer fcancel()
	if err := w.store.FinishWebhook(fctx, e.ID, state, next, errText, w.opt.Now()); err != nil {
		log.Warn("webhook: record attempt", "err", err, "state", state)
	}
	if w.opt.OnResult != nil {
		w.opt.OnResult(result)
	}
}

// outcome says what becomes of an event whose attempt returned err.
func (w *Webhooks) outcome(e WebhookEvent, err error) (state string, next time.Time, result string) {
	now := w.opt.Now()
	switch {
	case err == nil:
		return WebhookSent, time.Time{}, ResultSent
	case errors.Is(err, webhook.ErrGone) || !retryableWebhook(err):
		return WebhookGivenUp, time.Time{}, ResultGivenUp
	}
	next = now.Add(w.Backoff(e.Attempts))
	var re *webhook.RetryError
	if errors.As(err, &re) && now.Add(re.After).After(next) {
		next = now.Add(re.After)
	}
	if next.Sub(e.Event.Timestamp) > w.opt.MaxAge {
		return WebhookGivenUp, time.Time{}, ResultGivenUp
	}
	return WebhookPending, next, ResultFailed
}

// Backoff is the wait before the retry that follows attempt (1 for the
// first): MinBackoff doubled for each attempt before, capped at
// MaxBackoff, plus up to a quarter more at random so that events that
// failed together do not retry together.
func (w *Webhooks) Backoff(attempt int) time.Duration {
	b := w.opt.MinBackoff
	for i := 1; i < attempt && b < w.opt.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, w.opt.MaxBackoff)
	return min(b+rand.N(b/4+1), w.opt.MaxBackoff)
}

// retryableWebhook reports whether an attempt that failed with err may
// succeed later: the receiver said so, or could not be reached in time.
func retryableWebhook(err error) bool {
	var re *webhook.RetryError
	var ne net.Error
	return errors.As(err, &re) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
