package webhook_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/confab/confab/app/webhook"
)

// The published test vector of the Standard Webhooks libraries
// (libraries/go/webhook_test.go, TestWebhookSign, v1.3.0).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSign_PublishedVector(t *testing.T) {
	secret, err := webhook.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	got := webhook.Sign(secret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if got != vectorSignature {
		t.Fatalf("Sign = %q, want %q", got, vectorSignature)
	}
}

func TestSign_LibraryVerifies(t *testing.T) {
	secret := webhook.NewSecret()
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatalf("library rejects the secret: %v", err)
	}
	at := time.Now()
	body := []byte(`{"type":"user.created"}`)
	h := http.Header{}
	h.Set("webhook-id", webhook.NewID())
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", webhook.Sign(secret, h.Get("webhook-id"), at, body))
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("library: %v", err)
	}
}
