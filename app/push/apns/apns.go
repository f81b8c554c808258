// Package apns sends notifications to iOS devices through Apple's Push
// Notification service over HTTP/2, authenticating with a token-based
// (.p8) provider key.
//
// It owns the provider JWT and the mapping of APNs' answers onto
// push.ErrGone and *push.RetryError; it keeps no devices and never retries
// on its own beyond one provider-token renewal.
package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
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

	"github.com/golang-jwt/jwt/v5"

	"github.com/confab/confab/app/push"
)

const (
	// ProductionURL is APNs' production endpoint, the default.
	ProductionURL = "https://api.push.apple.com"
	// SandboxURL is APNs' development endpoint, for builds signed with a
	// development profile.
	SandboxURL = "https://api.sandbox.push.apple.com"

	// tokenReuse is how long one provider JWT is used: Apple refuses
	// renewals more often than every 20 minutes and tokens older than 60.
	tokenReuse = 40 * time.Minute
	// maxCollapseID is Apple's limit on apns-collapse-id.
	maxCollapseID = 64
	// maxBody caps what is read of an answer; APNs' are under 100 bytes.
	maxBody = 16 << 10
)

// ParseKey reads an APNs auth key (.p8): a PKCS#8 PEM P-256 private key.
func ParseKey(p8 []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(p8)
	if block == nil {
		return nil, errors.New("apns: auth key: no PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("apns: auth key: PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apns: auth key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("apns: auth key is %T, want ECDSA P-256", k)
	}
	if ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("apns: auth key is on %s, want P-256", ek.Curve.Params().Name)
	}
	return ek, nil
}

// Sender sends notifications through APNs. It is safe for concurrent use;
// all its sends share one provider token.
type Sender struct {
	key           *ecdsa.PrivateKey
	keyID, teamID string
	topic         string
	base          string
	client        *http.Client

	// Now is the clock for provider tokens and expirations; time.Now when
	// nil. Set it before the first Send.
	Now func() time.Time

	mu     sync.Mutex
	jwt    string
	issued time.Time
}

// NewSender returns a Sender for the app whose bundle ID is topic, signing
// with the auth key key (key ID keyID, of team teamID). baseURL is
// ProductionURL when empty. A nil client speaks HTTP/2 only, with dial and
// TLS timeouts of 5s, a response header timeout of 10s, an overall timeout
// of 30s, pings on idle connections and no redirects.
func NewSender(key *ecdsa.PrivateKey, keyID, teamID, topic, baseURL string, client *http.Client) *Sender {
	if baseURL == "" {
		baseURL = ProductionURL
	}
	if client == nil {
		client = defaultClient()
	}
	return &Sender{
		key: key, keyID: keyID, teamID: teamID, topic: topic,
		base:   strings.TrimRight(baseURL, "/"),
		client: client,
	}
}

func defaultClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true) // APNs speaks nothing else
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       5 * time.Minute,
			Protocols:             protocols,
			// Apple keeps connections open for hours; a ping finds one that
			// died silently before a send waits on it.
			HTTP2: &http.HTTP2Config{SendPingTimeout: time.Minute, PingTimeout: 10 * time.Second},
		},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Send delivers n to the device with the APNs device token as an alert.
// A zero n.TTL means deliver now or never (apns-expiration 0); a Collapse
// longer than Apple's 64 bytes is replaced by its SHA-256 in hex. Data keys
// go at the top level of the payload beside "aps", which they may not use.
//
// Returns push.ErrGone on 410, or 400 with BadDeviceToken, Unregistered or
// DeviceTokenNotForTopic; *push.RetryError on 429, 500, 502, 503, 504
// and transport failures (including ctx's deadline); any other error means
// the request itself is wrong and will not succeed when repeated.
func (s *Sender) Send(ctx context.Context, deviceToken string, n push.Notification) error {
	if deviceToken == "" {
		return errors.New("apns: send: empty device token")
	}
	body, err := payload(n)
	if err != nil {
		return fmt.Errorf("apns: send: %w", err)
	}
	endpoint := s.base + "/3/device/" + url.PathEscape(deviceToken)
	expiration := "0"
	if n.TTL > 0 {
		expiration = strconv.FormatInt(s.now().Add(n.TTL).Unix(), 10)
	}
	for attempt := 0; ; attempt++ {
		token, err := s.providerToken()
		if err != nil {
			return fmt.Errorf("apns: send: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("apns: send: %w", err)
		}
		req.Header.Set("authorization", "bearer "+token)
		req.Header.Set("apns-topic", s.topic)
		req.Header.Set("apns-push-type", "alert")
		req.Header.Set("apns-priority", "10")
		req.Header.Set("apns-expiration", expiration)
		if n.Collapse != "" {
			req.Header.Set("apns-collapse-id", collapseID(n.Collapse))
		}
		req.Header.Set("content-type", "application/json")
		resp, err := s.client.Do(req)
		if err != nil {
			return &push.RetryError{Err: fmt.Errorf("apns: send: %w", err)}
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return &push.RetryError{Err: fmt.Errorf("apns: send: read answer: %w", err)}
		}
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		reason := parseReason(raw)
		if resp.StatusCode == http.StatusForbidden && reason == "ExpiredProviderToken" && attempt == 0 {
			s.dropToken(token)
			continue
		}
		return classify(resp.StatusCode, reason, resp.Header.Get("Retry-After"), s.now())
	}
}

// aps is Apple's dictionary; badge and sound are always sent so a zero
// count clears the badge.
type aps struct {
	Alert struct {
		Title string `json:"title,omitempty"`
		Body  string `json:"body,omitempty"`
	} `json:"alert"`
	Badge    int    `json:"badge"`
	Sound    string `json:"sound"`
	ThreadID string `json:"thread-id,omitempty"`
}

func payload(n push.Notification) ([]byte, error) {
	var a aps
	a.Alert.Title, a.Alert.Body = n.Title, n.Body
	a.Badge = n.Badge
	a.Sound = "default"
	a.ThreadID = n.Collapse
	m := make(map[string]any, len(n.Data)+1)
	for k, v := range n.Data {
		m[k] = v
	}
	if _, ok := m["aps"]; ok {
		return nil, errors.New(`data key "aps" is Apple's`)
	}
	m["aps"] = a
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return b, nil
}

// collapseID fits a collapse key into Apple's 64 bytes: a longer key
// becomes its SHA-256 in hex, so the same key still always yields the same id.
func collapseID(key string) string {
	if len(key) <= maxCollapseID {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func parseReason(raw []byte) string {
	var body struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return ""
	}
	return body.Reason
}

// classify maps a non-200 answer onto what the caller should do.
func classify(status int, reason, retryAfter string, now time.Time) error {
	err := fmt.Errorf("apns: send: %d %s", status, reason)
	switch {
	case status == http.StatusGone:
		return fmt.Errorf("%w: %w", push.ErrGone, err)
	case status == http.StatusBadRequest && (reason == "BadDeviceToken" || reason == "Unregistered" || reason == "DeviceTokenNotForTopic"):
		return fmt.Errorf("%w: %w", push.ErrGone, err)
	case push.Retryable(status):
		return &push.RetryError{After: push.RetryAfter(retryAfter, now), Err: err}
	default:
		return err
	}
}

// providerToken returns the current JWT, signing a new one when it is 40
// minutes old. Signing is local and quick, so a mutex is enough.
func (s *Sender) providerToken() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.jwt != "" && now.Sub(s.issued) < tokenReuse {
		return s.jwt, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": s.teamID, "iat": now.Unix()})
	t.Header["kid"] = s.keyID
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign provider token: %w", err)
	}
	s.jwt, s.issued = signed, now
	return signed, nil
}

// dropToken forgets tok unless another send has already replaced it.
func (s *Sender) dropToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jwt == tok {
		s.jwt = ""
	}
}
