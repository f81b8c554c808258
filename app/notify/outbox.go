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
	// DeliveryFailed or DeliveryGone.
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
	// transaction; an error from decide rolls it all back. n is how many
	// messages it read (0: none above the mark). skipped says another
	// node holds the mark: nothing was done, and that node decides.
	DecidePushes(ctx context.Context, limit int, now time.Time, delay time.Duration,
		decide func(context.Context, PushBatch) ([]Push, error)) (n int, skipped bool, err error)
	// ClaimDeliveries leases up to limit pending deliveries due at now,
	// the longest due first: their NextAt moves to until and their
	// attempts grow by one, so that no other claim takes them before
	// until. A sender that dies mid-send leaves them to be claimed again
	// then (at least once).
	ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]Delivery, error)
	// FinishDelivery records the outcome of a claimed delivery's send.
	// When a newer message was coalesced into the delivery since the
	// claim, a sent delivery stays pending, due at now, to send the newer
	// payload. DeliveryGone deletes the device, and with it its
	// deliveries. A delivery that is gone already is no error.
	FinishDelivery(ctx context.Context, d Delivery, o Outcome, now time.Time) error
}
