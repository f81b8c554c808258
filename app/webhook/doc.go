// Package webhook delivers Confab's events to a team's own HTTP endpoint,
// signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com) so that a receiver can verify each
// request with any of the published libraries.
//
// It owns the wire format: the secret (whsec_…), the event names, the JSON
// body, the signature and the headers of one delivery attempt, and what a
// receiver's answer means (done, gone, retry later, give up). It does not
// queue, schedule or retry deliveries; that is the dispatcher's job, and a
// retry must reuse the event's ID so receivers can deduplicate. It knows no
// SQL, and it never logs or puts a secret in an error.
package webhook
