package notify

import (
	"context"
	"time"
)

// States of a delivery.
const (
	// DeliveryPending is a delivery not sent yet: due at its NextAt.
	DeliveryPending = "pending"
	// DeliverySent is a delivery the provider accepted.
	DeliverySent = "sent"
	// DeliveryFailed is a delivery given up: refused by the provider, no
	// provider for its platform, or still failing at the maximum age.
	DeliveryFailed = "failed"
	// DeliveryGone is a delivery whose device the provider said is gone;
	// the device is deleted with it.
	DeliveryGone = "gone"
	// DeliveryDropped is the outcome of a delivery not sent because its
	// user came back online before it was due: the app tells them, so
	// the row is deleted. It is never a stored state.
	DeliveryDropped = "dropped"
)

// PushMessage is a message the dispatcher decides about, with the
// participants it may notify.
type PushMessage struct {
	ID, ConversationID, Seq, SenderID int64
	// SenderName is the sender's display name, or their username when
	// they have none.
	SenderName string
	Content    string
	// Mentions are the user ids the message mentions.
	Mentions []int64
	// Deleted says the message was deleted before it was decided.
	Deleted   bool
	CreatedAt time.Time
	// Recipients are the conversation's participants other than the
	// sender who have at least one device, as of the decision.
	Recipients []Recipient
	// BlockedBy are those of the users with a device who block the
	// sender, as of the decision: they get no push of theirs.
	BlockedBy []int64
}

// Recipient is one participant a message may be pushed to.
type Recipient struct {
	UserID int64
	// MutedUntil is their muted_until in the conversation, as
	// Store.MutedUntil gives it (0: not muted).
	MutedUntil int64
	// JoinedAt is when they joined: a message from before is not theirs
	// to be told about.
	JoinedAt time.Time
}

// PushBatch is one batch of messages above the push mark.
type PushBatch struct {
	// Messages are in id order.
	Messages []PushMessage
	// Unread is each recipient's total unread count over all their
	// conversations (the badge), by user id.
	Unread map[int64]int
}

// Push is one decision: tell UserID's devices about MessageID.
type Push struct {
	UserID, ConversationID, MessageID int64
	// Collapse is the provider's collapse key.
	Collapse string
	// Payload is the notification, as EncodePayload writes it.
	Payload []byte
}

// Delivery is one push to one device, as the sender claims it.
type Delivery struct {
	ID                        int64
	Device                    Device
	ConversationID, MessageID int64
	Payload                   []byte
	// Attempts counts this one.
	Attempts  int
	CreatedAt time.Time
}

// Outcome is how a claimed delivery's send went.
type Outcome struct {
	// State is DeliverySent, DeliveryPending (try again at NextAt),
	// DeliveryFailed, DeliveryGone or DeliveryDropped.
	State  string
	NextAt time.Time
	// Error is the send's error, "" when sent.
	Error string
}

// Outbox keeps the dispatcher's mark and deliveries. db.Store and
// postgres.Store implement it.
type Outbox interface {
	// DecidePushes reads up to limit messages above the push mark, in id
	// order, with their recipients, hands them to decide, stores the
	// pushes it returns (one pending delivery per device of each push's
	// user, due at now+delay; a device's pending delivery for the same
	// conversation takes the newer push's message and payload instead of
	// a second row) and moves the mark past the batch, all in one
	// transaction; an error from decide rolls it all back.
	DecidePushes(ctx context.Context, limit int, now time.Time, delay time.Duration,
		decide func(context.Context, PushBatch) ([]Push, error)) (Decided, error)
	// ClaimDeliveries leases up to limit pending deliveries due at now,
	// the longest due first: their NextAt moves to until and their
	// attempts grow by one, so that no other claim takes them before
	// until. A sender that dies mid-send leaves them to be claimed again
	// then (at least once). A due delivery whose user has read the
	// conversation up to its message (or left it) is deleted instead of
	// claimed: it has nothing left to tell.
	ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]Delivery, error)
	// FinishDelivery records the outcome of a claimed delivery's send.
	// When a newer message was coalesced into the delivery since the
	// claim, a sent or dropped delivery stays pending, due at now, to
	// send the newer payload. DeliveryGone deletes the device, and with
	// it its deliveries; DeliveryDropped deletes the delivery. A delivery
	// that is gone already is no error.
	FinishDelivery(ctx context.Context, d Delivery, o Outcome, now time.Time) error
	// PendingDeliveries counts the pending deliveries (due or not, and
	// those claimed and in flight) by their device's platform; a
	// platform with none is left out.
	PendingDeliveries(ctx context.Context) (map[string]int, error)
	// PruneDeliveries deletes up to limit deliveries that are done (sent,
	// failed or gone) and were last changed before before, and returns
	// how many it deleted. Pending deliveries are never pruned.
	PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error)
}

// Decided is what one Outbox.DecidePushes did.
type Decided struct {
	// Read is how many messages it read (0: none above the mark).
	Read int
	// Skipped says another node holds the mark: nothing was done, and
	// that node decides.
	Skipped bool
	// Queued counts, by platform, the deliveries the pushes made or
	// updated: one per device of each push's user, a pending one a newer
	// message was coalesced into included.
	Queued map[string]int
}

// Sent records the outcome of a delivery, as its user's outbox lists it
// (GET /api/push/deliveries/): what the dispatcher did, never the
// payload nor the device's token.
type Sent struct {
	ID       int64
	DeviceID int64
	// Platform is the device's.
	Platform                  string
	ConversationID, MessageID int64
	// State is DeliveryPending, DeliverySent or DeliveryFailed (a gone
	// delivery goes with its device).
	State    string
	Attempts int
	// LastError is the last send's error, "" when there was none.
	LastError string
	CreatedAt time.Time
	// UpdatedAt is when it last changed: coalesced, claimed or finished.
	UpdatedAt time.Time
	// NextAt is when a pending delivery is due (or its claim's lease
	// ends).
	NextAt time.Time
}

// UserOutbox is one user's deliveries: how many are in each state, and
// the latest.
type UserOutbox struct {
	// Counts are the user's deliveries by state; a state with none is
	// absent.
	Counts map[string]int
	// Latest are the newest deliveries, newest first.
	Latest []Sent
}
