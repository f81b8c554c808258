package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// frame is the part of any server frame the bench reads.
type frame struct {
	Type           string       `json:"type"`
	ConversationID int64        `json:"conversation_id"`
	Message        *wireMessage `json:"message"`
	Recovered      bool         `json:"recovered"`
	Missed         int          `json:"missed"`
	Code           string       `json:"code"`
	Detail         string       `json:"detail"`
	RequestID      string       `json:"request_id"`
	ClientID       *string      `json:"client_id"`
	UserID         int64        `json:"user_id"`
}

// Timing of the bench's sockets.
const (
	writeWait     = 5 * time.Second
	handshakeWait = 15 * time.Second
	closeWait     = 2 * time.Second
)

// sock is one WebSocket of the bench: one reader (run) and any number of
// writers (send), serialized.
type sock struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	done chan struct{} // closed when run returns
	// code is the server's close code (0: none, or we closed); read it
	// after done.
	code    int
	err     error
	closing atomic.Bool // we are closing it: its end is no failure
}

// errUnauthorized is a socket the server closed with 4001 at once.
var errUnauthorized = errors.New("the server closed the socket with 4001 (unauthorized)")

// connLimitError is a socket the server refused with 4029 at once: past
// its limit of open sockets per client address or per user.
type connLimitError struct {
	reason string
	// sockets and perUser are what the run opens, for the advice.
	sockets, perUser int
}

func (e *connLimitError) Error() string {
	s := fmt.Sprintf("the server refused a socket (4029: %s)", e.reason)
	switch {
	case strings.Contains(e.reason, "address"):
		s += fmt.Sprintf(": start it with WS_MAX_CONNS_PER_IP=%d or more (open sockets per client address; the default is 1000)", e.sockets+100)
	case strings.Contains(e.reason, "user"):
		s += fmt.Sprintf(": start it with WS_MAX_CONNS_PER_USER=%d or more (open sockets per user; the default is 50), or give the bench more --users", e.perUser+1)
	}
	return s
}

// sizeConnLimit fills in a connLimitError's advice with the run's figures.
func sizeConnLimit(err error, sockets, users int) error {
	var cl *connLimitError
	if errors.As(err, &cl) {
		cl.sockets, cl.perUser = sockets, (sockets+users-1)/max(users, 1)
	}
	return err
}

// dial opens a socket to path as u and reads its connection_established;
// i picks the node (i modulo their number) and, on it, the source address. A token about to expire is renewed first
// (registering thousands of accounts can outlast ACCESS_TOKEN_TTL), and a
// 4001 gets one more try with a fresh token.
func (e *env) dial(ctx context.Context, i int, path string, u *user) (*sock, error) {
	tok := u.token()
	if exp := tokenExpiry(tok); !exp.IsZero() && time.Until(exp) < 2*time.Minute {
		if fresh, err := e.api.renew(ctx, u, tok); err == nil {
			tok = fresh
		}
	}
	s, err := e.dialToken(ctx, i, path, tok)
	if errors.Is(err, errUnauthorized) {
		if fresh, rerr := e.api.renew(ctx, u, tok); rerr == nil {
			s, err = e.dialToken(ctx, i, path, fresh)
		}
	}
	return s, err
}

// tokenExpiry reads the exp claim of a JWT (its payload is not secret),
// or returns zero.
func tokenExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

func (e *env) dialToken(ctx context.Context, i int, path, tok string) (*sock, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeWait)
	defer cancel()
	h := http.Header{"Authorization": {"Bearer " + tok}}
	t, k := e.targetOf(i)
	ws, resp, err := t.wsDialer(k).DialContext(ctx, t.wsBase+path, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
		}
		return nil, err
	}
	ws.SetReadDeadline(time.Now().Add(handshakeWait))
	_, data, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == 4001:
			return nil, errUnauthorized
		case errors.As(err, &ce) && ce.Code == 4029:
			return nil, &connLimitError{reason: ce.Text}
		}
		return nil, fmt.Errorf("waiting for connection_established: %w", err)
	}
	var f frame
	if json.Unmarshal(data, &f) != nil || f.Type != "connection_established" {
		ws.Close()
		return nil, fmt.Errorf("first frame is not connection_established: %.200s", data)
	}
	ws.SetReadDeadline(time.Time{})
	return &sock{ws: ws, done: make(chan struct{})}, nil
}

// run reads frames until the socket ends, giving each to handle (when not
// nil) with the time it arrived, since the run's start. token_expiring is
// answered here for every scenario: renew gets a fresh token and run sends
// it with authenticate, so that sockets outlive the access token's
// lifetime in soak runs.
func (s *sock) run(e *env, u *user, handle func(f *frame, at time.Duration)) {
	defer close(s.done)
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				s.code = ce.Code
			}
			s.err = err
			s.ws.Close()
			return
		}
		at := e.since()
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			e.protocolErrors.Add(1)
			continue
		}
		if f.Type == "token_expiring" && u != nil {
			old := u.token()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				tok, err := e.api.renew(ctx, u, old)
				if err == nil {
					err = s.send(map[string]string{"type": "authenticate", "token": tok})
				}
				switch {
				case err == nil:
					e.renewals.Add(1)
				case s.closing.Load():
					// The bench is closing this socket: the next one
					// uses the new token.
				default:
					select {
					case <-s.done: // the server closed it meanwhile
					default:
						e.protocolErrors.Add(1)
					}
				}
			}()
		}
		if handle != nil {
			handle(&f, at)
		}
	}
}

// send writes one JSON frame.
func (s *sock) send(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return s.ws.WriteJSON(v)
}

// close ends the socket with 1000 and waits for its reader (which run
// must have been started for), a couple of seconds at most.
func (s *sock) close() {
	s.closing.Store(true)
	s.wmu.Lock()
	err := s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	s.wmu.Unlock()
	if err == nil {
		select {
		case <-s.done:
		case <-time.After(closeWait):
		}
	}
	s.ws.Close()
	<-s.done
}

// drop ends the socket without a close frame, like a lost network.
func (s *sock) drop() {
	s.closing.Store(true)
	s.ws.Close()
	<-s.done
}

// failed reports whether the socket ended without the bench closing it.
func (s *sock) failed() bool { return !s.closing.Load() }

// closeCode names how a socket the bench did not close ended.
func (s *sock) closeCode() string {
	if s.code != 0 {
		return fmt.Sprint(s.code)
	}
	return "no close frame"
}
