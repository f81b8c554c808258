// Package push is what the push providers share: the notification a
// device is shown and the errors that say what to do with its device.
package push

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Notification is what one device is told about new messages.
type Notification struct {
	// Title and Body are what the device shows.
	Title, Body string
	// Collapse groups notifications: a later one with the same key
	// replaces an earlier one still shown (one per conversation).
	Collapse string
	// Badge is the user's total unread count.
	Badge int
	// Data is handed to the app: conversation_id, message_id, seq.
	Data map[string]string
	// TTL is how long the provider keeps it for an offline device.
	TTL time.Duration
}

// ErrGone says the device is no longer valid (unregistered, expired):
// remove it and do not retry.
var ErrGone = errors.New("push: device gone")

// RetryError is a failure worth retrying, after After when not zero.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("push: retry later: %v", e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// Retryable says whether a provider's answer with status may succeed
// later: rate limits and the server or a gateway in front of it failing,
// not a 505 or other answers that will not change.
func Retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryAfter reads a Retry-After header's delay-seconds or HTTP date;
// zero when absent or unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
