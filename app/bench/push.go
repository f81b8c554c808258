package bench

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// pushService is a Web Push service (RFC 8030) on a loopback address,
// for send --push: it takes each push message (an encrypted body, with
// the headers a push service requires) with 201 Created and a Location,
// as a real one does, and counts it. It decrypts nothing: what a push
// costs the server is its sending, not what the browser would read.
type pushService struct {
	base     string // "http://127.0.0.1:8099/push/"
	srv      *http.Server
	received atomic.Int64
	refused  atomic.Int64
}

// startPushService listens on addr, a loopback host:port.
func startPushService(addr string) (*pushService, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("--push %q: want a loopback host:port such as 127.0.0.1:8099", addr)}
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, &usageError{fmt.Sprintf("--push %q: the push service listens on a loopback address only", addr)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--push: %w", err)
	}
	p := &pushService{base: "http://" + ln.Addr().String() + "/push/"}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 5 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *pushService) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
}

func (p *pushService) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	switch {
	case r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/push/"):
		p.refused.Add(1)
		http.Error(w, "not a subscription", http.StatusNotFound)
		return
	case err != nil || len(body) == 0 || len(body) > 4096:
		p.refused.Add(1)
		http.Error(w, "a push message is 1 to 4096 bytes", http.StatusRequestEntityTooLarge)
		return
	case r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" ||
		!strings.HasPrefix(r.Header.Get("Authorization"), "vapid t="):
		p.refused.Add(1)
		http.Error(w, "want Content-Encoding aes128gcm, TTL and VAPID authorization", http.StatusBadRequest)
		return
	}
	p.received.Add(1)
	w.Header().Set("Location", r.URL.Path+"/m"+fmt.Sprint(p.received.Load()))
	w.WriteHeader(http.StatusCreated)
}

// subscribe registers a Web Push device for u on the push service, as a
// browser would: a fresh P-256 key and auth secret.
func (p *pushService) subscribe(ctx context.Context, a *api, u *user, n int) error {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	b64 := base64.RawURLEncoding.EncodeToString
	body := map[string]any{"platform": "webpush", "subscription": map[string]any{
		"endpoint": fmt.Sprintf("%s%d-%d", p.base, u.ID, n),
		"keys":     map[string]string{"p256dh": b64(key.PublicKey().Bytes()), "auth": b64(auth)},
	}}
	if _, err := a.do(ctx, http.MethodPost, "/api/devices/", u.token(), body, nil); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "invalid" {
			return fmt.Errorf("register a Web Push device: %w (start the server with WEBPUSH_ALLOWED_ENDPOINTS=%s)", err, p.base)
		}
		return fmt.Errorf("register a Web Push device: %w", err)
	}
	return nil
}

// waitPushes waits until want pushes arrived, or no more have for
// quiet, or ctx ends, and returns how many arrived.
func (p *pushService) waitPushes(ctx context.Context, want int64, quiet time.Duration) int64 {
	last, at := p.received.Load(), time.Now()
	for ctx.Err() == nil {
		n := p.received.Load()
		if n >= want {
			return n
		}
		if n != last {
			last, at = n, time.Now()
		} else if time.Since(at) > quiet {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p.received.Load()
}
