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
//   - decide reads the messages above the push mark (Outbox.DecidePushes)
//     soon after a commit stored new ones (Nudge), or when it polls,
//     asks presence once per batch who is online, and turns each message
//     and each offline, unmuted (or mentioned) participant who does not
//     block its sender into a Push,
//     which the store makes one pending delivery per device of theirs,
//     coalesced per device and conversation, moving the mark in the same
//     transaction;
//   - send claims due deliveries (Outbox.ClaimDeliveries: a lease, not a
//     transaction held open; the ones their user read meanwhile are
//     dropped instead), drops those whose user is online again, sends
//     each other from a goroutine of its own with a deadline, at most
//     Concurrency at once, and records the outcome.
//     No database transaction or connection is held while a provider
//     answers, so a provider that hangs holds up nothing but its own
//     sends' slots, and never the messages' writer.
//
// Each loop rounds at most every Every; while it finds nothing to do,
// its wait doubles up to Idle, so an idle server barely reads the
// outbox. A nudge (a commit, new deliveries, a retry falling due) cuts
// the wait short. The decide loop also prunes the deliveries that are
// done and older than Retention.

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

// Presence says who is online, on any node: *hub.Hub. Unlike the
// answer chat.Service shows as is_online, it reports an error when it
// could not ask every node (Redis not answering within ctx): the
// dispatcher then decides nothing rather than push to someone who may be
// online.
type Presence interface {
	LookupOnline(ctx context.Context, userIDs []int64) ([]int64, error)
}

// Results of a delivery, as DispatchOptions.Delivery reports them.
const (
	// ResultQueued is a delivery made (or a newer message coalesced into
	// a pending one).
	ResultQueued = "queued"
	// ResultSent is a send the provider accepted.
	ResultSent = "sent"
	// ResultFailed is a send that failed and will be retried.
	ResultFailed = "failed"
	// ResultGivenUp is a delivery given up: refused for good, no
	// provider, or still failing at MaxAge.
	ResultGivenUp = "given_up"
	// ResultGone is a send the provider answered with "this device is
	// gone": the device is deleted.
	ResultGone = "gone"
)

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
	// Every is the shortest time between two rounds of a loop, however
	// often it is nudged; zero: 250ms.
	Every time.Duration
	// Idle is the longest a loop waits between rounds while it finds
	// nothing to do and nothing nudges it (the wait doubles from Every
	// up to Idle); zero: 2s. It bounds how late a commit no nudge told
	// of (another node's, with nodes that share a database) is decided.
	Idle time.Duration
	// Delay is how long a new delivery waits before it is due, so that
	// the messages of a burst coalesce into one push; zero: one second.
	Delay time.Duration
	// Grace is how much longer a new delivery waits (PUSH_DELAY): the
	// time a recipient has to read the conversation or come back online,
	// which drops it (Outbox.ClaimDeliveries, DeliveryDropped); zero:
	// none beyond Delay.
	Grace time.Duration
	// Batch is the most messages one decision reads; zero: 200.
	Batch int
	// Concurrency is the most sends in flight; zero: 32.
	Concurrency int
	// SendTimeout bounds one provider call; zero: 15s.
	SendTimeout time.Duration
	// PresenceTimeout bounds the presence lookup of one batch; when it
	// passes, the batch is left for the next round; zero: 2s.
	PresenceTimeout time.Duration
	// Retention is how long a delivery that is done (sent, failed, gone)
	// is kept before it is pruned; zero: 7 days.
	Retention time.Duration
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
	// Delivery, when set, is called with the platform and the Result*
	// of every delivery queued and every send's outcome (the metrics'
	// confab_deliveries_total); it must not block. Nil: not reported.
	Delivery func(platform, result string)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log is where failures go; nil: slog.Default().
	Log *slog.Logger
}

// pruneEvery is how often (by the dispatcher's clock) the decide loop
// prunes, and pruneBatch the most rows one prune statement deletes, so
// that it holds SQLite's writer only briefly.
const (
	pruneEvery = time.Minute
	pruneBatch = 1000
)

// Dispatcher decides and delivers push notifications for new messages.
type Dispatcher struct {
	store  Outbox
	online Presence
	opt    DispatchOptions

	nudge  chan struct{} // capacity 1: wakes the send loop
	wake   chan struct{} // capacity 1: wakes the decide loop (Nudge)
	mu     sync.Mutex
	due    time.Time      // guarded by mu: when the send loop should look next (real clock); zero: none asked
	pruned time.Time      // the decide loop's: when it last pruned (dispatcher clock)
	loops  loops          // the decide and send loops
	sends  sync.WaitGroup // sends in flight
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
	def(&opt.Idle, 2*time.Second)
	def(&opt.PresenceTimeout, 2*time.Second)
	def(&opt.Retention, 7*24*time.Hour)
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
	opt.Idle = max(opt.Idle, opt.Every)
	return &Dispatcher{store: store, online: online, opt: opt,
		nudge: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

// Start starts the decide and send loops; Close stops them.
func (d *Dispatcher) Start() { d.loops.Start(d.runDecide, d.runSend) }

// Close stops the loops and waits for them and for the sends in flight
// (each bounded by SendTimeout). It may be called more than once, and
// without Start.
func (d *Dispatcher) Close() { d.loops.Close() }

// Nudge tells the dispatcher that new messages were committed: the
// decide loop runs its next round as soon as Every allows, rather than
// after its idle wait. It never blocks, and nudges that arrive before
// that round are one (chat.Options.Committed calls it after each group
// commit).
func (d *Dispatcher) Nudge() {
	select {
	case d.wake <- struct{}{}:
	default: // pending already
	}
}

func (d *Dispatcher) wakeSend() {
	select {
	case d.nudge <- struct{}{}:
	default: // pending already
	}
}

// sendIn asks the send loop to look again after wait at the latest: when
// deliveries just queued or retried fall due.
func (d *Dispatcher) sendIn(wait time.Duration) {
	at := time.Now().Add(max(wait, 0))
	d.mu.Lock()
	if d.due.IsZero() || at.Before(d.due) {
		d.due = at
	}
	d.mu.Unlock()
	d.wakeSend()
}

// takeDue returns the wait until the time sendIn asked for, capped at
// wait, and forgets it.
func (d *Dispatcher) takeDue(wait time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.due.IsZero() {
		wait = min(wait, max(time.Until(d.due), 0))
		d.due = time.Time{}
	}
	return wait
}

// pace runs round over and over: at most once per Every, at once again
// while it says it was busy, and otherwise after a wait that doubles up
// to Idle (or less, as next says) unless wake fires first.
func (d *Dispatcher) pace(ctx context.Context, wake <-chan struct{}, round func() (busy bool), next func(time.Duration) time.Duration) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	wait := d.opt.Every
	sleep := func(w time.Duration) bool {
		timer.Reset(w)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	for {
		busy := round()
		if !sleep(d.opt.Every) { // the shortest gap, whatever nudges
			return
		}
		if busy {
			wait = d.opt.Every
			continue
		}
		wait = min(2*wait, d.opt.Idle)
		timer.Reset(max(next(wait)-d.opt.Every, 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-wake:
			timer.Stop() // since Go 1.23 no stale tick is left to drain
			wait = d.opt.Every
		}
	}
}

func (d *Dispatcher) runDecide(ctx context.Context) {
	d.pace(ctx, d.wake, func() bool {
		busy := false
		for {
			r, err := d.DecideOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.opt.Log.Warn("push: decide", "err", err)
				}
				break
			}
			if len(r.Queued) > 0 {
				for platform, n := range r.Queued {
					d.report(platform, ResultQueued, n)
				}
				d.sendIn(d.opt.Delay)
			}
			// Another node deciding may have read its batch before this
			// node's commit: look again soon rather than idle.
			busy = busy || r.Read > 0 || r.Skipped
			if r.Skipped || r.Read < d.opt.Batch {
				break
			}
		}
		d.prune(ctx)
		return busy
	}, func(w time.Duration) time.Duration { return w })
}

// DecideOnce decides one batch of messages above the mark (see
// Outbox.DecidePushes).
func (d *Dispatcher) DecideOnce(ctx context.Context) (Decided, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opt.StoreTimeout)
	defer cancel()
	return d.store.DecidePushes(ctx, d.opt.Batch, d.opt.Now(), d.opt.Delay+max(d.opt.Grace, 0), d.decide)
}

// prune deletes the deliveries done before Retention, once per
// pruneEvery of the dispatcher's clock, a batch at a time.
func (d *Dispatcher) prune(ctx context.Context) {
	now := d.opt.Now()
	if now.Sub(d.pruned) < pruneEvery {
		return
	}
	d.pruned = now
	for {
		n, err := d.PruneOnce(ctx, now)
		if err != nil {
			if ctx.Err() == nil {
				d.opt.Log.Warn("push: prune deliveries", "err", err)
			}
			return
		}
		if n < pruneBatch {
			return
		}
	}
}

// PruneOnce deletes up to one batch of the deliveries done before
// now minus Retention, and returns how many it deleted.
func (d *Dispatcher) PruneOnce(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opt.StoreTimeout)
	defer cancel()
	return d.store.PruneDeliveries(ctx, now.Add(-d.opt.Retention), pruneBatch)
}

func (d *Dispatcher) report(platform, result string, n int) {
	if d.opt.Delivery == nil {
		return
	}
	for range n {
		d.opt.Delivery(platform, result)
	}
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
	// Nobody who may be online is pushed to: when presence does not
	// answer in time, the error rolls the batch back, and the next round
	// decides it again.
	pctx, cancel := context.WithTimeout(ctx, d.opt.PresenceTimeout)
	online, err := d.online.LookupOnline(pctx, ids)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	on := map[int64]bool{}
	for _, id := range online {
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
	defer d.sends.Wait()
	slots := make(chan struct{}, d.opt.Concurrency)
	d.pace(ctx, d.nudge, func() bool {
		busy := false
		for {
			free := cap(slots) - len(slots)
			if free == 0 {
				return true // every slot is sending: look again next round
			}
			list, err := d.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					d.opt.Log.Warn("push: claim deliveries", "err", err)
				}
				return busy
			}
			busy = busy || len(list) > 0
			on := d.onlineAmong(ctx, list)
			for _, dl := range list {
				slots <- struct{}{}
				d.sends.Add(1)
				go func() {
					defer func() { <-slots; d.sends.Done() }()
					if on[dl.Device.UserID] {
						d.drop(ctx, dl)
						return
					}
					d.deliver(ctx, dl)
				}()
			}
			if len(list) < free {
				return busy
			}
		}
	}, d.takeDue)
}

func (d *Dispatcher) claim(ctx context.Context, limit int) ([]Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opt.StoreTimeout)
	defer cancel()
	now := d.opt.Now()
	// The lease outlasts the send and the recording of its outcome.
	return d.store.ClaimDeliveries(ctx, now, now.Add(d.opt.SendTimeout+d.opt.StoreTimeout), limit)
}

// onlineAmong says which of the claimed deliveries' users are online
// now: they came back since the push was decided, and the app tells them.
func (d *Dispatcher) onlineAmong(ctx context.Context, list []Delivery) map[int64]bool {
	if len(list) == 0 {
		return nil
	}
	var ids []int64
	seen := map[int64]bool{}
	for _, dl := range list {
		if !seen[dl.Device.UserID] {
			seen[dl.Device.UserID] = true
			ids = append(ids, dl.Device.UserID)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.opt.StoreTimeout)
	defer cancel()
	online, err := d.online.LookupOnline(ctx, ids)
	if err != nil {
		// They were offline when the push was decided: send it.
		d.opt.Log.Warn("push: presence before sending", "err", err)
		return nil
	}
	on := map[int64]bool{}
	for _, id := range online {
		on[id] = true
	}
	return on
}

// drop records a claimed delivery as not sent: its user is online.
func (d *Dispatcher) drop(ctx context.Context, dl Delivery) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opt.StoreTimeout)
	defer cancel()
	if err := d.store.FinishDelivery(fctx, dl, Outcome{State: DeliveryDropped}, d.opt.Now()); err != nil {
		d.opt.Log.Warn("push: record delivery", "err", err, "delivery_id", dl.ID, "state", DeliveryDropped)
	}
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
	result := map[string]string{DeliverySent: ResultSent, DeliveryPending: ResultFailed,
		DeliveryFailed: ResultGivenUp, DeliveryGone: ResultGone}[o.State]
	d.report(dl.Device.Platform, result, 1)
	if o.State == DeliveryPending {
		d.sendIn(o.NextAt.Sub(d.opt.Now()))
	}
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
