package notify

import (
	"context"
	"time"

	"github.com/confab/confab/app/webhook"
)

// States of a webhook event.
const (
	// WebhookPending is an event not sent yet: due at its next_at.
	WebhookPending = "pending"
	// WebhookSent is an event the receiver accepted.
	WebhookSent = "sent"
	// WebhookGivenUp is an event the dispatcher stopped trying: refused
	// by the receiver, or still failing at the maximum age.
	WebhookGivenUp = "given_up"
)

// WebhookEvent is one webhook event as the dispatcher claims it.
type WebhookEvent struct {
	// ID is the row's id; Event.ID is the webhook-id.
	ID    int64
	Event webhook.Event
	// Attempts counts this one.
	Attempts int
}

// WebhookOutbox keeps the webhook events the stores write in the
// transactions of the changes that cause them. db.Store and
// postgres.Store implement it; the behaviour both must have is in
// notify/storetest.
type WebhookOutbox interface {
	// SetWebhookEvents chooses the event types the store writes, from
	// webhook.Events; none (the zero Set) writes none. Call it before
	// the store takes writes.
	SetWebhookEvents(webhook.Set)
	// ClaimWebhooks leases up to limit pending events due at now, the
	// longest due first: their next_at moves to until and their attempts
	// grow by one, so that no other claim (of any node) takes them before
	// until.
	ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]WebhookEvent, error)
	// FinishWebhook records the attempt of claimed event id: state
	// WebhookSent, WebhookGivenUp, or WebhookPending due again at next.
	// An event no longer pending is left as it is.
	FinishWebhook(ctx context.Context, id int64, state string, next time.Time, errText string, now time.Time) error
	// PruneWebhooks deletes up to limit sent or given-up events last
	// attempted before before, and returns how many.
	PruneWebhooks(ctx context.Context, before time.Time, limit int) (int, error)
	// PendingWebhooks counts the events not sent or given up yet.
	PendingWebhooks(ctx context.Context) (int, error)
}
