package webhook_test

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/confab/confab/app/webhook"
)

func TestParseSecret_Errors(t *testing.T) {
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name    string
		in      string
		wantErr string // "" means it parses
	}{
		{"24 bytes", "whsec_" + key(24), ""},
		{"64 bytes", "whsec_" + key(64), ""},
		{"spaces around", "  whsec_" + key(32) + "\n", ""},
		{"empty", "", "WEBHOOK_SECRET is empty"},
		{"no prefix", key(32), "WEBHOOK_SECRET must start with whsec_"},
		{"other prefix", "sk_" + key(32), "WEBHOOK_SECRET must start with whsec_"},
		{"url-safe base64", "whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))), "not valid standard base64"},
		{"not base64", "whsec_not*base64!", "not valid standard base64"},
		{"too short", "whsec_" + key(16), "WEBHOOK_SECRET is too short: its key is 16 bytes, it must be at least 24"},
		{"too long", "whsec_" + key(65), "WEBHOOK_SECRET is too long: its key is 65 bytes, it must be at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := webhook.ParseSecret(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret: %v", err)
				}
				if got, want := s.String(), strings.TrimSpace(tt.in); got != want {
					t.Errorf("String() = %q, want %q", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSecret(%q) = nil error, want one containing %q", tt.in, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if enc, _ := strings.CutPrefix(tt.in, "whsec_"); len(enc) > 8 && strings.Contains(err.Error(), enc) {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

func TestNewSecret_RoundTripsAndDiffers(t *testing.T) {
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a.String() == b.String() {
		t.Fatal("two new secrets are equal")
	}
	parsed, err := webhook.ParseSecret(a.String())
	if err != nil {
		t.Fatalf("ParseSecret(NewSecret().String()): %v", err)
	}
	if parsed.String() != a.String() {
		t.Errorf("round trip changed the secret")
	}
}

func TestSecret_NotInStructuredLogs(t *testing.T) {
	s := webhook.NewSecret()
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "webhook_secret", s)
	if strings.Contains(buf.String(), s.String()) {
		t.Fatalf("log line holds the secret: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "redacted") {
		t.Errorf("log line %q does not say the secret was redacted", buf.String())
	}
}
