package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/confab/confab/app/push"
)

// The dispatcher follows the messages rather than being written with
// them, as the search indexers do (db/searchindex.go): the send path
// (the group commit) never touches the outbox. Two loops, each its own
// goroutine:
//
//   - decide reads the messages above the push mark (Outbox.DecidePushes),
//     asks presence once per batch who is online, and turns each message
//     and each offline, unmuted (or mentioned) participant who does not
//     block its sender into a Push,
//     which the store makes one pending delivery per device of theirs,
//     coalesced per device and conversation, moving the mark in the same
//     transaction;
//   - send claims due deliveries (Outbox.ClaimDeliveries: a lease, not a
//     transaction held open), sends each from a goroutine of its own with
//     a deadline, at most Concurrency at once, and records the outcome.
//     No database transaction or connection is held while a provider
//     answers, so a provider that hangs holds up nothing but its own
//     sends' slots, and never the messages' writer.

// Preview settings: what a push shows of a message (PUSH_PREVIEW).
const (
	// PreviewFull shows the sender's name and the content, truncated.
	PreviewFull = "full"
	// PreviewSender shows "New message from <name>", no content.
	PreviewSender = "sender"
	// PreviewNone shows "New message": neither name nor content.
	PreviewNone = "none"
)

// MaxPreview is how many characters of a message's content a full
// preview shows.
const MaxPreview = 200

// Presence says who is online, on any node: *hub.Hub, whose answer
// chat.Service uses for is_online.
type Presence interface {
	OnlineAmong(ctx context.Context, userIDs []int64) []int64
}

// Provider sends one notification to one device: a thin adapter over
// the platform's sender (WebPush, FCM, APNs). Send returns an error
// wrapping push.ErrGone when the device is no longer valid, a
// *push.RetryError (or a network or deadline error) for a failure worth
// retrying, and any other error for a send that will never succeed.
type Provider interface {
	Send(ctx context.Context, d Device, n push.Notification) error
}

// DispatchOptions configures a Dispatcher. Every field has a working
// zero value.
type DispatchOptions struct {
	// Preview is PreviewFull, PreviewSender or PreviewNone; "":
	// PreviewSender.
	Preview string
	// Providers are the senders by platform (PlatformFCM, …); a platform
	// without one has its deliveries failed with an error that says so.
	Providers map[string]Provider
	// Every is how often each loop looks for work; zero: 250ms. The
	// decide loop also runs the send loop as soon as it stored pushes.
	Every time.Duration
	// Delay is how long a new delivery waits before it is due, so that
	// the messages of a burst coalesce into one push; zero: one second.
	Delay time.Duration
	// Batch is the most messages one decision reads; zero: 200.
	Batch int
	// Concurrency is the most sends in flight; zero: 32.
	Concurrency int
	// SendTimeout bounds one provider call; zero: 15s.
	SendTimeout time.Duration
	// StoreTimeout bounds one store call; zero: 30s.
	StoreTimeout time.Duration
	// MaxAge is how long a delivery is retried before it fails; zero:
	// one hour.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry, which
	// doubles with each attempt; zero: 1s and 10 minutes.
	MinBackoff, MaxBackoff time.Duration
	// TTL is how long a provider keeps a push for an offline device;
	// zero: 24 hours.
	TTL time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log is where failures go; nil: slog.Default().
	Log *slog.Logger
}

// Dispatcher decides and delivers push notifications for new messages.
type Dispatcher struct {
	store  Outbox
	online Presence
	opt    DispatchOptions

	nudge  chan struct{} // capacity 1: wakes the send loop
	cancel context.CancelFunc
	loops  sync.WaitGroup // the two loops
	sends  sync.WaitGroup // sends in flight
	start  sync.Once
	stop   sync.Once
}

// NewDispatcher returns a Dispatcher over store; Start starts it.
func NewDispatcher(store Outbox, online Presence, opt DispatchOptions) *Dispatcher {
	if opt.Preview == "" {
		opt.Preview = PreviewSender
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opt.Every, 250*time.Millisecond)
	def(&opt.Delay, time.Second)
	def(&opt.SendTimeout, 15*time.Second)
	def(&opt.StoreTimeout, 30*time.Second)
	def(&opt.MaxAge, time.Hour)
	def(&opt.MinBackoff, time.Second)
	def(&opt.MaxBackoff, 10*time.Minute)
	def(&opt.TTL, 24*time.Hour)
	if opt.Batch <= 0 {
		opt.Batch = 200
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 32
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Dispatcher{store: store, online: online, opt: opt, nudge: make(chan struct{}, 1)}
}

// Start starts the decide and send loops; Close stops them.
func (d *Dispatcher) Start() {
	d.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel = cancel
		d.loops.Add(2)
		go d.runDecide(ctx)
		go d.runSend(ctx)
	})
}

// Close stops the loops and waits for them and for the sends in flight
// (each bounded by SendTimeout). It may be called more than once, and
// without Start.
func (d *Dispatcher) Close() {
	d.stop.Do(func() {
		if d.cancel != nil {
			d.cancel()
			d.loops.Wait()
		}
	})
}

func (d *Dispatcher) wakeSend() {
	select {
	case d.nudge <- struct{}{}:
	default: // pending already
	}
}

func (d *Dispatcher) runDecide(ctx context.Context) {
	defer d.loops.Done()
	tick := time.NewTicker(d.opt.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for {
			n, skipped, err := d.DecideOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.opt.Log.Warn("push: decide", "err", err)
				}
				break
			}
			if n > 0 {
				d.wakeSend()
			}
			if skipped || n < d.opt.Batch {
				break
			}
		}
	}
}

// DecideOnce decides one batch of messages above the mark (see
// Outbox.DecidePushes) and returns how many it read.
func (d *Dispatcher) DecideOnce(ctx context.Context) (n int, skipped bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.opt.StoreTimeout)
	defer cancel()
	return d.store.DecidePushes(ctx, d.opt.Batch, d.opt.Now(), d.opt.Delay, d.decide)
}

// decide turns a batch into pushes: for each message that is not
// deleted, each recipient who is not online, joined before it, does not
// block its sender, and has not muted the conversation (unless it
// mentions them). Of several
// messages of one conversation for one user only the newest is kept:
// the store would coalesce them anyway.
func (d *Dispatcher) decide(ctx context.Context, b PushBatch) ([]Push, error) {
	var ids []int64
	seen := map[int64]bool{}
	for _, m := range b.Messages {
		for _, r := range m.Recipients {
			if !seen[r.UserID] {
				seen[r.UserID] = true
				ids = append(ids, r.UserID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	on := map[int64]bool{}
	for _, id := range d.online.OnlineAmong(ctx, ids) {
		on[id] = true
	}
	now := d.opt.Now().UnixMilli()
	type key struct{ user, conv int64 }
	at := map[key]int{}
	var pushes []Push
	for _, m := range b.Messages {
		if m.Deleted {
			continue
		}
		for _, r := range m.Recipients {
			switch {
			case on[r.UserID], r.JoinedAt.After(m.CreatedAt):
				continue
			case slices.Contains(m.BlockedBy, r.UserID): // not even a mention
				continue
			case r.MutedUntil > now && !mentions(m, r.UserID):
				continue
			}
			payload, err := d.payload(m, b.Unread[r.UserID])
			if err != nil {
				return nil, err
			}
			p := Push{UserID: r.UserID, ConversationID: m.ConversationID, MessageID: m.ID,
				Collapse: Collapse(m.ConversationID), Payload: payload}
			k := key{r.UserID, m.ConversationID}
			if i, ok := at[k]; ok {
				pushes[i] = p
				continue
			}
			at[k] = len(pushes)
			pushes = append(pushes, p)
		}
	}
	return pushes, nil
}

func mentions(m PushMessage, userID int64) bool {
	for _, id := range m.Mentions {
		if id == userID {
			return true
		}
	}
	return false
}

// Collapse is the collapse key of a conversation's pushes: a device
// shows the newest of them only.
func Collapse(conversationID int64) string { return "conv-" + strconv.FormatInt(conversationID, 10) }

// Payload is a delivery's notification as stored (deliveries.payload):
// what the device shows and the data the app gets.
type Payload struct {
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
	// Badge is the user's total unread count when decided.
	Badge int `json:"badge"`
	// Data is conversation_id, message_id and seq.
	Data map[string]string `json:"data"`
}

func (d *Dispatcher) payload(m PushMessage, badge int) ([]byte, error) {
	p := Payload{Badge: badge, Data: map[string]string{
		"conversation_id": strconv.FormatInt(m.ConversationID, 10),
		"message_id":      strconv.FormatInt(m.ID, 10),
		"seq":             strconv.FormatInt(m.Seq, 10),
	}}
	switch d.opt.Preview {
	case PreviewFull:
		p.Title, p.Body = m.SenderName, truncate(m.Content, MaxPreview)
	case PreviewNone:
		p.Title = "New message"
	default:
		p.Title = "New message from " + m.SenderName
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("push payload: %w", err)
	}
	return b, nil
}

// truncate cuts s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}

func (d *Dispatcher) runSend(ctx context.Context) {
	defer d.loops.Done()
	defer d.sends.Wait()
	slots := make(chan struct{}, d.opt.Concurrency)
	tick := time.NewTicker(d.opt.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.nudge:
		}
		for {
			free := cap(slots) - len(slots)
			if free == 0 {
				break // every slot is sending: wait for the next round
			}
			list, err := d.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					d.opt.Log.Warn("push: claim deliveries", "err", err)
				}
				break
			}
			for _, dl := range list {
				slots <- struct{}{}
				d.sends.Add(1)
				go func() {
					defer func() { <-slots; d.sends.Done() }()
					d.deliver(ctx, dl)
				}()
			}
			if len(list) < free {
				break
			}
		}
	}
}

func (d *Dispatcher) claim(ctx context.Context, limit int) ([]Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opt.StoreTimeout)
	defer cancel()
	now := d.opt.Now()
	// The lease outlasts the send and the recording of its outcome.
	return d.store.ClaimDeliveries(ctx, now, now.Add(d.opt.SendTimeout+d.opt.StoreTimeout), limit)
}

// errNoProvider is the error of a delivery to a platform with no
// provider configured.
type errNoProvider string

func (e errNoProvider) Error() string {
	setting := map[string]string{
		PlatformFCM:     "FCM_CREDENTIALS_FILE",
		PlatformAPNs:    "APNS_KEY_FILE, APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC",
		PlatformWebPush: "VAPID keys",
	}[string(e)]
	return fmt.Sprintf("no push provider for platform %s: set %s", string(e), setting)
}

// deliver sends one claimed delivery and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, dl Delivery) {
	var err error
	if p := d.opt.Providers[dl.Device.Platform]; p == nil {
		err = errNoProvider(dl.Device.Platform)
	} else {
		var n push.Notification
		n, err = d.notification(dl)
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, d.opt.SendTimeout)
			err = p.Send(sctx, dl.Device, n)
			cancel()
		}
	}
	o := d.outcome(dl, err)
	log := d.opt.Log.With("delivery_id", dl.ID, "device_id", dl.Device.ID, "platform", dl.Device.Platform, "attempts", dl.Attempts)
	switch o.State {
	case DeliveryFailed:
		log.Warn("push: delivery failed", "err", err)
	case DeliveryGone:
		log.Info("push: device gone, deleted", "err", err)
	case DeliveryPending:
		log.Debug("push: retry", "err", err, "next_at", o.NextAt)
	}
	// The outcome is recorded even when the dispatcher is stopping (a
	// send in flight at Close), within its own deadline: otherwise the
	// lease would hold the delivery back until it ends.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opt.StoreTimeout)
	defer cancel()
	if err := d.store.FinishDelivery(fctx, dl, o, d.opt.Now()); err != nil {
		log.Warn("push: record delivery", "err", err, "state", o.State)
	}
}

func (d *Dispatcher) notification(dl Delivery) (push.Notification, error) {
	var p Payload
	if err := json.Unmarshal(dl.Payload, &p); err != nil {
		return push.Notification{}, fmt.Errorf("push payload: %w", err)
	}
	return push.Notification{Title: p.Title, Body: p.Body, Badge: p.Badge, Data: p.Data,
		Collapse: Collapse(dl.ConversationID), TTL: d.opt.TTL}, nil
}

// outcome says what becomes of a delivery whose send returned err.
func (d *Dispatcher) outcome(dl Delivery, err error) Outcome {
	now := d.opt.Now()
	switch {
	case err == nil:
		return Outcome{State: DeliverySent}
	case errors.Is(err, push.ErrGone):
		return Outcome{State: DeliveryGone, Error: err.Error()}
	case !retryable(err):
		return Outcome{State: DeliveryFailed, Error: err.Error()}
	}
	next := now.Add(d.Backoff(dl.Attempts))
	var re *push.RetryError
	if errors.As(err, &re) && now.Add(re.After).After(next) {
		next = now.Add(re.After)
	}
	if next.Sub(dl.CreatedAt) > d.opt.MaxAge {
		return Outcome{State: DeliveryFailed,
			Error: fmt.Sprintf("gave up after %d attempts in %s: %v", dl.Attempts, d.opt.MaxAge, err)}
	}
	return Outcome{State: DeliveryPending, NextAt: next, Error: err.Error()}
}

// Backoff is the wait before the retry that follows attempt (1 for the
// first): MinBackoff doubled for each attempt before, capped at
// MaxBackoff, plus up to a quarter more at random so that deliveries
// that failed together do not retry together.
func (d *Dispatcher) Backoff(attempt int) time.Duration {
	b := d.opt.MinBackoff
	for i := 1; i < attempt && b < d.opt.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.opt.MaxBackoff)
	return min(b+rand.N(b/4+1), d.opt.MaxBackoff)
}

// retryable reports whether a send that failed with err may succeed
// later: the provider said so, or it could not be reached in time.
func retryable(err error) bool {
	var re *push.RetryError
	var ne net.Error
	return errors.As(err, &re) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
