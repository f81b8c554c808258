package webpush

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/confab/confab/app/push"
)

const (
	dialTimeout           = 5 * time.Second
	tlsTimeout            = 5 * time.Second
	responseHeaderTimeout = 10 * time.Second
	// sendTimeout bounds one Send even when the caller's context has no
	// deadline and the caller's client has no timeout.
	sendTimeout = 30 * time.Second
	// maxTTL is the longest a push service is asked to hold a message:
	// FCM's limit, four weeks; the others keep less and cap it themselves.
	maxTTL = 28 * 24 * time.Hour
	// maxErrorBody is how much of a refusal's body goes into the error.
	maxErrorBody = 256
	// maxDrain is how much of a reply is read so its connection can be
	// reused; a push service's replies are far smaller.
	maxDrain = 64 << 10
	// topicLen is RFC 8030 §5.4's limit on the Topic header.
	topicLen = 32
)

// errRedirect is what the client's CheckRedirect returns: a push service
// never redirects, and following one could send the request anywhere.
var errRedirect = errors.New("push service answered with a redirect, which is never followed")

// Subscription is one browser's push subscription, as
// PushSubscription.toJSON() gives it: the push service URL to post to,
// and the browser's P-256 public key and 16-byte auth secret, base64url.
type Subscription struct {
	Endpoint, P256dh, Auth string
}

// Sender sends notifications to browsers through their push services.
// It is safe for concurrent use.
type Sender struct {
	keys    Keys
	public  string
	subject string
	allowed []string
	client  *http.Client
	now     func() time.Time
	// configErr is why NewSender's arguments cannot work; every Send
	// returns it, so a bad setting shows on the first notification.
	configErr error

	mu     sync.Mutex
	tokens map[string]token // VAPID tokens by audience
}

// NewSender makes a Sender that signs with keys and names subject, a
// "mailto:" or "https:" URL where the push service can reach whoever runs
// this server (RFC 8292 §2.1). It sends only to endpoints allowed by
// CheckEndpoint(endpoint, allowed); an empty allowed means DefaultAllowed.
//
// A nil client means one with a 5s dial, 5s TLS handshake, 10s wait for
// the response header and 30s overall. Whatever client is given, the
// Sender uses a copy of it that refuses every redirect.
func NewSender(keys Keys, subject string, allowed []string, client *http.Client) *Sender {
	s := &Sender{
		keys:    keys,
		public:  keys.Public(),
		subject: subject,
		allowed: append([]string(nil), allowed...),
		now:     time.Now,
		tokens:  make(map[string]token),
	}
	if len(s.allowed) == 0 {
		s.allowed = DefaultAllowed()
	}
	switch {
	case keys.priv == nil:
		s.configErr = errors.New("webpush: no VAPID keys: use GenerateKeys or ParseKeys")
	case !strings.HasPrefix(subject, "mailto:") && !strings.HasPrefix(subject, "https://"):
		s.configErr = fmt.Errorf("webpush: VAPID subject %q must be a mailto: or https:// URL", subject)
	}
	var c http.Client
	if client != nil {
		c = *client
	} else {
		c = http.Client{
			Timeout: sendTimeout,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   tlsTimeout,
				ResponseHeaderTimeout: responseHeaderTimeout,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          100,
				// A fan-out sends many notifications to the same few push
				// services at once; keep more than the default two
				// connections to each.
				MaxIdleConnsPerHost: 32,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
	s.client = &c
	return s
}

// Send delivers n to the browser behind sub. It returns nil once the
// push service has accepted the message (it may still be delivered
// later, within n.TTL);
// an error wrapping ErrNotAllowed, without sending anything, when the
// endpoint is not on an allowed push service;
// an error wrapping push.ErrGone when the subscription has expired or
// been removed (404, 410) or its keys are malformed: delete it;
// a *push.RetryError when the push service is overloaded or down (429,
// 5xx) or could not be reached, with After set from Retry-After;
// and a plain error for anything else, such as a refused VAPID token.
func (s *Sender) Send(ctx context.Context, sub Subscription, n push.Notification) error {
	if s.configErr != nil {
		return s.configErr
	}
	u, err := checkEndpoint(sub.Endpoint, s.allowed)
	if err != nil {
		return err
	}
	aud := origin(u)
	enc, err := newEncrypter(sub.P256dh, sub.Auth)
	if err != nil {
		// Keys a browser never made cannot start working later.
		return fmt.Errorf("webpush: subscription at %s: %v: %w", aud, err, push.ErrGone)
	}
	plaintext, err := encodePayload(n)
	if err != nil {
		return err
	}
	body, err := enc.seal(plaintext)
	if err != nil {
		return fmt.Errorf("webpush: encrypt: %w", err)
	}
	authz, err := s.authorization(aud)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webpush: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("TTL", strconv.FormatInt(ttlSeconds(n.TTL), 10))
	req.Header.Set("Urgency", "normal")
	req.Header.Set("Authorization", authz)
	if n.Collapse != "" {
		req.Header.Set("Topic", topic(n.Collapse))
	}

	resp, err := s.client.Do(req)
	if err != nil {
		// The url.Error would repeat the endpoint, whose path is the
		// subscription's secret; name only the push service.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, errRedirect) {
			return fmt.Errorf("webpush: %s: %w", aud, err)
		}
		return &push.RetryError{Err: fmt.Errorf("webpush: post to %s: %w", aud, err)}
	}
	defer resp.Body.Close()
	return s.result(aud, resp)
}

// result maps the push service's answer (RFC 8030 §5, §8) to what the
// caller should do with the subscription.
func (s *Sender) result(aud string, resp *http.Response) error {
	switch code := resp.StatusCode; {
	case code == http.StatusCreated || code == http.StatusOK || code == http.StatusAccepted:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return nil
	case code == http.StatusNotFound || code == http.StatusGone:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return fmt.Errorf("webpush: %s answered %s: %w", aud, resp.Status, push.ErrGone)
	case code == http.StatusTooManyRequests || code >= 500:
		return &push.RetryError{
			After: retryAfter(resp.Header.Get("Retry-After"), s.now()),
			Err:   fmt.Errorf("webpush: %s answered %s%s", aud, resp.Status, errorBody(resp.Body)),
		}
	default:
		return fmt.Errorf("webpush: %s answered %s%s", aud, resp.Status, errorBody(resp.Body))
	}
}

// errorBody is the start of a refusal's body, quoted, for the error
// message: push services say there why they refused.
func errorBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxDrain))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	more := ""
	if len(b) > maxErrorBody {
		b, more = b[:maxErrorBody], "…"
	}
	return ": " + strconv.Quote(strings.ToValidUTF8(string(b), "")) + more
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date;
// zero when absent or unreadable. It is capped at maxTTL: no message is
// kept longer, and a huge number of seconds would overflow a Duration.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxTTL/time.Second) {
			secs = int64(maxTTL / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxTTL)
	}
	return 0
}

// origin is the audience of a VAPID token for u: scheme://host, with
// the port only when it is not the scheme's default.
func origin(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80") {
		host += ":" + p
	}
	return u.Scheme + "://" + host
}

// ttlSeconds is the TTL header: whole seconds, from 0 (deliver only to a
// browser online now) to maxTTL.
func ttlSeconds(d time.Duration) int64 {
	d = min(max(d, 0), maxTTL)
	return int64(d / time.Second)
}

// topic turns a collapse key into a valid Topic header (RFC 8030 §5.4:
// at most 32 characters of the URL-safe base64 alphabet). Hashing keeps
// any key, however long or whatever its characters, distinct and valid.
func topic(collapse string) string {
	h := sha256.Sum256([]byte(collapse))
	return base64.RawURLEncoding.EncodeToString(h[:])[:topicLen]
}

// payload is what the service worker's push event gets as JSON.
type payload struct {
	Title string            `json:"title"`
	Body  string            `json:"body"`
	Badge int               `json:"badge"`
	Data  map[string]string `json:"data"`
}

// encodePayload is n as JSON, its body shortened (with "…") when the
// whole would not fit in one push message, so a long message still
// notifies. It fails only when the title and data alone do not fit.
func encodePayload(n push.Notification) ([]byte, error) {
	p := payload{Title: n.Title, Body: n.Body, Badge: n.Badge, Data: n.Data}
	if p.Data == nil {
		// The service worker can read data.conversation_id without a
		// check for a missing object.
		p.Data = map[string]string{}
	}
	b, err := marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webpush: encode notification: %w", err)
	}
	if len(b) <= maxPlaintext {
		return b, nil
	}
	p.Body = ""
	if b, err = marshal(p); err != nil || len(b) > maxPlaintext {
		return nil, fmt.Errorf("webpush: notification is %d bytes without its body, at most %d fit: shorten the title or data", len(b), maxPlaintext)
	}
	// Keep the longest start of the body that fits. JSON escaping makes
	// a byte of body cost one to six bytes of payload, so search for it.
	fit := b
	lo, hi := 0, len(n.Body) // n.Body[:lo]+"…" fits; n.Body[:hi] does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		p.Body = n.Body[:mid] + "…"
		if c, _ := marshal(p); len(c) <= maxPlaintext {
			lo, fit = mid, c
		} else {
			hi = mid
		}
	}
	// Back off to a rune boundary, so no character is cut in half.
	keep := lo
	for keep > 0 && !utf8.RuneStart(n.Body[keep]) {
		keep--
	}
	if keep != lo || lo == 0 {
		p.Body = n.Body[:keep] + "…"
		if c, _ := marshal(p); len(c) <= maxPlaintext {
			fit = c
		}
	}
	return fit, nil
}

// marshal is json.Marshal without HTML escaping, which would spend
// payload bytes on "<" in a message for nothing.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
