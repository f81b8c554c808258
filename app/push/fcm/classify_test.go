package fcm

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/confab/confab/app/push"
)

// TestClassify holds the mapping of FCM's documented answers, including
// shapes the stand-in does not produce.
func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		wantGone   bool
		wantRetry  bool
		wantAfter  time.Duration
	}{
		{name: "unregistered", status: 404, body: `{"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`, wantGone: true},
		{name: "404 without body", status: 404, body: ``, wantGone: true},
		{name: "invalid argument, payload", status: 400, body: `{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].key"}]}]}}`},
		{name: "invalid argument, token field", status: 400, body: `{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}`, wantGone: true},
		// A wrong project in our config must not wipe every device.
		{name: "sender id mismatch", status: 403, body: `{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`},
		{name: "third party auth", status: 401, body: `{"error":{"code":401,"status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"THIRD_PARTY_AUTH_ERROR"}]}}`},
		{name: "quota, seconds", status: 429, retryAfter: "30", body: `{}`, wantRetry: true, wantAfter: 30 * time.Second},
		{name: "unavailable, date", status: 503, retryAfter: now.Add(time.Minute).Format(http.TimeFormat), wantRetry: true, wantAfter: time.Minute},
		{name: "internal, html", status: 500, body: `<html>oops</html>`, wantRetry: true},
		{name: "bad gateway", status: 502, wantRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.status, tt.retryAfter, now, parseError([]byte(tt.body)))
			if got := errors.Is(err, push.ErrGone); got != tt.wantGone {
				t.Errorf("gone = %v, want %v (%v)", got, tt.wantGone, err)
			}
			var retry *push.RetryError
			if got := errors.As(err, &retry); got != tt.wantRetry {
				t.Fatalf("retry = %v, want %v (%v)", got, tt.wantRetry, err)
			}
			if retry != nil && retry.After != tt.wantAfter {
				t.Errorf("After = %v, want %v", retry.After, tt.wantAfter)
			}
		})
	}
}
