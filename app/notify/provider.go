package notify

import (
	"context"

	"github.com/confab/confab/app/push"
	"github.com/confab/confab/app/push/apns"
	"github.com/confab/confab/app/push/fcm"
	"github.com/confab/confab/app/push/webpush"
)

// ProviderFunc is a Provider made of a function.
type ProviderFunc func(ctx context.Context, d Device, n push.Notification) error

// Send implements Provider.
func (f ProviderFunc) Send(ctx context.Context, d Device, n push.Notification) error {
	return f(ctx, d, n)
}

// WebPush is the Provider of Web Push devices: s sends to the device's
// subscription (its endpoint is the token).
func WebPush(s *webpush.Sender) Provider {
	return ProviderFunc(func(ctx context.Context, d Device, n push.Notification) error {
		return s.Send(ctx, webpush.Subscription{Endpoint: d.Token, P256dh: d.P256dh, Auth: d.Auth}, n)
	})
}

// FCM is the Provider of FCM devices.
func FCM(s *fcm.Sender) Provider {
	return ProviderFunc(func(ctx context.Context, d Device, n push.Notification) error {
		return s.Send(ctx, d.Token, n)
	})
}

// APNs is the Provider of APNs devices.
func APNs(s *apns.Sender) Provider {
	return ProviderFunc(func(ctx context.Context, d Device, n push.Notification) error {
		return s.Send(ctx, d.Token, n)
	})
}
