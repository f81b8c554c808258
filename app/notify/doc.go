// Package notify owns what a user asks of push notifications: the
// devices they are notified on (an FCM or APNs token, a Web Push
// subscription) and the conversations they muted. It validates what
// clients register and keeps it through a small Store; it sends nothing
// (the dispatcher does) and knows no SQL and no HTTP.
package notify
