// Package webpush delivers push.Notifications to browsers through the
// Web Push protocol: the payload is encrypted for the browser alone (RFC
// 8291, aes128gcm) and the request is signed with the server's VAPID key
// (RFC 8292), so the push service can neither read a message nor accept
// one from anyone else.
//
// It owns the VAPID keys, the check that an endpoint belongs to a known
// push service, and one HTTP request per notification. It knows no SQL and
// keeps no subscriptions: the caller stores them and removes one when Send
// returns push.ErrGone. It must never send to an endpoint outside the
// allowed list, nor follow a redirect away from it.
package webpush
