package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Events lists every event type Confab sends, in the order documentation
// shows them. Treat it as read-only; ParseEvents returns copies.
var Events = []string{
	"message.created",
	"message.updated",
	"message.deleted",
	"conversation.created",
	"conversation.updated",
	"participant.added",
	"participant.removed",
	"user.created",
}

// ParseEvents reads WEBHOOK_EVENTS: a comma-separated list of event types,
// spaces ignored. An empty value or "*" selects all of them. It returns the
// chosen types once each, in the order of Events. An unknown name is an error
// that names it and lists the valid ones.
func ParseEvents(s string) ([]string, error) {
	want := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		name := strings.TrimSpace(item)
		switch {
		case name == "":
			// A trailing or doubled comma is harmless.
			continue
		case name == "*":
			return slices.Clone(Events), nil
		case !slices.Contains(Events, name):
			return nil, fmt.Errorf("WEBHOOK_EVENTS: unknown event %q; valid events are %s (or * for all)", name, strings.Join(Events, ", "))
		}
		want[name] = true
	}
	if len(want) == 0 {
		return slices.Clone(Events), nil
	}
	chosen := make([]string, 0, len(want))
	for _, name := range Events {
		if want[name] {
			chosen = append(chosen, name)
		}
	}
	return chosen, nil
}

// Event is one thing that happened in Confab, as a receiver sees it.
type Event struct {
	// ID identifies the event across every delivery attempt; it is sent as
	// webhook-id so receivers can deduplicate retries. Make it with NewID.
	ID string
	// Type is one of Events.
	Type string
	// Timestamp is when the event happened (not when it is delivered).
	Timestamp time.Time
	// Data is the event's object as JSON; nil is sent as null.
	Data json.RawMessage
}

// timestampLayout is RFC 3339 with exactly three fractional digits; with a
// UTC time it ends in Z.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// Body returns the request body for e:
// {"type":…,"timestamp":"<RFC 3339, milliseconds, UTC>","data":…}.
// It returns an error if Type is not one of Events or Data is not valid JSON.
func (e Event) Body() ([]byte, error) {
	if !slices.Contains(Events, e.Type) {
		return nil, fmt.Errorf("webhook event %q: unknown type; valid types are %s", e.Type, strings.Join(Events, ", "))
	}
	if e.Timestamp.IsZero() {
		return nil, fmt.Errorf("webhook event %s: no timestamp", e.Type)
	}
	body := struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{e.Type, e.Timestamp.UTC().Format(timestampLayout), e.Data}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Data goes out as its producer wrote it, without <, > and & turned
	// into \u escapes; the body is not meant for an HTML page.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("webhook event %s: encode body: %w", e.Type, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// NewID returns a new event ID: "msg_" followed by 26 random base32
// characters (128 bits), safe in a URL, a header and a file name.
func NewID() string {
	return "msg_" + rand.Text()
}
