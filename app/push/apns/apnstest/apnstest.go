// Package apnstest is a local stand-in for Apple's Push Notification
// service: HTTP/2 over TLS, strict about the provider JWT, headers and
// payload the way APNs is, answering with APNs' status codes and reasons.
// It is for tests only and never talks to Apple.
package apnstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Topic is the bundle ID the stand-in serves unless Server.Topic is changed.
const Topic = "chat.confab.ios"

// Notification is one notification the stand-in accepted.
type Notification struct {
	DeviceToken string
	// Header holds the request's headers, authorization included.
	Header http.Header
	// Payload is the decoded JSON body.
	Payload map[string]any
}

// Server is the stand-in. Its knobs may be turned while requests run.
type Server struct {
	// URL is the base URL to hand to apns.NewSender.
	URL string
	// Topic is the only apns-topic accepted; the Topic constant by default.
	// Set it before the first request.
	Topic string
	// Now is the clock for judging a JWT's age; time.Now when nil. Set it
	// before the first request.
	Now func() time.Time

	key           *ecdsa.PublicKey
	keyID, teamID string
	srv           *httptest.Server
	done          chan struct{}

	mu       sync.Mutex
	received []Notification
	jwts     map[string]bool // provider tokens seen → expired by ExpireProviderTokens
	refused  map[string]int  // reason → count
	answer   map[string]answer
	hang     map[string]bool
}

type answer struct {
	status int
	reason string
}

// NewServer starts a stand-in with a fresh P-256 auth key and returns it
// with that key as a .p8 file, its key ID and team ID. It is closed when
// t ends.
func NewServer(t testing.TB) (s *Server, keyP8 []byte, keyID, teamID string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("apnstest: generate key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("apnstest: marshal key: %v", err)
	}
	s = &Server{
		Topic:   Topic,
		key:     &key.PublicKey,
		keyID:   randomID(),
		teamID:  randomID(),
		done:    make(chan struct{}),
		jwts:    map[string]bool{},
		refused: map[string]int{},
		answer:  map[string]answer{},
		hang:    map[string]bool{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.done) // releases hung handlers so Close does not wait for them
		s.srv.Close()
	})
	return s, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), s.keyID, s.teamID
}

// Client returns an HTTP/2 client that trusts the stand-in's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CertificatePEM is the stand-in's TLS certificate (for 127.0.0.1), to
// trust from another process: write it to a file and name it in that
// process's SSL_CERT_FILE.
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Unregister makes APNs answer device with 410 Unregistered.
func (s *Server) Unregister(device string) { s.set(device, http.StatusGone, "Unregistered") }

// BadDeviceToken makes APNs answer device with 400 BadDeviceToken.
func (s *Server) BadDeviceToken(device string) {
	s.set(device, http.StatusBadRequest, "BadDeviceToken")
}

// Fail makes APNs answer device with status: 500 InternalServerError,
// 503 ServiceUnavailable or 429 TooManyRequests.
func (s *Server) Fail(device string, status int) {
	reason := map[int]string{429: "TooManyRequests", 503: "ServiceUnavailable"}[status]
	if reason == "" {
		reason = "InternalServerError"
	}
	s.set(device, status, reason)
}

func (s *Server) set(device string, status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer[device] = answer{status, reason}
}

// Hang makes sends to device wait until the client gives up.
func (s *Server) Hang(device string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang[device] = true
}

// ExpireProviderTokens makes every provider JWT seen so far answered with
// 403 ExpiredProviderToken.
func (s *Server) ExpireProviderTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.jwts {
		s.jwts[k] = true
	}
}

// ProviderTokens is how many distinct provider JWTs arrived.
func (s *Server) ProviderTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jwts)
}

// Refused is how many requests were refused with reason.
func (s *Server) Refused(reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[reason]
}

// Received is what the stand-in accepted, oldest first.
func (s *Server) Received() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.received...)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	// Real APNs does not speak HTTP/1.1 at all; this says so instead.
	if r.ProtoMajor != 2 {
		s.refuse(w, http.StatusHTTPVersionNotSupported, "HTTP2Required")
		return
	}
	device, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || device == "" || strings.Contains(device, "/") {
		s.refuse(w, http.StatusNotFound, "BadPath")
		return
	}
	if r.Method != http.MethodPost {
		s.refuse(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	}
	if status, reason := s.checkToken(r.Header.Get("authorization")); status != 0 {
		s.refuse(w, status, reason)
		return
	}
	if status, reason := s.checkHeaders(r.Header); status != 0 {
		s.refuse(w, status, reason)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil {
		s.refuse(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	if len(raw) > 4096 {
		s.refuse(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		return
	}
	var body map[string]any
	// Apple has no reason for malformed JSON; it fails as an empty payload.
	if json.Unmarshal(raw, &body) != nil {
		s.refuse(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	aps, ok := body["aps"].(map[string]any)
	if !ok {
		s.refuse(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	if _, ok := aps["alert"]; !ok {
		// An alert push must carry an alert.
		s.refuse(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}

	s.mu.Lock()
	a, canned := s.answer[device]
	hang := s.hang[device]
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if canned {
		if a.status == http.StatusGone {
			writeReason(w, a.status, map[string]any{"reason": a.reason, "timestamp": s.now().UnixMilli()})
			return
		}
		writeReason(w, a.status, map[string]any{"reason": a.reason})
		return
	}
	if len(device) != 64 || !isHex(device) {
		s.refuse(w, http.StatusBadRequest, "BadDeviceToken")
		return
	}
	s.mu.Lock()
	s.received = append(s.received, Notification{DeviceToken: device, Header: r.Header.Clone(), Payload: body})
	s.mu.Unlock()
	w.Header().Set("apns-id", randomUUID())
	w.WriteHeader(http.StatusOK)
}

// checkToken verifies the provider JWT as APNs does: ES256 with the
// team's key, the key's kid, the team as iss, iat within the last hour.
func (s *Server) checkToken(authz string) (int, string) {
	tok, ok := strings.CutPrefix(authz, "bearer ")
	if !ok || tok == "" {
		return http.StatusForbidden, "MissingProviderToken"
	}
	s.mu.Lock()
	expired, seen := s.jwts[tok]
	s.mu.Unlock()
	if expired {
		return http.StatusForbidden, "ExpiredProviderToken"
	}
	now := s.now()
	claims := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(tok, claims,
		func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(s.teamID),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil || t.Header["kid"] != s.keyID {
		return http.StatusForbidden, "InvalidProviderToken"
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return http.StatusForbidden, "InvalidProviderToken"
	}
	if now.Sub(iat.Time) > time.Hour {
		return http.StatusForbidden, "ExpiredProviderToken"
	}
	if !seen {
		s.mu.Lock()
		if _, again := s.jwts[tok]; !again {
			s.jwts[tok] = false
		}
		s.mu.Unlock()
	}
	return 0, ""
}

func (s *Server) checkHeaders(h http.Header) (int, string) {
	switch topic := h.Get("apns-topic"); {
	case topic == "":
		return http.StatusBadRequest, "MissingTopic"
	case topic != s.Topic:
		return http.StatusBadRequest, "TopicDisallowed"
	}
	if h.Get("apns-push-type") != "alert" {
		return http.StatusBadRequest, "InvalidPushType"
	}
	if p := h.Get("apns-priority"); p != "" && p != "10" && p != "5" && p != "1" {
		return http.StatusBadRequest, "BadPriority"
	}
	if e := h.Get("apns-expiration"); e != "" {
		if _, err := strconv.ParseInt(e, 10, 64); err != nil {
			return http.StatusBadRequest, "BadExpirationDate"
		}
	}
	if len(h.Get("apns-collapse-id")) > 64 {
		return http.StatusBadRequest, "BadCollapseId"
	}
	return 0, ""
}

func (s *Server) refuse(w http.ResponseWriter, status int, reason string) {
	s.mu.Lock()
	s.refused[reason]++
	s.mu.Unlock()
	writeReason(w, status, map[string]any{"reason": reason})
}

func writeReason(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("apns-id", randomUUID())
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// DeviceToken returns a random device token in APNs' form (64 hex digits).
func DeviceToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// randomID is a ten-character key or team ID like Apple's.
func randomID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
