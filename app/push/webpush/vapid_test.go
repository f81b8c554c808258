package webpush

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuthorization_CachedPerAudienceUntilNearExpiry(t *testing.T) {
	keys, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := NewSender(keys, "mailto:ops@confab.example", nil, nil)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }

	const fcm, moz = "https://fcm.googleapis.com", "https://updates.push.services.mozilla.com"
	a1, err := s.authorization(fcm)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a1, "vapid t=") || !strings.HasSuffix(a1, ", k="+keys.Public()) {
		t.Fatalf("Authorization = %q", a1)
	}
	now = now.Add(10 * time.Hour)
	if a2, _ := s.authorization(fcm); a2 != a1 {
		t.Fatal("token re-signed with 2h left")
	}
	if b, _ := s.authorization(moz); b == a1 {
		t.Fatal("two audiences share a token")
	}
	now = now.Add(90 * time.Minute) // 30 minutes left
	if a3, _ := s.authorization(fcm); a3 == a1 {
		t.Fatal("token reused with 30 minutes left")
	}
	now = now.Add(13 * time.Hour)
	if _, err := s.authorization(fcm); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.tokens[moz]; ok {
		t.Fatal("an expired token for an audience not seen since is kept")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999999999", maxTTL},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTopic_ValidForAnyKey(t *testing.T) {
	seen := map[string]string{}
	for _, k := range []string{"conversation:42", "conversation:43", "é/ü?&=", strings.Repeat("x", 500), "a"} {
		tp := topic(k)
		if len(tp) != 32 || strings.Trim(tp, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("topic(%q) = %q, not 32 base64url characters", k, tp)
		}
		if other, ok := seen[tp]; ok {
			t.Errorf("%q and %q share topic %q", k, other, tp)
		}
		seen[tp] = k
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://fcm.googleapis.com/fcm/send/x":     "https://fcm.googleapis.com",
		"https://FCM.googleapis.com:443/fcm/send/x": "https://fcm.googleapis.com",
		"http://127.0.0.1:8080/push/x":              "http://127.0.0.1:8080",
		"https://[::1]:8443/x":                      "https://[::1]:8443",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := origin(u); got != want {
			t.Errorf("origin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTTLSeconds(t *testing.T) {
	for in, want := range map[time.Duration]int64{
		-time.Second:            0,
		0:                       0,
		1500 * time.Millisecond: 1,
		time.Hour:               3600,
		365 * 24 * time.Hour:    int64(maxTTL / time.Second),
	} {
		if got := ttlSeconds(in); got != want {
			t.Errorf("ttlSeconds(%v) = %d, want %d", in, got, want)
		}
	}
}
