package config_test

import (
	"errors"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/webhook"
)

// env returns a getenv that sees only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoad_DefaultsAreTheContracts(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatalf("a bare start must work: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"HOST", c.Host, "0.0.0.0"},
		{"PORT", c.Port, 8000},
		{"Addr", c.Addr(), "0.0.0.0:8000"},
		{"DATABASE_PATH", c.DatabasePath, "./data/confab.db"},
		{"JWT_SECRET", c.JWTSecret, ""},
		{"ACCESS_TOKEN_TTL", c.AccessTokenTTL, 15 * time.Minute},
		{"REFRESH_TOKEN_TTL", c.RefreshTokenTTL, 168 * time.Hour},
		{"ALLOWED_ORIGINS", len(c.AllowedOrigins), 0},
		{"LOG_LEVEL", c.LogLevel, slog.LevelInfo},
		{"LOG_FORMAT", c.LogFormat, "text"},
		{"TRUST_PROXY", c.TrustProxy, false},
		{"REGISTRATIONS_PER_MINUTE", c.RegistrationsPerMinute, 30},
		{"LOGIN_ATTEMPTS_PER_MINUTE", c.LoginAttemptsPerMinute, 10},
		{"REQUESTS_PER_SECOND", c.RequestsPerSecond, 50},
		{"REQUEST_BURST", c.RequestBurst, 100},
		{"PASSWORD_HASH_CONCURRENCY", c.PasswordHashConcurrency, runtime.GOMAXPROCS(0)},
		{"PASSWORD_HASH_QUEUE", c.PasswordHashQueue, 4 * runtime.GOMAXPROCS(0)},
		{"WS_FRAMES_PER_SECOND", c.WSFramesPerSecond, 20.0},
		{"WS_FRAME_BURST", c.WSFrameBurst, 60},
		{"WS_USER_FRAMES_PER_SECOND", c.WSUserFramesPerSecond, 60.0},
		{"WS_USER_FRAME_BURST", c.WSUserFrameBurst, 180},
		{"WS_PING_INTERVAL", c.WSPingInterval, 25 * time.Second},
		{"WS_PONG_TIMEOUT", c.WSPongTimeout, 60 * time.Second},
		{"WS_WRITE_DELAY", c.WSWriteDelay, time.Duration(0)},
		{"PUSH_DELAY", c.PushDelay, time.Duration(0)},
		{"MAX_BODY_BYTES", c.MaxBodyBytes, int64(64 << 10)},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout, 10 * time.Second},
		{"COMMIT_QUEUE", c.CommitQueue, 4096},
		{"DELETED_USERNAME_RESERVED_FOR", c.DeletedUsernameReservedFor, 720 * time.Hour},
		{"REDIS_URL", c.RedisURL, ""},
		{"DATABASE_URL", c.DatabaseURL, ""},
		{"VAPID_PRIVATE_KEY", c.VAPIDPrivateKey, ""},
		{"VAPID_SUBJECT", c.VAPIDSubject, "mailto:admin@localhost"},
		{"WEBPUSH_ALLOWED_ENDPOINTS", strings.Join(c.WebPushAllowed, ","), strings.Join(webpush.DefaultAllowed(), ",")},
		{"PUSH_PREVIEW", c.PushPreview, "sender"},
		{"FCM_CREDENTIALS_FILE", c.FCMCredentialsFile, ""},
		{"FCM_BASE_URL", c.FCMBaseURL, ""},
		{"APNS_KEY_FILE", c.APNsKeyFile, ""},
		{"APNS_BASE_URL", c.APNsBaseURL, ""},
		{"PUSH_RETENTION", c.PushRetention, 168 * time.Hour},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s default %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoad_ReadsSettings(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"HOST":                      "127.0.0.1",
		"PORT":                      " 9000 ",
		"DATABASE_PATH":             "/data/c.db",
		"JWT_SECRET":                strings.Repeat("s", 32), // exactly the minimum
		"ACCESS_TOKEN_TTL":          "90s",
		"REFRESH_TOKEN_TTL":         "720h",
		"ALLOWED_ORIGINS":           " https://a.example/ ,, https://b.example:8443 ",
		"LOG_LEVEL":                 "DEBUG",
		"LOG_FORMAT":                "JSON",
		"TRUST_PROXY":               "true",
		"REGISTRATIONS_PER_MINUTE":  "5",
		"LOGIN_ATTEMPTS_PER_MINUTE": "7",
		"REQUESTS_PER_SECOND":       "0",
		"REQUEST_BURST":             "3",
		"PASSWORD_HASH_CONCURRENCY": "3",
		"PASSWORD_HASH_QUEUE":       "0",
		"WS_FRAMES_PER_SECOND":      "50",
		"WS_FRAME_BURST":            "200",
		"WS_USER_FRAMES_PER_SECOND": "70",
		"WS_PING_INTERVAL":          "10s",
		"WS_PONG_TIMEOUT":           "30s",
		"WS_WRITE_DELAY":            "2ms",
		"PUSH_DELAY":                "45s",
		"MAX_BODY_BYTES":            "131072",
		"SHUTDOWN_TIMEOUT":          "1m",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr() != "127.0.0.1:9000" || c.DatabasePath != "/data/c.db" || c.JWTSecret != strings.Repeat("s", 32) ||
		c.AccessTokenTTL != 90*time.Second || c.RefreshTokenTTL != 720*time.Hour ||
		c.LogLevel != slog.LevelDebug || c.LogFormat != "json" || !c.TrustProxy ||
		c.RegistrationsPerMinute != 5 || c.LoginAttemptsPerMinute != 7 ||
		c.RequestsPerSecond != 0 || c.RequestBurst != 3 || c.PasswordHashConcurrency != 3 || c.PasswordHashQueue != 0 ||
		c.WSFramesPerSecond != 50 || c.WSFrameBurst != 200 ||
		c.WSUserFramesPerSecond != 70 || c.WSUserFrameBurst != 600 || // 3 × WS_FRAME_BURST
		c.WSPingInterval != 10*time.Second || c.WSPongTimeout != 30*time.Second || c.WSWriteDelay != 2*time.Millisecond ||
		c.PushDelay != 45*time.Second || c.MaxBodyBytes != 131072 || c.ShutdownTimeout != time.Minute {
		t.Errorf("config = %+v", c)
	}
	if want := []string{"https://a.example", "https://b.example:8443"}; !slices.Equal(c.AllowedOrigins, want) {
		t.Errorf("ALLOWED_ORIGINS %q, want %q", c.AllowedOrigins, want)
	}
	keys, err := webpush.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	c, err = config.Load(env(map[string]string{"VAPID_PRIVATE_KEY": keys.Private(), "VAPID_SUBJECT": "https://chat.example/contact",
		"WEBPUSH_ALLOWED_ENDPOINTS": " http://127.0.0.1:9999/ ,, https://*.notify.windows.com/ "}))
	if err != nil {
		t.Fatal(err)
	}
	if c.VAPIDPrivateKey != keys.Private() || c.VAPIDSubject != "https://chat.example/contact" ||
		!slices.Equal(c.WebPushAllowed, []string{"http://127.0.0.1:9999/", "https://*.notify.windows.com/"}) {
		t.Errorf("VAPID_PRIVATE_KEY, VAPID_SUBJECT, WEBPUSH_ALLOWED_ENDPOINTS: %+v", c)
	}
	c, err = config.Load(env(map[string]string{"ALLOWED_ORIGINS": "*", "LOG_LEVEL": "warning"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.AllowedOrigins, []string{"*"}) || c.LogLevel != slog.LevelWarn {
		t.Errorf("ALLOWED_ORIGINS %q, LOG_LEVEL %v", c.AllowedOrigins, c.LogLevel)
	}
}

func TestLoad_BadValueNamesTheVariable(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"PORT", "abc"},
		{"PORT", "0"},
		{"PORT", "65536"},
		{"PORT", "80.5"},
		{"ACCESS_TOKEN_TTL", "15"},
		{"ACCESS_TOKEN_TTL", "fifteen minutes"},
		{"ACCESS_TOKEN_TTL", "-5m"},
		{"ACCESS_TOKEN_TTL", "0s"},
		{"DELETED_USERNAME_RESERVED_FOR", "0s"},
		{"DELETED_USERNAME_RESERVED_FOR", "30 days"},
		{"REFRESH_TOKEN_TTL", "7d"},
		{"WS_PING_INTERVAL", "often"},
		{"WS_PONG_TIMEOUT", "20s"}, // not longer than the ping interval
		{"WS_WRITE_DELAY", "-1ms"},
		{"WS_WRITE_DELAY", "1s"},
		{"WS_WRITE_DELAY", "soon"},
		{"PUSH_DELAY", "-1s"},
		{"PUSH_DELAY", "11m"},
		{"PUSH_DELAY", "later"},
		{"SHUTDOWN_TIMEOUT", "10"},
		{"JWT_SECRET", "too-short-secret"},
		{"JWT_SECRET", strings.Repeat("s", 31)},
		{"LOG_LEVEL", "verbose"},
		{"LOG_LEVEL", "trace"},
		{"LOG_FORMAT", "xml"},
		{"TRUST_PROXY", "maybe"},
		{"REGISTRATIONS_PER_MINUTE", "0"},
		{"REGISTRATIONS_PER_MINUTE", "many"},
		{"LOGIN_ATTEMPTS_PER_MINUTE", "-1"},
		{"WS_FRAMES_PER_SECOND", "fast"},
		{"REQUESTS_PER_SECOND", "-1"},
		{"REQUEST_BURST", "0"},
		{"PASSWORD_HASH_CONCURRENCY", "0"},
		{"PASSWORD_HASH_QUEUE", "-1"},
		{"WS_FRAME_BURST", "x"},
		{"WS_USER_FRAMES_PER_SECOND", "0"},
		{"WS_USER_FRAME_BURST", "lots"},
		{"MAX_BODY_BYTES", "64KiB"},
		{"COMMIT_QUEUE", "0"},
		{"COMMIT_QUEUE", "lots"},
		{"REDIS_URL", "redis://localhost:6379"}, // without DATABASE_URL
		{"REDIS_URL", "localhost:6379"},
		{"DATABASE_URL", "mysql://localhost/confab"},
		{"DATABASE_URL", "/var/lib/confab.db"},
		{"VAPID_PRIVATE_KEY", "not-a-key"},
		{"VAPID_PRIVATE_KEY", "AAAA"},
		{"VAPID_SUBJECT", "admin@example.com"},
		{"VAPID_SUBJECT", "http://example.com"},
		{"VAPID_SUBJECT", "mailto:nobody"},
		{"WEBPUSH_ALLOWED_ENDPOINTS", "https://fcm.googleapis.com/,ftp://push.example/"},
		{"WEBPUSH_ALLOWED_ENDPOINTS", "https://*.com/"},
		{"PUSH_PREVIEW", "everything"},
		{"FCM_BASE_URL", "fcm.googleapis.com"},
		{"APNS_BASE_URL", "ftp://api.push.apple.com"},
		{"PUSH_RETENTION", "a week"},
		{"PUSH_RETENTION", "-1h"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := config.Load(env(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.name) {
				t.Errorf("error %q does not name %s", msg, tt.name)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tt.name {
				t.Errorf("error %#v, want a *config.Error for %s", err, tt.name)
			}
		})
	}
}

// TestLoad_APNsNeedsItsIdentifiers: an APNs key without its key id,
// team id and topic is refused, naming the first missing one.
func TestLoad_APNsNeedsItsIdentifiers(t *testing.T) {
	full := map[string]string{"APNS_KEY_FILE": "/keys/AuthKey.p8", "APNS_KEY_ID": "ABC123DEFG", "APNS_TEAM_ID": "DEF123GHIJ", "APNS_TOPIC": "chat.example.app"}
	if c, err := config.Load(env(full)); err != nil || c.APNsTopic != "chat.example.app" || c.APNsKeyID != "ABC123DEFG" {
		t.Fatalf("%+v, %v", c, err)
	}
	for _, missing := range []string{"APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"} {
		vars := maps.Clone(full)
		delete(vars, missing)
		var ce *config.Error
		if _, err := config.Load(env(vars)); !errors.As(err, &ce) || ce.Var != missing {
			t.Errorf("without %s: %v", missing, err)
		}
	}
}

func TestLoad_MultiNodeURLs(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"DATABASE_URL": "postgres://confab:pw@db.internal:5432/confab?sslmode=disable",
		"REDIS_URL":    "redis://:pw@cache.internal:6379/0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL == "" || c.RedisURL == "" {
		t.Errorf("DatabaseURL %q, RedisURL %q: want both kept", c.DatabaseURL, c.RedisURL)
	}
	if _, err := config.Load(env(map[string]string{"DATABASE_URL": "postgresql://db.internal/confab"})); err != nil {
		t.Errorf("Postgres alone (one node): %v", err)
	}
}

func TestLoad_ErrorsNeverShowSecrets(t *testing.T) {
	for name, value := range map[string]string{
		"JWT_SECRET":   "hunter2-hunter2",
		"DATABASE_URL": "mysql://confab:hunter2@db.internal/confab",
		"REDIS_URL":    "redis://:hunter2@cache.internal:6379/0", // without DATABASE_URL
	} {
		_, err := config.Load(env(map[string]string{name: value}))
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

// ALLOWED_ORIGINS means the same to the sockets and to CORS: an origin is
// listed whatever its case and trailing slash, "*" lists every origin, and
// an empty list none (the server's own host is the callers' business).
func TestOriginListed(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ALLOWED_ORIGINS": " https://app.example.com/ , http://localhost:5173"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		allowed []string
		origin  string
		want    bool
	}{
		{c.AllowedOrigins, "https://app.example.com", true},
		{c.AllowedOrigins, "https://App.Example.com/", true},
		{c.AllowedOrigins, "http://localhost:5173", true},
		{c.AllowedOrigins, "http://app.example.com", false},          // another scheme is another origin
		{c.AllowedOrigins, "https://app.example.com:8443", false},    // so is another port
		{c.AllowedOrigins, "https://evil.app.example.com", false},    // no subdomains
		{c.AllowedOrigins, "https://app.example.com.evil.io", false}, // no prefixes
		{c.AllowedOrigins, "null", false},
		{[]string{"*"}, "https://anyone.example", true},
		{nil, "https://app.example.com", false},
	} {
		if got := config.OriginListed(tc.allowed, tc.origin); got != tc.want {
			t.Errorf("OriginListed(%q, %q) = %v, want %v", tc.allowed, tc.origin, got, tc.want)
		}
	}
}

func TestLoad_Webhooks(t *testing.T) {
	secret := webhook.NewSecret().String()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookURL != "" || c.WebhookEvents != nil || c.WebhookMaxAge != 24*time.Hour || c.WebhookRetention != 168*time.Hour {
		t.Errorf("defaults: url %q events %v max age %v retention %v", c.WebhookURL, c.WebhookEvents, c.WebhookMaxAge, c.WebhookRetention)
	}
	c, err = config.Load(env(map[string]string{"WEBHOOK_URL": "https://hooks.example.com/in", "WEBHOOK_SECRET": secret,
		"WEBHOOK_EVENTS": "user.created, message.created"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookSecret.String() != secret || !slices.Equal(c.WebhookEvents, []string{"message.created", "user.created"}) {
		t.Errorf("events %v, secret kept: %v", c.WebhookEvents, c.WebhookSecret.String() == secret)
	}
	c, err = config.Load(env(map[string]string{"WEBHOOK_URL": "https://hooks.example.com/in", "WEBHOOK_SECRET": secret}))
	if err != nil || len(c.WebhookEvents) != len(webhook.Events) {
		t.Errorf("no WEBHOOK_EVENTS: %v, %v; want every event", c.WebhookEvents, err)
	}

	bad := []struct {
		name, wantVar string
		vars          map[string]string
	}{
		{"url without secret", "WEBHOOK_SECRET", map[string]string{"WEBHOOK_URL": "https://hooks.example.com/in"}},
		{"secret not whsec", "WEBHOOK_SECRET", map[string]string{"WEBHOOK_URL": "https://hooks.example.com/in", "WEBHOOK_SECRET": "hunter2hunter2hunter2hunter2"}},
		{"url not http", "WEBHOOK_URL", map[string]string{"WEBHOOK_URL": "ftp://tok_hidden@example.com/", "WEBHOOK_SECRET": secret}},
		{"unknown event", "WEBHOOK_EVENTS", map[string]string{"WEBHOOK_URL": "https://hooks.example.com/in", "WEBHOOK_SECRET": secret, "WEBHOOK_EVENTS": "message.sent"}},
		{"unknown event, webhooks off", "WEBHOOK_EVENTS", map[string]string{"WEBHOOK_EVENTS": "message.created,nope"}},
		{"max age", "WEBHOOK_MAX_AGE", map[string]string{"WEBHOOK_MAX_AGE": "forever"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(env(tt.vars))
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tt.wantVar {
				t.Fatalf("Load = %v, want an error naming %s", err, tt.wantVar)
			}
			for _, hidden := range []string{"hunter2", "tok_hidden", strings.TrimPrefix(secret, "whsec_")} {
				if strings.Contains(err.Error(), hidden) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
}
