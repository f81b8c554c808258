// Package config turns the environment into a validated Config, once, at
// start. Every setting has a default that works on a laptop; a bad value is
// an error naming the variable.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/webhook"
)

// Config is every setting of a Confab server. The comment of each field
// gives its variable and its default.
type Config struct {
	Host string // HOST, "0.0.0.0"
	Port int    // PORT, 8000

	DatabasePath string // DATABASE_PATH, "./data/confab.db"; its folder is created
	// JWTSecret is JWT_SECRET (≥ 32 bytes when set); empty means a secret
	// generated once and kept in the database.
	JWTSecret       string
	AccessTokenTTL  time.Duration // ACCESS_TOKEN_TTL, 15m
	RefreshTokenTTL time.Duration // REFRESH_TOKEN_TTL, 168h

	// AllowedOrigins is ALLOWED_ORIGINS (comma list, or "*"); empty: the
	// server's own host only. Pages on these origins may open sockets and
	// call the REST API (CORS); see OriginListed.
	AllowedOrigins []string
	LogLevel       slog.Level // LOG_LEVEL, info
	LogFormat      string     // LOG_FORMAT, "text" (or "json")
	TrustProxy     bool       // TRUST_PROXY, false

	RegistrationsPerMinute int // REGISTRATIONS_PER_MINUTE, 30
	LoginAttemptsPerMinute int // LOGIN_ATTEMPTS_PER_MINUTE, 10
	// RequestsPerSecond (REQUESTS_PER_SECOND, 50; 0 turns it off) and
	// RequestBurst (REQUEST_BURST, 100) size the token bucket each client
	// address has for /api/ requests.
	RequestsPerSecond int
	RequestBurst      int
	// PasswordHashConcurrency (PASSWORD_HASH_CONCURRENCY, the number of
	// cores Go uses) bounds the password hashes (logins, registrations,
	// password changes) that run at once, and PasswordHashQueue
	// (PASSWORD_HASH_QUEUE, 4 × the concurrency) how many more may wait;
	// past them a request is answered 503 overloaded at once.
	PasswordHashConcurrency int
	PasswordHashQueue       int
	WSFramesPerSecond       float64 // WS_FRAMES_PER_SECOND, 20
	WSFrameBurst            int     // WS_FRAME_BURST, 60
	// WSUserFramesPerSecond (WS_USER_FRAMES_PER_SECOND, 3 ×
	// WS_FRAMES_PER_SECOND) and WSUserFrameBurst (WS_USER_FRAME_BURST, 3
	// × WS_FRAME_BURST) size the bucket all the sockets of one user on a
	// node share.
	WSUserFramesPerSecond float64
	WSUserFrameBurst      int

	// WSSendQueue is WS_SEND_QUEUE, 256: frames that may wait for one slow
	// socket before it is closed with 4008.
	WSSendQueue int
	// CommitQueue is COMMIT_QUEUE, 4096: sends that may wait for the
	// group commit (the one database writer) at once; past it a send is
	// refused at once with 503 overloaded.
	CommitQueue       int
	WSMaxConnsPerIP   int           // WS_MAX_CONNS_PER_IP, 1000
	WSMaxConnsPerUser int           // WS_MAX_CONNS_PER_USER, 50
	WSMaxJoined       int           // WS_MAX_JOINED, 500: conversations one socket may join at once
	WSPingInterval    time.Duration // WS_PING_INTERVAL, 25s
	WSPongTimeout     time.Duration // WS_PONG_TIMEOUT, 60s
	// WSWriteDelay is WS_WRITE_DELAY, 0 (at most 100ms): how long a
	// socket's writer waits before writing, to gather the events that
	// follow into the same write. Less CPU per delivery under heavy
	// fan-out, for that much more latency.
	WSWriteDelay    time.Duration
	MaxBodyBytes    int64         // MAX_BODY_BYTES, 65536 (REST bodies and WebSocket frames)
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT, 10s
	// ReadHeaderTimeout (HTTP_READ_HEADER_TIMEOUT, 10s) and ReadTimeout
	// (HTTP_READ_TIMEOUT, 30s) bound how long a client may take to send
	// a request's headers and the whole request.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration

	// RunAsUID and RunAsGID are RUN_AS ("uid:gid", empty by default): a
	// server started as root gives the database folder to that user and
	// drops to it before it opens anything. For container platforms that
	// mount volumes owned by root.
	RunAsUID, RunAsGID int
	RunAs              bool

	// PprofAddr is PPROF_ADDR, empty (off): where to serve Go's profiler,
	// e.g. 127.0.0.1:6060. Must be a loopback address.
	PprofAddr string

	// MetricsToken is METRICS_TOKEN (≥ 16 bytes, no spaces, when set): the
	// Bearer token /metrics requires; empty: /metrics answers only
	// clients that connect from loopback or private addresses, not
	// through a proxy.
	MetricsToken string

	// VAPIDPrivateKey is VAPID_PRIVATE_KEY (a base64url P-256 private
	// scalar, as webpush.Keys.Private writes it); empty: a key pair
	// generated once and kept in the database, like JWT_SECRET.
	VAPIDPrivateKey string
	// VAPIDSubject is VAPID_SUBJECT, "mailto:admin@localhost": the
	// contact (mailto: or https:) every Web Push request names, for push
	// services to reach the operator. Set a real one in production:
	// Apple's service refuses localhost subjects.
	VAPIDSubject string
	// WebPushAllowed is WEBPUSH_ALLOWED_ENDPOINTS (comma list of URL
	// prefixes; empty: webpush.DefaultAllowed()): the only push services
	// a Web Push subscription may name.
	WebPushAllowed []string

	// Push notifications (app/notify/dispatch.go). Web Push needs no
	// setting beyond the VAPID ones: a subscription's endpoint is its URL.
	//
	// PushPreview is PUSH_PREVIEW, "sender": what a push shows of a
	// message: "full" (the sender's name and the content, cut at 200
	// characters), "sender" ("New message from <name>") or "none" ("New
	// message").
	PushPreview string
	// PushDelay is PUSH_DELAY, 0 (at most 10m): how long a push waits
	// before it is sent, beyond the second in which a burst's messages
	// coalesce. A recipient who reads the conversation up to the message,
	// or comes back online, within it gets none.
	PushDelay time.Duration
	// FCMCredentialsFile is FCM_CREDENTIALS_FILE, empty (no FCM pushes):
	// the Firebase service account's JSON key file.
	FCMCredentialsFile string
	// FCMBaseURL is FCM_BASE_URL, empty: fcm.DefaultBaseURL.
	FCMBaseURL string
	// APNsKeyFile is APNS_KEY_FILE, empty (no APNs pushes): the .p8 auth
	// key; with it APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC (the app's
	// bundle id) are required.
	APNsKeyFile, APNsKeyID, APNsTeamID, APNsTopic string
	// APNsBaseURL is APNS_BASE_URL, empty: apns.ProductionURL.
	APNsBaseURL string
	// PushRetention is PUSH_RETENTION, 168h: how long a delivery that is
	// done (sent, given up, or its device gone) is kept in the outbox
	// before it is pruned.
	PushRetention time.Duration

	// Webhooks (app/notify/webhooks.go, docs/push.md "Webhooks").
	//
	// WebhookURL is WEBHOOK_URL, empty (off: no event is kept, and the
	// send path does no extra work): where events are posted.
	WebhookURL string
	// WebhookSecret is WEBHOOK_SECRET, required with WEBHOOK_URL: the
	// whsec_… key requests are signed with.
	WebhookSecret webhook.Secret
	// WebhookEvents is WEBHOOK_EVENTS, empty (every event): the event
	// types sent, a comma list of webhook.Events.
	WebhookEvents []string
	// WebhookMaxAge is WEBHOOK_MAX_AGE, 24h: how long an event is retried
	// before it is given up.
	WebhookMaxAge time.Duration
	// WebhookRetention is WEBHOOK_RETENTION, 168h: how long sent and
	// given-up events are kept before they are pruned.
	WebhookRetention time.Duration

	RedisURL    string // REDIS_URL, empty: set, events fan out across nodes (needs DATABASE_URL)
	DatabaseURL string // DATABASE_URL, empty: set (postgres://), Postgres replaces SQLite

	// Attachments (docs/API.md, "Attachments"; docs/operations.md,
	// "Files").
	MaxUploadBytes   int64         // MAX_UPLOAD_BYTES, 25 MiB: the largest file
	UploadQuotaBytes int64         // UPLOAD_QUOTA_BYTES, 1 GiB: what one user's uploads may take; 0: no quota
	UploadsPerMinute int           // UPLOADS_PER_MINUTE, 30: per user
	UploadMaxPixels  int64         // UPLOAD_MAX_PIXELS, 16,000,000: the largest image, in pixels
	UploadGrace      time.Duration // UPLOAD_GRACE, 24h: how long an upload no message carries is kept

	// DeletedUsernameReservedFor is DELETED_USERNAME_RESERVED_FOR, 720h
	// (30 days): how long a deleted account's username cannot be
	// registered by anyone (docs/API.md, "Deleting an account").
	DeletedUsernameReservedFor time.Duration
	// FilesPath is FILES_PATH, empty: where one node keeps files;
	// empty means the folder "files" next to DATABASE_PATH (Files).
	// Ignored with S3_ENDPOINT.
	FilesPath string
	// S3 is the object store files go to instead: S3_ENDPOINT (a URL),
	// S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION (optional) and
	// S3_PREFIX (optional, a key prefix). Needed for uploads with
	// DATABASE_URL, where several nodes must see the same files.
	S3Endpoint, S3Bucket, S3AccessKey, S3SecretKey, S3Region, S3Prefix string
}

// OriginListed reports whether origin, a browser's Origin header, is in
// allowed (ALLOWED_ORIGINS as Load returns it): listed, whatever its case
// and trailing slash, or allowed holds "*". The sockets and CORS both ask
// it, so one list means the same to both. The server's own host is not in
// the list: a caller that allows it checks it apart.
func OriginListed(allowed []string, origin string) bool {
	origin = strings.TrimRight(origin, "/")
	for _, o := range allowed {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// Files is the folder one node keeps files in: FILES_PATH, or "files"
// next to DATABASE_PATH.
func (c Config) Files() string {
	if c.FilesPath != "" {
		return c.FilesPath
	}
	return filepath.Join(filepath.Dir(c.DatabasePath), "files")
}

// Addr is the listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Error is a bad setting: its message names the variable.
type Error struct {
	Var, Value, Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: %s=%q: %s", e.Var, e.Value, e.Reason)
}

// maxWriteDelay bounds WS_WRITE_DELAY: past it, the wait is no longer a
// small price for fewer writes.
const maxWriteDelay = 100 * time.Millisecond

// maxPushDelay bounds PUSH_DELAY: a delivery is retried for an hour after
// it is made (notify.DispatchOptions.MaxAge), and the wait must leave
// most of that hour to its retries.
const maxPushDelay = 10 * time.Minute

// Load reads the configuration through getenv (os.Getenv in main).
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		Host:                       p.str("HOST", "0.0.0.0"),
		Port:                       p.integer("PORT", 8000, 1, 65535),
		DatabasePath:               p.str("DATABASE_PATH", "./data/confab.db"),
		JWTSecret:                  getenv("JWT_SECRET"),
		AccessTokenTTL:             p.duration("ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL:            p.duration("REFRESH_TOKEN_TTL", 168*time.Hour),
		LogFormat:                  p.oneOf("LOG_FORMAT", "text", "text", "json"),
		TrustProxy:                 p.boolean("TRUST_PROXY", false),
		RegistrationsPerMinute:     p.integer("REGISTRATIONS_PER_MINUTE", 30, 1, 1<<30),
		LoginAttemptsPerMinute:     p.integer("LOGIN_ATTEMPTS_PER_MINUTE", 10, 1, 1<<30),
		RequestsPerSecond:          p.integer("REQUESTS_PER_SECOND", 50, 0, 1<<30),
		RequestBurst:               p.integer("REQUEST_BURST", 100, 1, 1<<30),
		PasswordHashConcurrency:    p.integer("PASSWORD_HASH_CONCURRENCY", runtime.GOMAXPROCS(0), 1, 1<<16),
		WSFramesPerSecond:          float64(p.integer("WS_FRAMES_PER_SECOND", 20, 1, 1<<30)),
		WSFrameBurst:               p.integer("WS_FRAME_BURST", 60, 1, 1<<30),
		WSSendQueue:                p.integer("WS_SEND_QUEUE", 256, 8, 1<<16),
		CommitQueue:                p.integer("COMMIT_QUEUE", 4096, 1, 1<<20),
		WSMaxConnsPerIP:            p.integer("WS_MAX_CONNS_PER_IP", 1000, 1, 1<<24),
		WSMaxConnsPerUser:          p.integer("WS_MAX_CONNS_PER_USER", 50, 1, 1<<24),
		WSMaxJoined:                p.integer("WS_MAX_JOINED", 500, 1, 1<<20),
		WSPingInterval:             p.duration("WS_PING_INTERVAL", 25*time.Second),
		WSPongTimeout:              p.duration("WS_PONG_TIMEOUT", 60*time.Second),
		MaxBodyBytes:               int64(p.integer("MAX_BODY_BYTES", 64<<10, 1024, 64<<20)),
		ShutdownTimeout:            p.duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		ReadHeaderTimeout:          p.duration("HTTP_READ_HEADER_TIMEOUT", 10*time.Second),
		ReadTimeout:                p.duration("HTTP_READ_TIMEOUT", 30*time.Second),
		MetricsToken:               getenv("METRICS_TOKEN"),
		VAPIDPrivateKey:            strings.TrimSpace(getenv("VAPID_PRIVATE_KEY")),
		VAPIDSubject:               p.str("VAPID_SUBJECT", DefaultVAPIDSubject),
		PushPreview:                p.oneOf("PUSH_PREVIEW", "sender", "full", "sender", "none"),
		FCMCredentialsFile:         strings.TrimSpace(getenv("FCM_CREDENTIALS_FILE")),
		FCMBaseURL:                 strings.TrimSpace(getenv("FCM_BASE_URL")),
		APNsKeyFile:                strings.TrimSpace(getenv("APNS_KEY_FILE")),
		APNsKeyID:                  strings.TrimSpace(getenv("APNS_KEY_ID")),
		APNsTeamID:                 strings.TrimSpace(getenv("APNS_TEAM_ID")),
		APNsTopic:                  strings.TrimSpace(getenv("APNS_TOPIC")),
		APNsBaseURL:                strings.TrimSpace(getenv("APNS_BASE_URL")),
		PushRetention:              p.duration("PUSH_RETENTION", 168*time.Hour),
		RedisURL:                   getenv("REDIS_URL"),
		DatabaseURL:                getenv("DATABASE_URL"),
		MaxUploadBytes:             int64(p.integer("MAX_UPLOAD_BYTES", 25<<20, 1024, 1<<40)),
		UploadQuotaBytes:           int64(p.integer("UPLOAD_QUOTA_BYTES", 1<<30, 0, 1<<50)),
		UploadsPerMinute:           p.integer("UPLOADS_PER_MINUTE", 30, 1, 1<<30),
		UploadMaxPixels:            int64(p.integer("UPLOAD_MAX_PIXELS", 16_000_000, 1, 1<<40)),
		UploadGrace:                p.duration("UPLOAD_GRACE", 24*time.Hour),
		DeletedUsernameReservedFor: p.duration("DELETED_USERNAME_RESERVED_FOR", 30*24*time.Hour),
		S3Endpoint:                 strings.TrimSpace(getenv("S3_ENDPOINT")),
		S3Bucket:                   strings.TrimSpace(getenv("S3_BUCKET")),
		S3AccessKey:                getenv("S3_ACCESS_KEY"),
		S3SecretKey:                getenv("S3_SECRET_KEY"),
		S3Region:                   strings.TrimSpace(getenv("S3_REGION")),
		S3Prefix:                   strings.TrimSpace(getenv("S3_PREFIX")),
	}
	c.FilesPath = strings.TrimSpace(getenv("FILES_PATH"))
	c.WebhookMaxAge = p.duration("WEBHOOK_MAX_AGE", 24*time.Hour)
	c.WebhookRetention = p.duration("WEBHOOK_RETENTION", 168*time.Hour)
	if c.WebhookURL = strings.TrimSpace(getenv("WEBHOOK_URL")); c.WebhookURL != "" {
		// The URL may carry a token: errors never show it.
		if err := webhook.CheckURL(c.WebhookURL); err != nil {
			p.fail("WEBHOOK_URL", "(hidden)", "must be an http:// or https:// URL with a host")
		}
		secret, err := webhook.ParseSecret(getenv("WEBHOOK_SECRET"))
		if err != nil {
			p.fail("WEBHOOK_SECRET", "(hidden)", "must be set with WEBHOOK_URL: "+err.Error())
		}
		c.WebhookSecret = secret
		events, err := webhook.ParseEvents(getenv("WEBHOOK_EVENTS"))
		if err != nil {
			p.fail("WEBHOOK_EVENTS", getenv("WEBHOOK_EVENTS"), err.Error())
		}
		c.WebhookEvents = events
	} else if _, err := webhook.ParseEvents(getenv("WEBHOOK_EVENTS")); err != nil {
		p.fail("WEBHOOK_EVENTS", getenv("WEBHOOK_EVENTS"), err.Error())
	}
	c.PasswordHashQueue = p.integer("PASSWORD_HASH_QUEUE", 4*c.PasswordHashConcurrency, 0, 1<<20)
	c.WSUserFramesPerSecond = float64(p.integer("WS_USER_FRAMES_PER_SECOND", 3*int(c.WSFramesPerSecond), 1, 1<<30))
	c.WSUserFrameBurst = p.integer("WS_USER_FRAME_BURST", 3*c.WSFrameBurst, 1, 1<<30)
	switch lv := strings.ToLower(p.str("LOG_LEVEL", "info")); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		p.fail("LOG_LEVEL", lv, "must be debug, info, warn or error")
	}
	for _, o := range strings.Split(getenv("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(o, "/"))
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		p.fail("JWT_SECRET", "(hidden)", fmt.Sprintf("must be at least 32 bytes, got %d", len(c.JWTSecret)))
	}
	if t := c.MetricsToken; t != "" && (len(t) < 16 || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		p.fail("METRICS_TOKEN", "(hidden)", "must be at least 16 bytes with no spaces or control characters")
	}
	if v := strings.TrimSpace(getenv("WS_WRITE_DELAY")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxWriteDelay {
			p.fail("WS_WRITE_DELAY", v, "must be a Go duration from 0 to 100ms, such as 2ms")
		}
		c.WSWriteDelay = min(max(d, 0), maxWriteDelay)
	}
	if v := strings.TrimSpace(getenv("PUSH_DELAY")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxPushDelay {
			p.fail("PUSH_DELAY", v, "must be a Go duration from 0 to 10m, such as 30s")
		}
		c.PushDelay = min(max(d, 0), maxPushDelay)
	}
	if c.WSPongTimeout <= c.WSPingInterval {
		p.fail("WS_PONG_TIMEOUT", c.WSPongTimeout.String(), "must be longer than WS_PING_INTERVAL")
	}
	// The URLs hold passwords: errors never show them.
	if v := c.DatabaseURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" && u.Query().Get("host") == "" {
			p.fail("DATABASE_URL", "(hidden)", "must be a postgres://user:password@host:port/database URL")
		}
	}
	if v := c.RedisURL; v != "" {
		switch u, err := url.Parse(v); {
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
			p.fail("REDIS_URL", "(hidden)", "must be a redis://[:password@]host:port[/db] (or rediss://) URL")
		case c.DatabaseURL == "":
			p.fail("REDIS_URL", "(hidden)", "needs DATABASE_URL: the nodes Redis joins must share one Postgres database")
		}
	}
	if c.S3Endpoint != "" {
		if u, err := url.Parse(c.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("S3_ENDPOINT", c.S3Endpoint, "must be an http:// or https:// URL such as https://s3.eu-west-1.amazonaws.com")
		}
		for _, v := range []struct{ name, value string }{{"S3_BUCKET", c.S3Bucket}, {"S3_ACCESS_KEY", c.S3AccessKey}, {"S3_SECRET_KEY", c.S3SecretKey}} {
			if v.value == "" {
				p.fail(v.name, "", "must be set with S3_ENDPOINT")
			}
		}
	}
	if c.UploadGrace < time.Minute {
		p.fail("UPLOAD_GRACE", c.UploadGrace.String(), "must be at least 1m")
	}
	if c.VAPIDPrivateKey != "" {
		if _, err := webpush.ParseKeys(c.VAPIDPrivateKey); err != nil {
			p.fail("VAPID_PRIVATE_KEY", "(hidden)", "must be a base64url P-256 private key (32 bytes)")
		}
	}
	if !validSubject(c.VAPIDSubject) {
		p.fail("VAPID_SUBJECT", c.VAPIDSubject, "must be a mailto: address or an https:// URL")
	}
	for _, e := range strings.Split(getenv("WEBPUSH_ALLOWED_ENDPOINTS"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.WebPushAllowed = append(c.WebPushAllowed, e)
		}
	}
	if len(c.WebPushAllowed) == 0 {
		c.WebPushAllowed = webpush.DefaultAllowed()
	} else if err := webpush.CheckAllowed(c.WebPushAllowed); err != nil {
		p.fail("WEBPUSH_ALLOWED_ENDPOINTS", getenv("WEBPUSH_ALLOWED_ENDPOINTS"), err.Error())
	}
	for _, v := range []struct{ name, value string }{{"FCM_BASE_URL", c.FCMBaseURL}, {"APNS_BASE_URL", c.APNsBaseURL}} {
		if u, err := url.Parse(v.value); v.value != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			p.fail(v.name, v.value, "must be an http:// or https:// URL")
		}
	}
	if c.APNsKeyFile != "" {
		for _, v := range []struct{ name, value string }{{"APNS_KEY_ID", c.APNsKeyID}, {"APNS_TEAM_ID", c.APNsTeamID}, {"APNS_TOPIC", c.APNsTopic}} {
			if v.value == "" {
				p.fail(v.name, "", "must be set with APNS_KEY_FILE")
			}
		}
	}
	if v := getenv("PPROF_ADDR"); v != "" {
		host, _, err := net.SplitHostPort(v)
		ip := net.ParseIP(host)
		if err != nil || !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			p.fail("PPROF_ADDR", v, "must be a loopback host:port such as 127.0.0.1:6060")
		}
		c.PprofAddr = v
	}
	if v := getenv("RUN_AS"); v != "" {
		u, g, ok := strings.Cut(v, ":")
		uid, uerr := strconv.Atoi(u)
		gid, gerr := strconv.Atoi(g)
		if !ok || uerr != nil || gerr != nil || uid <= 0 || gid <= 0 {
			p.fail("RUN_AS", v, "must be uid:gid, two positive numbers such as 65532:65532")
		}
		c.RunAs, c.RunAsUID, c.RunAsGID = true, uid, gid
	}
	if p.err != nil {
		return Config{}, p.err
	}
	return c, nil
}

// DefaultVAPIDSubject is VAPID_SUBJECT's default.
const DefaultVAPIDSubject = "mailto:admin@localhost"

// validSubject reports whether s is a VAPID subject (RFC 8292): a mailto:
// address or an https: URL.
func validSubject(s string) bool {
	if addr, ok := strings.CutPrefix(s, "mailto:"); ok {
		return strings.Contains(addr, "@") && !strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f })
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

type parser struct {
	getenv func(string) string
	err    error // the first error
}

func (p *parser) fail(name, value, reason string) {
	if p.err == nil {
		p.err = &Error{Var: name, Value: value, Reason: reason}
	}
}

func (p *parser) str(name, def string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	return def
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		p.fail(name, v, "must be a positive Go duration such as 15m or 168h")
		return def
	}
	return d
}

func (p *parser) boolean(name string, def bool) bool {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.fail(name, v, "must be true or false")
		return def
	}
	return b
}

func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(p.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}
