package notify

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/push/webpush"
)

// maxToken bounds an FCM or APNs token: theirs are a few hundred bytes.
const maxToken = 4096

// Options configures a Service. Every field has a working zero value.
type Options struct {
	// Allowed is the Web Push endpoint prefixes subscriptions may name
	// (WEBPUSH_ALLOWED_ENDPOINTS); nil: webpush.DefaultAllowed().
	Allowed []string
	// VAPIDPublicKey is the server's VAPID public key, base64url, that
	// browsers subscribe with; "" when there is none.
	VAPIDPublicKey string
	// MaxDevices caps the devices of one user; zero: MaxDevices.
	MaxDevices int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Service holds the rules of devices and mutes over a Store.
type Service struct {
	store Store
	opt   Options
}

// NewService returns a Service over store.
func NewService(store Store, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxDevices <= 0 {
		opt.MaxDevices = MaxDevices
	}
	if len(opt.Allowed) == 0 {
		opt.Allowed = webpush.DefaultAllowed()
	}
	return &Service{store: store, opt: opt}
}

// VAPIDPublicKey returns the key browsers pass to pushManager.subscribe.
func (s *Service) VAPIDPublicKey() string { return s.opt.VAPIDPublicKey }

// Registration is what a client sends to register a device: a platform
// and its token, or for Web Push its subscription.
type Registration struct {
	Platform     string
	Token        string
	Subscription *Subscription
}

// Register registers a device for userID. created is false when the user
// had already registered the same token (or Web Push endpoint): that
// device is returned, with its id. A token another user registered moves
// to this user, as when a phone changes hands. Returns a chat.CodeInvalid
// error naming platform, token or subscription for what is not valid.
func (s *Service) Register(ctx context.Context, userID int64, r Registration) (Device, bool, error) {
	d := Device{UserID: userID, Platform: r.Platform, UpdatedAt: s.opt.Now()}
	switch r.Platform {
	case PlatformFCM, PlatformAPNs:
		if err := checkToken(r.Token); err != nil {
			return Device{}, false, err
		}
		d.Token = r.Token
	case PlatformWebPush:
		sub, err := s.checkSubscription(r.Subscription)
		if err != nil {
			return Device{}, false, err
		}
		d.Token, d.P256dh, d.Auth = sub.Endpoint, sub.Keys.P256dh, sub.Keys.Auth
	case "":
		return Device{}, false, chat.InvalidField("platform", "This field is required.")
	default:
		return Device{}, false, chat.InvalidField("platform", `Must be "fcm", "apns" or "webpush".`)
	}
	return s.store.RegisterDevice(ctx, d, s.opt.MaxDevices)
}

func checkToken(t string) error {
	switch {
	case t == "":
		return chat.InvalidField("token", "This field is required.")
	case len(t) > maxToken:
		return chat.InvalidField("token", "Ensure this field has no more than 4096 characters.")
	}
	for i := 0; i < len(t); i++ {
		// Printable ASCII; no spaces either: no provider's token has one,
		// and one would be a pasting mistake.
		if c := t[i]; c <= ' ' || c >= 0x7f {
			return chat.InvalidField("token", "Only printable ASCII characters, without spaces.")
		}
	}
	return nil
}

// checkSubscription validates a Web Push subscription and returns it with
// its keys in canonical base64url (no padding), as the sender reads them.
func (s *Service) checkSubscription(sub *Subscription) (Subscription, error) {
	bad := func(msg string) (Subscription, error) {
		return Subscription{}, chat.InvalidField("subscription", msg)
	}
	if sub == nil {
		return bad("This field is required.")
	}
	if err := webpush.CheckEndpoint(sub.Endpoint, s.opt.Allowed); err != nil {
		return bad("The endpoint is not on a known push service.")
	}
	p, err := decodeKey(sub.Keys.P256dh)
	if err != nil || len(p) != 65 {
		return bad("keys.p256dh must be an uncompressed P-256 public key (65 bytes), base64url.")
	}
	if _, err := ecdh.P256().NewPublicKey(p); err != nil {
		return bad("keys.p256dh is not a point on the P-256 curve.")
	}
	a, err := decodeKey(sub.Keys.Auth)
	if err != nil || len(a) != 16 {
		return bad("keys.auth must be 16 bytes, base64url.")
	}
	out := *sub
	out.Keys.P256dh = base64.RawURLEncoding.EncodeToString(p)
	out.Keys.Auth = base64.RawURLEncoding.EncodeToString(a)
	return out, nil
}

// decodeKey reads base64url as browsers write it (unpadded), and the
// padded form some libraries write.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Devices returns the user's devices, oldest first.
func (s *Service) Devices(ctx context.Context, userID int64) ([]Device, error) {
	return s.store.Devices(ctx, userID)
}

// DeleteDevice deletes one of the user's devices. Returns chat.ErrNotFound
// for an id that is not one of theirs.
func (s *Service) DeleteDevice(ctx context.Context, userID, id int64) error {
	return s.store.DeleteDevice(ctx, userID, id)
}

// Mute is how long a participant muted a conversation: the zero Mute is
// not muted. It encodes as null, "forever" or a timestamp.
type Mute struct {
	Until   time.Time
	Forever bool
}

// MarshalJSON implements json.Marshaler.
func (m Mute) MarshalJSON() ([]byte, error) {
	switch {
	case m.Forever:
		return []byte(`"forever"`), nil
	case m.Until.IsZero():
		return []byte("null"), nil
	}
	return chat.Time{Time: m.Until}.MarshalJSON()
}

// ParseMute reads muted_until as a client sends it: null, "forever", or
// an RFC 3339 timestamp. Returns a chat.CodeInvalid error naming
// muted_until otherwise.
func ParseMute(raw json.RawMessage) (Mute, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Mute{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return Mute{}, chat.InvalidField("muted_until", `Expected an RFC 3339 timestamp, "forever" or null.`)
	}
	if s == "forever" {
		return Mute{Forever: true}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Mute{}, chat.InvalidField("muted_until", `Expected an RFC 3339 timestamp, "forever" or null.`)
	}
	return Mute{Until: t.UTC().Truncate(time.Millisecond)}, nil
}

// SetMuted mutes a conversation for a participant until m (the zero Mute
// unmutes) and returns the mute as kept: a time already past is not
// muted. Returns chat.ErrNotFound when userID is not a participant.
func (s *Service) SetMuted(ctx context.Context, userID, conversationID int64, m Mute) (Mute, error) {
	var until int64
	switch {
	case m.Forever:
		until = MutedForever
	case !m.Until.After(s.opt.Now()):
		m = Mute{}
	default:
		until = m.Until.UnixMilli()
	}
	if err := s.store.SetMuted(ctx, userID, conversationID, until); err != nil {
		return Mute{}, err
	}
	return m, nil
}

// MuteOf turns a stored muted_until (0 for NULL) into a Mute as of now: a
// mute that has ended is no mute.
func MuteOf(until int64, now time.Time) Mute {
	switch {
	case until == MutedForever:
		return Mute{Forever: true}
	case until <= now.UnixMilli():
		return Mute{}
	}
	return Mute{Until: time.UnixMilli(until).UTC()}
}

// Muted returns how long userID muted a conversation, as of now: the
// zero Mute when not muted or when the mute has ended. Returns
// chat.ErrNotFound when userID is not a participant.
func (s *Service) Muted(ctx context.Context, userID, conversationID int64) (Mute, error) {
	until, err := s.store.MutedUntil(ctx, userID, conversationID)
	if err != nil {
		return Mute{}, err
	}
	return MuteOf(until, s.opt.Now()), nil
}

// Deliveries limits: how many of their latest deliveries a user sees
// when they do not say, and at most.
const (
	DefaultDeliveries = 20
	MaxDeliveries     = 100
)

// Deliveries returns userID's outbox: their deliveries' count by state
// and the latest limit of them (0: DefaultDeliveries), newest first.
// Returns a chat.CodeInvalid error naming limit when it is not between 1
// and MaxDeliveries.
func (s *Service) Deliveries(ctx context.Context, userID int64, limit int) (UserOutbox, error) {
	switch {
	case limit == 0:
		limit = DefaultDeliveries
	case limit < 1 || limit > MaxDeliveries:
		return UserOutbox{}, chat.InvalidField("limit", "Must be between 1 and 100.")
	}
	return s.store.UserDeliveries(ctx, userID, limit)
}
