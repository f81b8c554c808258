// Package webpushtest is a stand-in push service for tests: a real HTTP
// server that checks what browsers' push services check (the VAPID
// token and its key, the TTL, the encoding) and decrypts every message
// with the subscription's private key, so a test sees exactly what a
// browser's service worker would. Its decryption is written from RFC 8291
// and RFC 8188 apart from package webpush's encryption, so the two check
// each other.
package webpushtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/push/webpush"
)

// maxBody is the largest message the stand-in takes; RFC 8030 §7.2
// lets a push service refuse larger ones with 413, and RFC 8291 §4 sets
// 4096 octets as what every one must take.
const maxBody = 4096

// Received is one message the stand-in accepted.
type Received struct {
	Subscription webpush.Subscription
	// Payload is the decrypted message: the JSON the service worker gets.
	Payload []byte
	// Topic, TTL and Urgency are the request's headers ("" or 0 if absent).
	Topic   string
	TTL     time.Duration
	Urgency string
}

// Server is the stand-in push service. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the server's origin, e.g. "http://127.0.0.1:41234"; every
	// endpoint starts with URL + "/push/".
	URL string
	// Now is the server's clock for VAPID expiry; time.Now by default.
	// Set it before the first message is sent.
	Now func() time.Time

	srv  *httptest.Server
	stop chan struct{}

	mu       sync.Mutex
	subs     map[string]*subscription // by endpoint
	received []Received
	requests int
}

// subscription is a browser's half of a subscription and how the
// stand-in answers for it.
type subscription struct {
	pub    webpush.Subscription
	priv   *ecdh.PrivateKey
	auth   []byte
	status int           // when not 0, answer this instead of accepting
	after  time.Duration // Retry-After sent with status
	hang   bool          // answer only once the request is given up
	// appKey is the applicationServerKey the subscription was made
	// with (SubscribeFor), which every message's VAPID k must be.
	appKey []byte
}

// NewServer starts a stand-in push service, closed when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Now:  time.Now,
		stop: make(chan struct{}),
		subs: make(map[string]*subscription),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		// Release hanging handlers first: Close waits for them.
		close(s.stop)
		s.srv.Close()
	})
	return s
}

// Allowed is the allowed list that lets a webpush.Sender reach this
// server, and nothing else.
func (s *Server) Allowed() []string { return []string{s.URL + "/push/"} }

// Subscribe makes a subscription as a browser would: a fresh P-256 key
// pair, a 16-byte auth secret and an endpoint on this server.
func (s *Server) Subscribe(t testing.TB) webpush.Subscription {
	t.Helper()
	return s.SubscribeFor(t, "")
}

// SubscribeFor is Subscribe with an applicationServerKey (base64url, the
// uncompressed P-256 point, as pushManager.subscribe takes it): as
// browsers' push services do (RFC 8292 §4.2), messages whose VAPID key
// is another are refused with 403. "" accepts any key.
func (s *Server) SubscribeFor(t testing.TB, appServerKey string) webpush.Subscription {
	t.Helper()
	var appKey []byte
	if appServerKey != "" {
		k, err := base64.RawURLEncoding.DecodeString(appServerKey)
		if err != nil {
			t.Fatalf("webpushtest: applicationServerKey %q is not base64url: %v", appServerKey, err)
		}
		appKey = k
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("webpushtest: subscription key: %v", err)
	}
	auth := make([]byte, 16)
	id := make([]byte, 16)
	if _, err := rand.Read(auth); err != nil {
		t.Fatalf("webpushtest: auth secret: %v", err)
	}
	if _, err := rand.Read(id); err != nil {
		t.Fatalf("webpushtest: endpoint id: %v", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	sub := webpush.Subscription{
		Endpoint: s.URL + "/push/" + b64(id),
		P256dh:   b64(priv.PublicKey().Bytes()),
		Auth:     b64(auth),
	}
	s.mu.Lock()
	s.subs[sub.Endpoint] = &subscription{pub: sub, priv: priv, auth: auth, appKey: appKey}
	s.mu.Unlock()
	return sub
}

// Fail makes the server answer every later message for sub with status
// (404 or 410: gone; 429 or 5xx: overloaded), with a Retry-After of
// after when it is not zero. Status 0 goes back to accepting.
func (s *Server) Fail(sub webpush.Subscription, status int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.subs[sub.Endpoint]; x != nil {
		x.status, x.after = status, after
	}
}

// Hang makes the server hold every later message for sub without
// answering until the sender gives up (or the test ends).
func (s *Server) Hang(sub webpush.Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.subs[sub.Endpoint]; x != nil {
		x.hang = true
	}
}

// Release makes the server answer sub's messages again after Hang:
// requests held already stay held until their sender gives up.
func (s *Server) Release(sub webpush.Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.subs[sub.Endpoint]; x != nil {
		x.hang = false
	}
}

// Received is every message accepted so far, oldest first.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Requests is how many HTTP requests reached the server, accepted or
// not: zero proves a sender refused to send at all.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	sub := s.subs[s.URL+r.URL.RequestURI()]
	var x subscription
	if sub != nil {
		x = *sub
	}
	s.mu.Unlock()

	if sub == nil {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "push messages are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if x.hang {
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	}
	if x.status != 0 {
		if x.after > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(x.after/time.Second)))
		}
		http.Error(w, http.StatusText(x.status), x.status)
		return
	}

	// RFC 8292 §4.2: a bad or missing token is 401.
	key, err := s.checkVAPID(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, "vapid: "+err.Error(), http.StatusUnauthorized)
		return
	}
	// RFC 8292 §4.2: a key other than the subscription's is 403.
	if x.appKey != nil && !bytes.Equal(key, x.appKey) {
		http.Error(w, "vapid: k is not the subscription's applicationServerKey", http.StatusForbidden)
		return
	}
	ttl, err := strconv.ParseInt(r.Header.Get("TTL"), 10, 64)
	if err != nil || ttl < 0 {
		http.Error(w, "TTL header missing or not a non-negative integer", http.StatusBadRequest)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		http.Error(w, fmt.Sprintf("Content-Encoding %q, want aes128gcm", ce), http.StatusUnsupportedMediaType)
		return
	}
	topic := r.Header.Get("Topic")
	if !validTopic(topic) {
		http.Error(w, "Topic must be at most 32 characters of base64url", http.StatusBadRequest)
		return
	}
	urgency := r.Header.Get("Urgency")
	switch urgency {
	case "", "very-low", "low", "normal", "high":
	default:
		http.Error(w, fmt.Sprintf("Urgency %q", urgency), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxBody {
		http.Error(w, "message larger than 4096 octets", http.StatusRequestEntityTooLarge)
		return
	}
	plaintext, err := decrypt(body, x.priv, x.auth)
	if err != nil {
		http.Error(w, "decrypt: "+err.Error(), http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	id := len(s.received)
	s.received = append(s.received, Received{
		Subscription: x.pub,
		Payload:      plaintext,
		Topic:        topic,
		TTL:          time.Duration(ttl) * time.Second,
		Urgency:      urgency,
	})
	s.mu.Unlock()
	// RFC 8030 §5: the created message has its own URL.
	w.Header().Set("Location", s.URL+"/message/"+strconv.Itoa(id))
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID verifies "vapid t=<jwt>, k=<key>" (RFC 8292 §3): the JWT
// is ES256-signed by k, its audience is this server's origin, it has not
// expired and expires within 24 hours, and it names a contact.
func (s *Server) checkVAPID(h string) ([]byte, error) {
	scheme, params, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return nil, errors.New("Authorization is not a vapid scheme")
	}
	var tok, key string
	for p := range strings.SplitSeq(params, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(name) {
		case "t":
			tok = value
		case "k":
			key = value
		}
	}
	if tok == "" || key == "" {
		return nil, errors.New("need both t= and k=")
	}
	kb, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return nil, fmt.Errorf("k is not base64url: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), kb)
	if err != nil {
		return nil, fmt.Errorf("k is not a P-256 point: %w", err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("t is not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeJSON(parts[0], &header); err != nil {
		return nil, fmt.Errorf("JWT header: %w", err)
	}
	if header.Alg != "ES256" {
		return nil, fmt.Errorf("JWT alg %q, want ES256", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("JWT signature is not 64 bytes of base64url")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, ss) {
		return nil, errors.New("JWT signature does not verify with k")
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := decodeJSON(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	now := s.Now()
	switch exp := time.Unix(claims.Exp, 0); {
	case claims.Aud != s.URL:
		return nil, fmt.Errorf("aud %q, want %q", claims.Aud, s.URL)
	case !exp.After(now):
		return nil, errors.New("token expired")
	case exp.After(now.Add(24 * time.Hour)):
		return nil, errors.New("exp more than 24 hours ahead")
	case !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https://"):
		return nil, fmt.Errorf("sub %q is not a mailto: or https: contact", claims.Sub)
	}
	return kb, nil
}

func decodeJSON(b64 string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func validTopic(t string) bool {
	if len(t) > 32 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decrypt undoes RFC 8291 with the browser's private key and auth
// secret: read the RFC 8188 header, derive the key and nonce, open each
// record and strip its padding.
func decrypt(body []byte, priv *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("shorter than the aes128gcm header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if rs < 18 {
		return nil, fmt.Errorf("record size %d below 18", rs)
	}
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("key id is %d bytes, want the 65-byte sender key", idlen)
	}
	senderKey := body[21 : 21+idlen]
	records := body[21+idlen:]
	asPublic, err := ecdh.P256().NewPublicKey(senderKey)
	if err != nil {
		return nil, fmt.Errorf("key id is not a P-256 point: %w", err)
	}
	secret, err := priv.ECDH(asPublic)
	if err != nil {
		return nil, err
	}

	// HKDF (RFC 5869) spelled out with HMAC; every output here is at
	// most one SHA-256 block.
	extract := func(salt, ikm []byte) []byte {
		m := hmac.New(sha256.New, salt)
		m.Write(ikm)
		return m.Sum(nil)
	}
	expand := func(prk []byte, info string, n int) []byte {
		m := hmac.New(sha256.New, prk)
		m.Write([]byte(info))
		m.Write([]byte{1})
		return m.Sum(nil)[:n]
	}
	uaPublic := priv.PublicKey().Bytes()
	ikm := expand(extract(auth, secret), "WebPush: info\x00"+string(uaPublic)+string(senderKey), 32)
	prk := extract(salt, ikm)
	cek := expand(prk, "Content-Encoding: aes128gcm\x00", 16)
	baseNonce := expand(prk, "Content-Encoding: nonce\x00", 12)

	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, errors.New("no records")
	}
	var out []byte
	for seq := uint64(0); len(records) > 0; seq++ {
		n := min(int(rs), len(records))
		rec := records[:n]
		records = records[n:]
		last := len(records) == 0
		nonce := append([]byte(nil), baseNonce...)
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], seq)
		for i := range s {
			nonce[4+i] ^= s[i]
		}
		plain, err := gcm.Open(nil, nonce, rec, nil)
		if err != nil {
			return nil, fmt.Errorf("record %d does not decrypt: %w", seq, err)
		}
		// Padding is zeros after a delimiter: 2 ends the last record,
		// 1 any other (RFC 8188 §2).
		end := len(plain) - 1
		for end >= 0 && plain[end] == 0 {
			end--
		}
		switch {
		case end < 0:
			return nil, fmt.Errorf("record %d has no delimiter", seq)
		case last && plain[end] != 2:
			return nil, fmt.Errorf("last record %d ends with delimiter %d, want 2", seq, plain[end])
		case !last && plain[end] != 1:
			return nil, fmt.Errorf("record %d ends with delimiter %d, want 1", seq, plain[end])
		}
		out = append(out, plain[:end]...)
	}
	return out, nil
}
