// Package fcm sends notifications to Android (and FCM-registered iOS)
// devices through Firebase Cloud Messaging's HTTP v1 API, signing in as a
// Google service account with the OAuth2 JWT bearer grant (RFC 7523).
//
// It owns the access token and the mapping of FCM's answers onto
// push.ErrGone and *push.RetryError; it keeps no devices and never retries
// on its own beyond one token refresh.
package fcm

import (
	"bytes"
	"context"
	"crypto/rsa"
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
	// DefaultBaseURL is FCM's production endpoint.
	DefaultBaseURL = "https://fcm.googleapis.com"
	// Scope is the OAuth2 scope that lets a service account send messages.
	Scope = "https://www.googleapis.com/auth/firebase.messaging"
	// GrantType is the RFC 7523 JWT bearer grant.
	GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

	// assertionLifetime is the longest Google accepts.
	assertionLifetime = time.Hour
	// tokenEarly renews an access token this long before it expires so a
	// request never leaves with a token that dies in flight.
	tokenEarly = time.Minute
	// maxTTL is FCM's documented ceiling for android.ttl (4 weeks).
	maxTTL = 28 * 24 * time.Hour
	// maxBody caps what is read of any answer; FCM's are a few hundred bytes.
	maxBody = 64 << 10
	// maxCollapseID is APNs' limit on apns-collapse-id, which FCM passes on.
	maxCollapseID = 64
)

// Credentials is what a Google service-account JSON file says about the
// account that signs in to FCM.
type Credentials struct {
	ProjectID   string
	ClientEmail string
	// TokenURI is where assertions are exchanged for access tokens.
	TokenURI string
	// KeyID is private_key_id; when set it is the assertion's kid so
	// Google can pick the key without trying each. May be empty.
	KeyID string
	Key   *rsa.PrivateKey
}

// ParseCredentials reads a service-account JSON file. The private key may
// be PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM.
func ParseCredentials(data []byte) (Credentials, error) {
	var f struct {
		Type         string `json:"type"`
		ProjectID    string `json:"project_id"`
		PrivateKeyID string `json:"private_key_id"`
		PrivateKey   string `json:"private_key"`
		ClientEmail  string `json:"client_email"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return Credentials{}, fmt.Errorf("fcm: service account JSON: %w", err)
	}
	for _, field := range []struct{ name, value string }{
		{"type", f.Type},
		{"project_id", f.ProjectID},
		{"private_key", f.PrivateKey},
		{"client_email", f.ClientEmail},
		{"token_uri", f.TokenURI},
	} {
		if field.value == "" {
			return Credentials{}, fmt.Errorf("fcm: service account JSON: %s is missing", field.name)
		}
	}
	if f.Type != "service_account" {
		return Credentials{}, fmt.Errorf("fcm: service account JSON: type is %q, want \"service_account\"", f.Type)
	}
	if u, err := url.Parse(f.TokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Credentials{}, fmt.Errorf("fcm: service account JSON: token_uri %q is not an http(s) URL", f.TokenURI)
	}
	key, err := parseRSAKey([]byte(f.PrivateKey))
	if err != nil {
		return Credentials{}, fmt.Errorf("fcm: service account JSON: private_key: %w", err)
	}
	return Credentials{
		ProjectID:   f.ProjectID,
		ClientEmail: f.ClientEmail,
		TokenURI:    f.TokenURI,
		KeyID:       f.PrivateKeyID,
		Key:         key,
	}, nil
}

func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key is %T, want RSA", k)
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		rk, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#1: %w", err)
		}
		return rk, nil
	default:
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"", block.Type)
	}
}

// Sender sends notifications through FCM. It is safe for concurrent use;
// all its sends share one access token.
type Sender struct {
	creds  Credentials
	base   string
	client *http.Client

	// Now is the clock for assertions and token expiry; time.Now when nil.
	// Set it before the first Send.
	Now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	// refresh admits one token request at a time; waiting for it honours
	// the caller's ctx, which a mutex would not.
	refresh chan struct{}
}

// NewSender returns a Sender for the credentials' project. baseURL is
// DefaultBaseURL when empty. A nil client gets one with dial and TLS
// timeouts of 5s, a response header timeout of 10s, an overall timeout of
// 30s and no redirects.
func NewSender(c Credentials, baseURL string, client *http.Client) *Sender {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if client == nil {
		client = defaultClient()
	}
	return &Sender{
		creds:   c,
		base:    strings.TrimRight(baseURL, "/"),
		client:  client,
		refresh: make(chan struct{}, 1),
	}
}

func defaultClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			// A custom DialContext turns HTTP/2 off unless asked for.
			ForceAttemptHTTP2: true,
		},
		Timeout: 30 * time.Second,
		// Neither endpoint redirects; following one would send the bearer
		// token or the assertion somewhere unplanned.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Send delivers n to the device with the FCM registration token. A zero
// n.TTL means deliver now or never (FCM's "0s"); TTLs are capped at FCM's
// four weeks.
//
// Returns push.ErrGone when FCM says the token is unregistered (404
// UNREGISTERED) or a 400 names message.token as the invalid field;
// *push.RetryError on 429, 500, 502, 503, 504 and transport failures
// (including ctx's deadline); any other error means the request itself is
// wrong and will not succeed when repeated.
func (s *Sender) Send(ctx context.Context, token string, n push.Notification) error {
	if token == "" {
		return errors.New("fcm: send: empty device token")
	}
	body, err := json.Marshal(s.message(token, n))
	if err != nil {
		return fmt.Errorf("fcm: send: encode message: %w", err)
	}
	endpoint := s.base + "/v1/projects/" + url.PathEscape(s.creds.ProjectID) + "/messages:send"
	for attempt := 0; ; attempt++ {
		access, err := s.accessToken(ctx)
		if err != nil {
			return fmt.Errorf("fcm: send: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("fcm: send: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+access)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err := s.client.Do(req)
		if err != nil {
			return &push.RetryError{Err: fmt.Errorf("fcm: send: %w", err)}
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return &push.RetryError{Err: fmt.Errorf("fcm: send: read answer: %w", err)}
		}
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		fe := parseError(raw)
		// A 401 is usually a token revoked or expired early; one fresh
		// token settles it. THIRD_PARTY_AUTH_ERROR is the APNs or web-push
		// credential in the Firebase project, which no token fixes.
		if resp.StatusCode == http.StatusUnauthorized && fe.code != "THIRD_PARTY_AUTH_ERROR" && attempt == 0 {
			s.dropToken(access)
			continue
		}
		return classify(resp.StatusCode, resp.Header.Get("Retry-After"), s.now(), fe)
	}
}

// message is the HTTP v1 request body.
type message struct {
	Message struct {
		Token        string            `json:"token"`
		Notification notification      `json:"notification"`
		Data         map[string]string `json:"data,omitempty"`
		Android      android           `json:"android"`
		APNS         apns              `json:"apns"`
	} `json:"message"`
}

type notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type android struct {
	CollapseKey  string              `json:"collapse_key,omitempty"`
	TTL          string              `json:"ttl"`
	Notification androidNotification `json:"notification"`
}

type androidNotification struct {
	Tag string `json:"tag,omitempty"`
	// No omitempty: a zero count clears the badge.
	NotificationCount int `json:"notification_count"`
}

type apns struct {
	Headers map[string]string `json:"headers"`
	Payload struct {
		APS struct {
			// No omitempty: a zero badge clears it.
			Badge int `json:"badge"`
		} `json:"aps"`
	} `json:"payload"`
}

func (s *Sender) message(token string, n push.Notification) message {
	ttl := min(max(n.TTL, 0), maxTTL)
	var m message
	m.Message.Token = token
	m.Message.Notification = notification{Title: n.Title, Body: n.Body}
	m.Message.Data = n.Data
	m.Message.Android = android{
		CollapseKey:  n.Collapse,
		TTL:          strconv.FormatInt(int64(ttl/time.Second), 10) + "s",
		Notification: androidNotification{Tag: n.Collapse, NotificationCount: n.Badge},
	}
	// FCM forwards these headers to APNs, which otherwise keeps an iOS
	// notification for its own default time whatever android.ttl says.
	exp := "0"
	if ttl > 0 {
		exp = strconv.FormatInt(s.now().Add(ttl).Unix(), 10)
	}
	m.Message.APNS.Headers = map[string]string{"apns-expiration": exp}
	if n.Collapse != "" {
		m.Message.APNS.Headers["apns-collapse-id"] = collapseID(n.Collapse)
	}
	m.Message.APNS.Payload.APS.Badge = n.Badge
	return m
}

// collapseID fits a collapse key into APNs' 64 bytes: a longer key becomes
// its SHA-256 in hex, so the same key still always yields the same id.
func collapseID(key string) string {
	if len(key) <= maxCollapseID {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// fcmError is the part of a google.rpc.Status answer that decides what to
// do with the device.
type fcmError struct {
	status, message, code string
	// tokenField says a BadRequest field violation names message.token.
	tokenField bool
}

func parseError(raw []byte) fcmError {
	var body struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Type            string `json:"@type"`
				ErrorCode       string `json:"errorCode"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) != nil {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fcmError{message: msg}
	}
	fe := fcmError{status: body.Error.Status, message: body.Error.Message}
	for _, d := range body.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			fe.code = d.ErrorCode
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				fe.tokenField = true
			}
		}
	}
	return fe
}

// classify maps a non-200 answer onto what the caller should do. It follows
// FCM's ErrorCode list: only UNREGISTERED says a token is gone; INVALID_ARGUMENT
// also covers payload mistakes, so it removes a device only when the answer
// names the token field, never on the wording of its message.
func classify(status int, retryAfter string, now time.Time, fe fcmError) error {
	err := fmt.Errorf("fcm: send: %d %s %s: %s", status, fe.status, fe.code, fe.message)
	switch {
	case fe.code == "UNREGISTERED" || status == http.StatusNotFound:
		return fmt.Errorf("%w: %w", push.ErrGone, err)
	case status == http.StatusBadRequest && fe.tokenField:
		return fmt.Errorf("%w: %w", push.ErrGone, err)
	case push.Retryable(status):
		return &push.RetryError{After: push.RetryAfter(retryAfter, now), Err: err}
	default:
		return err
	}
}

// accessToken returns the cached token or fetches one. Callers arriving
// during a fetch wait for it instead of fetching again.
func (s *Sender) accessToken(ctx context.Context) (string, error) {
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	select {
	case s.refresh <- struct{}{}:
	case <-ctx.Done():
		return "", &push.RetryError{Err: fmt.Errorf("wait for access token: %w", ctx.Err())}
	}
	defer func() { <-s.refresh }()
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	tok, ttl, err := s.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	// A token shorter-lived than the margin is still used, for half its life.
	early := tokenEarly
	if ttl <= 2*tokenEarly {
		early = ttl / 2
	}
	s.mu.Lock()
	s.token, s.expires = tok, s.now().Add(ttl-early)
	s.mu.Unlock()
	return tok, nil
}

func (s *Sender) cached() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token, s.token != "" && s.now().Before(s.expires)
}

// dropToken forgets tok unless another send has already replaced it.
func (s *Sender) dropToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == tok {
		s.token = ""
	}
}

func (s *Sender) fetchToken(ctx context.Context) (string, time.Duration, error) {
	now := s.now()
	claims := jwt.MapClaims{
		"iss":   s.creds.ClientEmail,
		"scope": Scope,
		"aud":   s.creds.TokenURI,
		"iat":   now.Unix(),
		"exp":   now.Add(assertionLifetime).Unix(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if s.creds.KeyID != "" {
		t.Header["kid"] = s.creds.KeyID
	}
	assertion, err := t.SignedString(s.creds.Key)
	if err != nil {
		return "", 0, fmt.Errorf("sign assertion: %w", err)
	}
	form := url.Values{"grant_type": {GrantType}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.creds.TokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", 0, &push.RetryError{Err: fmt.Errorf("token request: %w", err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", 0, &push.RetryError{Err: fmt.Errorf("token request: read answer: %w", err)}
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if resp.StatusCode != http.StatusOK {
		_ = json.Unmarshal(raw, &body)
		err := fmt.Errorf("token request: %d %s: %s", resp.StatusCode, body.Error, body.Description)
		if push.Retryable(resp.StatusCode) {
			return "", 0, &push.RetryError{After: push.RetryAfter(resp.Header.Get("Retry-After"), now), Err: err}
		}
		return "", 0, err
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return "", 0, fmt.Errorf("token request: decode answer: %w", err)
	}
	if body.AccessToken == "" || body.ExpiresIn <= 0 {
		return "", 0, errors.New("token request: answer has no access_token or expires_in")
	}
	return body.AccessToken, time.Duration(body.ExpiresIn) * time.Second, nil
}
