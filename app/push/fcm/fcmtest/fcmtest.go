// Package fcmtest is a local stand-in for FCM's HTTP v1 API and Google's
// OAuth2 token endpoint, strict enough that a sender passing against it
// signs, authorises and shapes its requests the way the real services
// require. It is for tests only and never talks to Google.
package fcmtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// ProjectID is the fake service account's project.
	ProjectID = "confab-test"
	// ClientEmail is the fake service account's address.
	ClientEmail = "push@confab-test.iam.gserviceaccount.com"

	scope     = "https://www.googleapis.com/auth/firebase.messaging"
	grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// Message is one message the send endpoint accepted, as FCM decoded it.
type Message struct {
	Token        string `json:"token"`
	Notification struct {
		Title string `json:"title"`
		Body  string `json:"body"`
	} `json:"notification"`
	Data    map[string]string `json:"data"`
	Android struct {
		CollapseKey  string `json:"collapse_key"`
		TTL          string `json:"ttl"`
		Notification struct {
			Tag               string `json:"tag"`
			NotificationCount *int   `json:"notification_count"`
		} `json:"notification"`
	} `json:"android"`
	APNS struct {
		Headers map[string]string `json:"headers"`
		Payload map[string]any    `json:"payload"`
	} `json:"apns"`
}

// Server is the stand-in. Its knobs may be turned while requests run.
type Server struct {
	// URL is the base URL to hand to fcm.NewSender.
	URL string
	// TokenURL is the token endpoint, also the token_uri in the credentials.
	TokenURL string
	// Now is the clock for checking assertions and token expiry; time.Now
	// when nil. Set it before the first request.
	Now func() time.Time
	// TokenLifetime is the expires_in of issued tokens; an hour when zero.
	// Set it before the first request.
	TokenLifetime time.Duration

	key  *rsa.PublicKey
	srv  *httptest.Server
	done chan struct{}

	mu            sync.Mutex
	tokens        map[string]time.Time // access token → expiry
	tokenRequests int
	refused       int
	messages      []Message
	fail          map[string]failure // device token → canned answer
	hang          map[string]bool
}

type failure struct {
	status     int
	retryAfter string
}

// NewServer starts a stand-in and returns it with the JSON of a service
// account (a fresh RSA key) whose token_uri points at it. It is closed
// when t ends.
func NewServer(t testing.TB) (*Server, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("fcmtest: generate key: %v", err)
	}
	s := &Server{
		key:    &key.PublicKey,
		done:   make(chan struct{}),
		tokens: map[string]time.Time{},
		fail:   map[string]failure{},
		hang:   map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", s.handleSend)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.TokenURL = s.srv.URL + "/token"
	t.Cleanup(func() {
		close(s.done) // releases hung handlers so Close does not wait for them
		s.srv.Close()
	})
	return s, CredentialsJSON(t, key, s.TokenURL)
}

// CredentialsJSON is a service-account file for key and tokenURL, as the
// Google console writes it (PKCS#8 PEM).
func CredentialsJSON(t testing.TB, key *rsa.PrivateKey, tokenURL string) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("fcmtest: marshal key: %v", err)
	}
	data, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     ProjectID,
		"private_key_id": "0123456789abcdef0123456789abcdef01234567",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   ClientEmail,
		"client_id":      "100000000000000000001",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      tokenURL,
	})
	if err != nil {
		t.Fatalf("fcmtest: marshal credentials: %v", err)
	}
	return data
}

// Unregister makes FCM answer device with 404 UNREGISTERED.
func (s *Server) Unregister(device string) { s.setFail(device, http.StatusNotFound, 0) }

// InvalidToken makes FCM answer device as it answers a malformed token:
// 400 INVALID_ARGUMENT, the same code it gives a malformed payload.
func (s *Server) InvalidToken(device string) { s.setFail(device, http.StatusBadRequest, 0) }

// Fail makes FCM answer device with status (429, 500 or 503), with a
// Retry-After of retryAfter when it is not zero.
func (s *Server) Fail(device string, status int, retryAfter time.Duration) {
	s.setFail(device, status, retryAfter)
}

func (s *Server) setFail(device string, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := failure{status: status}
	if retryAfter > 0 {
		f.retryAfter = fmt.Sprint(int(retryAfter / time.Second))
	}
	s.fail[device] = f
}

// Hang makes sends to device wait until the client gives up.
func (s *Server) Hang(device string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang[device] = true
}

// ExpireTokens makes every access token issued so far invalid, as if
// revoked, so the next send with one is answered 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokenRequests is how many token requests arrived, granted or refused.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// Refused is how many token requests were refused.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Messages is what the send endpoint accepted, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// handleToken checks an RFC 7523 assertion as Google does and answers
// errors in its OAuth2 shape.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	s.mu.Unlock()
	refuse := func(desc string) {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": desc})
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		refuse("Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		refuse("bad form: " + err.Error())
		return
	}
	if r.PostForm.Get("grant_type") != grantType {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "Invalid grant_type: " + r.PostForm.Get("grant_type")})
		return
	}
	now := s.now()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims,
		func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(ClientEmail),
		jwt.WithAudience(s.TokenURL),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		refuse("Invalid JWT: " + err.Error())
		return
	}
	if claims["scope"] != scope {
		refuse(fmt.Sprintf("Invalid scope %v", claims["scope"]))
		return
	}
	iat, err1 := claims.GetIssuedAt()
	exp, err2 := claims.GetExpirationTime()
	if err1 != nil || err2 != nil || iat == nil {
		refuse("Invalid JWT: iat and exp are required")
		return
	}
	if life := exp.Sub(iat.Time); life <= 0 || life > time.Hour {
		refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	lifetime := s.TokenLifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	tok := "ya29.fake." + randomHex(24)
	s.mu.Lock()
	s.tokens[tok] = now.Add(lifetime)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_in":   int(lifetime / time.Second),
		"token_type":   "Bearer",
	})
}

var ttlFormat = regexp.MustCompile(`^\d+(\.\d{1,9})?s$`)

// handleSend checks authorisation, the project and the message, then
// records it or gives the canned answer for its device.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	expiry, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !s.now().Before(expiry) {
		writeStatus(w, http.StatusUnauthorized, "UNAUTHENTICATED", "", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	if p := r.PathValue("project"); p != ProjectID {
		writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED", "", fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", p))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received. Content-Type must be application/json.")
		return
	}
	var body struct {
		Message *Message `json:"message"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields() // FCM refuses unknown names too
	if err := dec.Decode(&body); err != nil {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	m := body.Message
	if m == nil || m.Token == "" {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Recipient of the message is not set.")
		return
	}
	for k := range m.Data {
		if k == "from" || k == "message_type" || k == "notification" || strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.") {
			writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", fmt.Sprintf("Invalid data payload key: %s", k))
			return
		}
	}
	if m.Android.TTL != "" && !ttlFormat.MatchString(m.Android.TTL) {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", fmt.Sprintf("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', Illegal duration format; duration must end with 's': %q", m.Android.TTL))
		return
	}
	if id := m.APNS.Headers["apns-collapse-id"]; len(id) > 64 {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid apns-collapse-id header")
		return
	}

	s.mu.Lock()
	f, failing := s.fail[m.Token]
	hang := s.hang[m.Token]
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if failing {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		switch f.status {
		case http.StatusNotFound:
			writeStatus(w, f.status, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
		case http.StatusBadRequest:
			writeStatus(w, f.status, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
		case http.StatusTooManyRequests:
			writeStatus(w, f.status, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'.")
		case http.StatusServiceUnavailable:
			writeStatus(w, f.status, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
		default:
			writeStatus(w, f.status, "INTERNAL", "INTERNAL", "Internal error encountered.")
		}
		return
	}
	s.mu.Lock()
	s.messages = append(s.messages, *m)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"name": "projects/" + ProjectID + "/messages/0:" + randomHex(8)})
}

// writeStatus writes a google.rpc.Status error as FCM does; errorCode goes
// in an FcmError detail when not empty.
func writeStatus(w http.ResponseWriter, code int, status, errorCode, msg string) {
	e := map[string]any{"code": code, "message": msg, "status": status}
	if errorCode != "" {
		e["details"] = []map[string]string{{
			"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
			"errorCode": errorCode,
		}}
	}
	writeJSON(w, code, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
