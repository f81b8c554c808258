package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Deadlines of the client NewSender builds when given none. A receiver that
// is slow to answer holds a dispatcher's worker, so each stage is bounded
// and the whole attempt is bounded again.
const (
	dialTimeout           = 5 * time.Second
	tlsHandshakeTimeout   = 5 * time.Second
	responseHeaderTimeout = 10 * time.Second
	attemptTimeout        = 15 * time.Second
)

const (
	userAgent = "Confab-Webhooks"
	// bodySnippetLen is how much of a refusing receiver's answer goes into
	// the error: enough to read its reason, too little to flood a log.
	bodySnippetLen = 200
	// drainLimit bounds how much of an answer is read so the connection can
	// be reused; past it the connection is dropped instead.
	drainLimit = 64 << 10
)

// ErrGone means the receiver answered 410 Gone: it asks Confab to stop
// sending. Callers log it and stop delivering to this endpoint.
var ErrGone = errors.New("webhook receiver answered 410 Gone: it asks for no more deliveries")

// RetryError means the attempt may succeed later: the receiver answered 429
// or 5xx, or it could not be reached or did not answer in time.
type RetryError struct {
	// After is how long the receiver asked to wait (its Retry-After header);
	// zero when it did not say, which leaves the wait to the dispatcher.
	After time.Duration
	// Err says what went wrong: a *StatusError for an answer, otherwise the
	// network or context error.
	Err error
}

// Error describes the failure and, when the receiver gave one, the wait.
func (e *RetryError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
	}
	return e.Err.Error()
}

// Unwrap returns Err, so errors.Is(err, context.DeadlineExceeded) and
// errors.As(err, &statusErr) see through a RetryError.
func (e *RetryError) Unwrap() error { return e.Err }

// StatusError is a receiver's answer that is not a success. Returned alone
// (not inside a RetryError) it is permanent: sending the same request again
// will not change the answer, so callers record it and give up.
type StatusError struct {
	// StatusCode is the HTTP status the receiver answered.
	StatusCode int
	// Body is the start of the receiver's answer, at most 200 bytes.
	Body string
}

// Error names the status and the start of the answer.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook receiver answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		msg += " (redirects are not followed; set WEBHOOK_URL to the final address)"
	}
	if e.Body != "" {
		// %q keeps a receiver's control characters and newlines out of logs.
		msg += fmt.Sprintf(": %q", e.Body)
	}
	return msg
}

// Sender makes single delivery attempts to one endpoint. It is safe for
// concurrent use; it does not retry.
type Sender struct {
	url    *url.URL
	urlErr error
	secret Secret
	client *http.Client

	// Now gives the time of an attempt, sent as webhook-timestamp; nil
	// means time.Now.
	Now func() time.Time
}

// NewSender returns a Sender that posts to rawURL, signing with secret.
// A nil client gets one with deadlines (dial 5s, TLS handshake 5s, response
// headers 10s, whole attempt 15s) that follows no redirects; a given client
// is used as it is. An invalid rawURL is reported by every Send.
func NewSender(rawURL string, secret Secret, client *http.Client) *Sender {
	if client == nil {
		client = newClient()
	}
	u, err := parseURL(rawURL)
	return &Sender{url: u, urlErr: err, secret: secret, client: client}
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL, which may carry a token.
		return nil, errors.New("WEBHOOK_URL is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("WEBHOOK_URL must start with https:// or http://")
	}
	if u.Host == "" {
		return nil, errors.New("WEBHOOK_URL has no host")
	}
	return u, nil
}

func newClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = tlsHandshakeTimeout
	transport.ResponseHeaderTimeout = responseHeaderTimeout
	return &http.Client{
		Transport: transport,
		Timeout:   attemptTimeout,
		// A redirect would resend a signed event to an address nobody
		// configured; the 3xx comes back as a permanent error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Send makes one delivery attempt of e. It returns nil when the receiver
// answered 2xx; ErrGone for 410; a *RetryError for 429, 408, 5xx, a network
// failure or a timeout (including ctx's deadline, which the RetryError
// wraps); and a *StatusError for any other answer, which is permanent. An
// event that cannot be encoded, an invalid URL or a zero Secret is a plain,
// permanent error.
// Each attempt carries e.ID as webhook-id and its own time as
// webhook-timestamp, so a retry is recognisable yet freshly signed.
func (s *Sender) Send(ctx context.Context, e Event) error {
	if s.urlErr != nil {
		return s.urlErr
	}
	if len(s.secret.key) == 0 {
		// An empty HMAC key signs anything anyone could forge.
		return errors.New("webhook sender has no secret: set WEBHOOK_SECRET")
	}
	if e.ID == "" {
		return fmt.Errorf("webhook event %s: no ID", e.Type)
	}
	body, err := e.Body()
	if err != nil {
		return err
	}
	at := time.Now()
	if s.Now != nil {
		at = s.Now()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook event %s: build request: %w", e.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", e.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", Sign(s.secret, e.ID, at, body))

	resp, err := s.client.Do(req)
	if err != nil {
		return &RetryError{Err: fmt.Errorf("webhook event %s: post: %w", e.ID, withoutURL(err))}
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		resp.Body.Close()
	}()

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusGone:
		return ErrGone
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		// 408 is the receiver's own timeout, as retryable as ours.
		return &RetryError{After: retryAfter(resp.Header.Get("Retry-After"), at), Err: statusError(resp)}
	default:
		return statusError(resp)
	}
}

func statusError(resp *http.Response) *StatusError {
	// A receiver that stalls mid-body is cut off by the request's deadline;
	// what was read by then is kept.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, bodySnippetLen))
	return &StatusError{StatusCode: resp.StatusCode, Body: string(snippet)}
}

// maxRetryAfter caps a receiver's Retry-After: a longer wait is more likely
// a mistake than a plan, and the dispatcher can still choose to give up.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a Retry-After header, in seconds or as an HTTP date
// (measured from now). It returns zero when the header is absent, malformed
// or in the past, and at most maxRetryAfter.
func retryAfter(h string, now time.Time) time.Duration {
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		// Capping the seconds before multiplying keeps the product in range.
		return time.Duration(min(max(secs, 0), int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// withoutURL drops the *url.Error layer, whose message repeats the URL: a
// receiver's URL may carry a token in its path or query.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
