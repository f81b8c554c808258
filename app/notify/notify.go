package notify

import (
	"context"
	"math"
	"time"
)

// Platforms a device may be registered on.
const (
	PlatformFCM     = "fcm"
	PlatformAPNs    = "apns"
	PlatformWebPush = "webpush"
)

// MaxDevices is how many devices one user may have: registering one more
// drops the one registered least recently (first registered, or
// registered again, longest ago), so a user who reinstalls an app many
// times never piles up dead tokens.
const MaxDevices = 20

// MutedForever is the muted_until a store keeps for a conversation muted
// with no end: the largest int64 (Unix milliseconds), which no real
// instant reaches.
const MutedForever int64 = math.MaxInt64

// Subscription is a Web Push subscription as the browser's
// PushSubscription.toJSON() gives it.
type Subscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// Device is one device a user is notified on.
type Device struct {
	ID       int64
	UserID   int64
	Platform string
	// Token is the FCM or APNs token; for Web Push, the endpoint.
	Token string
	// P256dh and Auth are the Web Push subscription's keys, base64url;
	// empty for the other platforms.
	P256dh, Auth string
	CreatedAt    time.Time
	// UpdatedAt is when the device was last registered.
	UpdatedAt time.Time
}

// Store keeps devices and mutes. db.Store and postgres.Store implement
// it; the behaviour both must have is in notify/storetest.
type Store interface {
	// RegisterDevice stores d for d.UserID as registered at d.UpdatedAt
	// and returns it with its ID and CreatedAt. A device with the same
	// platform and token is the same device: the user's own is updated
	// (its keys and UpdatedAt; created false), another user's moves to
	// this one (created true, CreatedAt now) without the deliveries made
	// for its previous owner. Past max devices the user's
	// least recently registered are deleted.
	RegisterDevice(ctx context.Context, d Device, max int) (dev Device, created bool, err error)
	// Devices returns the user's devices, oldest first.
	Devices(ctx context.Context, userID int64) ([]Device, error)
	// DeleteDevice deletes one of the user's devices. Returns
	// chat.ErrNotFound when the user has no device with that id.
	DeleteDevice(ctx context.Context, userID, id int64) error
	// SetMuted sets the user's muted_until in a conversation (Unix ms,
	// MutedForever, or 0 for not muted). Returns chat.ErrNotFound when
	// the user is not a participant.
	SetMuted(ctx context.Context, userID, conversationID, until int64) error
	// MutedUntil returns the user's muted_until in a conversation as
	// SetMuted keeps it (0 for not muted), whether or not it has passed.
	// Returns chat.ErrNotFound when the user is not a participant.
	MutedUntil(ctx context.Context, userID, conversationID int64) (int64, error)
	// UserDeliveries returns the deliveries made for the user (on
	// whichever device): their count by state, and the newest limit of
	// them, newest first.
	UserDeliveries(ctx context.Context, userID int64, limit int) (UserOutbox, error)
}
