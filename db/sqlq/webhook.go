package sqlq

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/webhook"
)

// Webhook events' outbox (migrations db/migrations/00014 and
// db/postgres/migrations/00012): the queries both stores share and the
// data each event carries. The rows are written by the change that causes
// them, in its transaction (WebhookInsert); each store adds only its
// locking to the claim (PostgreSQL: FOR UPDATE SKIP LOCKED).
const (
	// WebhookInsert keeps one event: webhook id $1, type $2, data $3, made
	// and due at $4.
	WebhookInsert = `INSERT INTO webhook_events (webhook_id, type, data, next_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4, $4)`
	// WebhookDue says whether a pending event is due at $1.
	WebhookDue = `SELECT EXISTS (SELECT 1 FROM webhook_events WHERE state = 'pending' AND next_at <= $1)`
	// WebhookFinish records a claimed event's attempt: event $1, state
	// $2, next due $3, error $4, at $5.
	WebhookFinish = `UPDATE webhook_events SET state = $2, next_at = $3, last_error = $4, updated_at = $5
		WHERE id = $1 AND state = 'pending'`
	// WebhookPrune deletes up to $2 sent or given-up events last
	// attempted before $1 (WebhookFinish leaves that time in next_at, so
	// webhook_events_due finds them).
	WebhookPrune = `DELETE FROM webhook_events WHERE id IN (
		SELECT id FROM webhook_events WHERE state = 'sent' AND next_at < $1
		UNION ALL
		SELECT id FROM webhook_events WHERE state = 'given_up' AND next_at < $1
		LIMIT $2)`
	// WebhookPending counts the events not sent or given up yet.
	WebhookPending = `SELECT count(*) FROM webhook_events WHERE state = 'pending'`
)

// WebhookClaim leases up to $3 pending events due at $2, the longest due
// first: next_at moves to $1 and attempts grow by one. lock is what the
// store adds to the pick ("" or "FOR UPDATE SKIP LOCKED").
func WebhookClaim(lock string) string {
	return `UPDATE webhook_events SET next_at = $1, attempts = attempts + 1, updated_at = $2
		WHERE id IN (SELECT id FROM webhook_events WHERE state = 'pending' AND next_at <= $2
			ORDER BY next_at, id LIMIT $3 ` + lock + `)
		RETURNING id, webhook_id, type, data, attempts, created_at`
}

// ScanWebhook reads a row WebhookClaim returns.
func ScanWebhook(row Row) (notify.WebhookEvent, error) {
	var e notify.WebhookEvent
	var data string
	var created int64
	err := row.Scan(&e.ID, &e.Event.ID, &e.Event.Type, &data, &e.Attempts, &created)
	e.Event.Data, e.Event.Timestamp = json.RawMessage(data), msTime(created)
	return e, err
}

// Webhook is one event row to write, with its arguments for
// WebhookInsert.
type Webhook struct {
	ID, Type string
	Data     string
	At       int64 // Unix ms
}

// NewWebhook makes the row of an event of type typ that happened at at,
// with data as its JSON object.
func NewWebhook(typ string, at time.Time, data any) (Webhook, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Webhook{}, fmt.Errorf("webhook %s: %w", typ, err)
	}
	return Webhook{ID: webhook.NewID(), Type: typ, Data: string(b), At: at.UnixMilli()}, nil
}

// Args are WebhookInsert's arguments.
func (w Webhook) Args() []any { return []any{w.ID, w.Type, w.Data, w.At} }

// The data of the events other than message.* (which carry the message
// as the API shows it, chat.Message). docs/API.md, "Webhooks", shows them.
type (
	// WebhookConversation is conversation.created's data.
	WebhookConversation struct {
		ID             int64     `json:"id"`
		Title          string    `json:"title"`
		IsGroup        bool      `json:"is_group"`
		CreatedBy      int64     `json:"created_by"`
		ParticipantIDs []int64   `json:"participant_ids"`
		CreatedAt      chat.Time `json:"created_at"`
	}
	// WebhookTitle is conversation.updated's data.
	WebhookTitle struct {
		ID        int64     `json:"id"`
		Title     string    `json:"title"`
		UpdatedAt chat.Time `json:"updated_at"`
	}
	// WebhookParticipant is participant.added's and participant.removed's
	// data; Role is empty (left out) for a removal.
	WebhookParticipant struct {
		ConversationID int64     `json:"conversation_id"`
		UserID         int64     `json:"user_id"`
		Role           string    `json:"role,omitempty"`
		At             chat.Time `json:"at"`
	}
	// WebhookUser is user.created's data.
	WebhookUser struct {
		ID          int64     `json:"id"`
		Username    string    `json:"username"`
		DisplayName string    `json:"display_name"`
		CreatedAt   chat.Time `json:"created_at"`
	}
)
