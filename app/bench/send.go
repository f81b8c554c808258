package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func sendScenario() *scenario {
	return &scenario{
		name: "send", args: "--clients C --msgs M [--ws]",
		multi:   true,
		summary: "C concurrent REST senders: committed messages per second, latency",
		help: `Registers C senders and one recipient; each sender posts to its own direct
conversation with the recipient, waiting for each POST (201: committed)
before the next. M messages in all (not each) are shared among the
senders. It reports committed messages per second over the whole run and
the POST latency; any failed POST makes the exit status 1.

No socket is open, so this measures the write path (validation, the
commit, the event publish) on its own.

With --ws, each sender opens one socket (/ws/chat/) instead and sends
new_message frames on it, each waiting for its message_ack (an error
frame is a failed send): the same write path behind the WebSocket edge.
The server's per-socket frame limit (WS_FRAMES_PER_SECOND, 20 by default)
must be raised above what one sender sends, or the run fails with
rate_limited.

With several --url (the nodes of one cluster, sharing one database),
sender i posts to node i modulo their number; the accounts and
conversations are made on the first.

With --push ADDRESS, the bench serves a Web Push service on that
loopback address, and the recipient of every conversation (never online)
registers a device on it before the run: each message is then decided
and pushed by the server's dispatcher while the senders send, which is
what pushes cost the send path. Start the server with
WEBPUSH_ALLOWED_ENDPOINTS=http://ADDRESS/push/. The pushes that arrived
(a device gets one per conversation and coalescing window, not one per
message) are reported.

  confab bench send --clients 16 --msgs 16000
  confab bench send --clients 16 --msgs 16000 --ws
  confab bench send --clients 16 --msgs 16000 --push 127.0.0.1:8099`,
		timeout: func() time.Duration { return 30 * time.Minute },
		flags: func(fs *flag.FlagSet) func(context.Context, *env) (report, error) {
			clients := fs.Int("clients", 16, "concurrent senders")
			msgs := fs.Int("msgs", 10000, "messages to send, in all")
			size := fs.Int("size", 64, "message content length in characters (at least 48, at most 4000)")
			overWS := fs.Bool("ws", false, "send new_message frames over WebSocket, each waiting for its message_ack, instead of REST POSTs")
			pushAddr := fs.String("push", "", "serve a Web Push service on this loopback host:port and give the recipient a device on it "+
				"(the server needs WEBPUSH_ALLOWED_ENDPOINTS=http://host:port/push/)")
			return func(ctx context.Context, e *env) (report, error) {
				switch {
				case *clients < 1 || *msgs < 1:
					return nil, &usageError{"--clients and --msgs must be at least 1"}
				case *size < minContent || *size > 4000:
					return nil, &usageError{fmt.Sprintf("--size must be between %d and 4000", minContent)}
				}
				var ps *pushService
				if *pushAddr != "" {
					var err error
					if ps, err = startPushService(*pushAddr); err != nil {
						return nil, err
					}
					defer ps.close()
				}
				return runSend(ctx, e, *clients, *msgs, *size, *overWS, ps)
			}
		},
	}
}

type sendReport struct {
	header
	Clients int `json:"clients"`
	// WS: sent as new_message frames over WebSocket, not REST.
	WS         bool           `json:"ws,omitempty"`
	Messages   int            `json:"messages"`
	Committed  int64          `json:"committed"`
	Errors     int64          `json:"errors"`
	ErrorCodes map[string]int `json:"error_statuses,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	Secs       float64        `json:"send_seconds"`
	Rate       float64        `json:"committed_per_second"`
	Latency    latency        `json:"latency"`
	// PerNode is senders and commits per server, with several --url.
	PerNode []nodeSends `json:"per_node,omitempty"`
	// Push says the recipient had a Web Push device (--push); Pushes is
	// how many pushes reached it, Refused how many the push service
	// refused as malformed.
	Push    bool  `json:"push,omitempty"`
	Pushes  int64 `json:"pushes,omitempty"`
	Refused int64 `json:"pushes_refused,omitempty"`
}

// nodeSends is one server's share of a send run.
type nodeSends struct {
	URL       string `json:"url"`
	Senders   int    `json:"senders"`
	Committed int64  `json:"committed"`
}

func (r *sendReport) failed() bool {
	return r.Errors > 0 || r.Committed != int64(r.Messages) || r.Refused > 0 || (r.Push && r.Pushes == 0)
}

func (r *sendReport) rows() [][2]string {
	via, latency := "REST POST", "POST latency"
	if r.WS {
		via, latency = "WebSocket new_message → message_ack", "ack latency"
	}
	rows := [][2]string{
		{"clients", fmt.Sprint(r.Clients)},
		{"sent by", via},
		{"committed", fmt.Sprintf("%d of %d", r.Committed, r.Messages)},
		{"errors", fmtCodes(r.ErrorCodes)},
	}
	if r.FirstError != "" {
		rows = append(rows, [2]string{"first error", r.FirstError})
	}
	rows = append(rows,
		[2]string{"committed/s", fmt.Sprintf("%.0f (%.2f s)", r.Rate, r.Secs)},
		[2]string{latency, r.Latency.String()},
	)
	if len(r.PerNode) > 0 {
		parts := make([]string, len(r.PerNode))
		for i, n := range r.PerNode {
			parts[i] = fmt.Sprintf("%s %d senders, %d committed", n.URL, n.Senders, n.Committed)
		}
		rows = append(rows, [2]string{"nodes", strings.Join(parts, "; ")})
	}
	if r.Push {
		rows = append(rows, [2]string{"pushes", fmt.Sprintf("%d received, %d refused (one device, %d conversations)", r.Pushes, r.Refused, r.Clients)})
	}
	return append(rows, append(r.serverRows(), cpuPer(r.Server, r.Committed, "message")...)...)
}

func runSend(ctx context.Context, e *env, clients, msgs, size int, overWS bool, ps *pushService) (report, error) {
	users, err := e.registerPhase(ctx, clients+1)
	if err != nil {
		return nil, err
	}
	sink, senders := users[0], users[1:]
	convs := make([]int64, clients)
	for i, u := range senders {
		if convs[i], err = e.api.createConversation(ctx, u, []*user{sink}, false, ""); err != nil {
			return nil, fmt.Errorf("create a conversation: %w", err)
		}
	}
	r := &sendReport{Clients: clients, Messages: msgs, WS: overWS, Push: ps != nil}
	if ps != nil {
		if err := ps.subscribe(ctx, e.api, sink, 0); err != nil {
			return nil, err
		}
	}
	var socks []*wsSender
	if overWS {
		socks = make([]*wsSender, clients)
		for i, u := range senders {
			if socks[i], err = e.dialSender(ctx, i, u); err != nil {
				for _, s := range socks[:i] {
					s.sock.close()
				}
				return nil, sizeConnLimit(fmt.Errorf("open a socket: %w", err), clients, clients)
			}
		}
		defer func() {
			for _, s := range socks {
				s.sock.close()
			}
		}()
	}
	mem := e.memBefore()
	var (
		lat       hist
		committed atomic.Int64
		perNode   = make([]atomic.Int64, len(e.nodes))
		errs      codes
		firstErr  firstError
		seq       atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	e.progress.set(func() string {
		c := committed.Load()
		return fmt.Sprintf("committed %d/%d (%.0f/s), errors %d", c, msgs, perSec(c, time.Since(start)), errs.total())
	})
	for i := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := seq.Add(1)
				if n > int64(msgs) {
					return
				}
				at := e.since()
				tag := fmt.Sprintf("s%d-%d", i, n)
				var err error
				if overWS {
					err = socks[i].send(ctx, convs[i], stamp(at, tag, size), "send-"+tag)
				} else {
					_, err = e.apiOf(i).post(ctx, senders[i], convs[i], stamp(at, tag, size), "send-"+tag)
				}
				if err != nil {
					if ctx.Err() == nil {
						errs.add(sendErrorName(err))
						firstErr.set(err)
					}
					continue
				}
				lat.add(e.since() - at)
				committed.Add(1)
				perNode[e.nodeOf(i)].Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	mem.after(e)
	r.Committed, r.Errors, r.ErrorCodes, r.FirstError = committed.Load(), int64(errs.total()), errs.snapshot(), firstErr.String()
	r.Secs, r.Rate, r.Latency = seconds(took), perSec(r.Committed, took), lat.summary()
	if len(e.nodes) > 1 {
		for k, n := range e.nodes {
			r.PerNode = append(r.PerNode, nodeSends{URL: n.t.base, Senders: countOn(e, k, clients), Committed: perNode[k].Load()})
		}
	}
	if ps != nil {
		// At least one push per conversation, once its coalescing
		// window (a second) has passed and the dispatcher has sent it.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r.Pushes = ps.waitPushes(wctx, int64(clients), 5*time.Second)
		cancel()
		r.Refused = ps.refused.Load()
	}
	r.header = e.header("send")
	r.Server = mem
	r.finish(e)
	return r, ctx.Err()
}

// wsSender is one sender's socket in a --ws send run: frames go out one at
// a time, each answered by its message_ack or an error frame.
type wsSender struct {
	sock    *sock
	replies chan *frame
	next    int
}

// ackWait bounds the wait for one message_ack.
const ackWait = 30 * time.Second

func (e *env) dialSender(ctx context.Context, i int, u *user) (*wsSender, error) {
	s, err := e.dial(ctx, i, "/ws/chat/", u)
	if err != nil {
		return nil, err
	}
	ws := &wsSender{sock: s, replies: make(chan *frame, 1)}
	go s.run(e, u, func(f *frame, _ time.Duration) {
		if f.Type == "message_ack" || f.Type == "error" {
			select {
			case ws.replies <- f:
			default: // an answer nobody waits for: counted when it is late
				e.protocolErrors.Add(1)
			}
		}
	})
	return ws, nil
}

// wsError is an error frame in answer to a new_message.
type wsError struct{ code, detail string }

func (e *wsError) Error() string {
	if e.code == "rate_limited" {
		return e.code + ": " + e.detail + " (start the server with WS_FRAMES_PER_SECOND and WS_FRAME_BURST above what one sender sends: the defaults allow 20 frames per second per socket)"
	}
	return e.code + ": " + e.detail
}

// sendErrorName names a failed send for the error counts: the HTTP
// status, or the error frame's code.
func sendErrorName(err error) string {
	var we *wsError
	if errors.As(err, &we) {
		return "error " + we.code
	}
	return statusName(err)
}

// send sends one new_message frame and waits for its answer.
func (w *wsSender) send(ctx context.Context, convID int64, content, clientID string) error {
	w.next++
	rid := fmt.Sprint(w.next)
	if err := w.sock.send(map[string]any{"type": "new_message", "conversation_id": convID,
		"content": content, "client_id": clientID, "request_id": rid}); err != nil {
		return err
	}
	t := time.NewTimer(ackWait)
	defer t.Stop()
	for {
		select {
		case f := <-w.replies:
			// An error without a request_id is the answer to the frame
			// in flight too: the rate limit refuses a frame unread.
			if f.RequestID != rid && !(f.Type == "error" && f.RequestID == "") {
				continue // the late answer to a send given up on
			}
			if f.Type == "error" {
				return &wsError{f.Code, f.Detail}
			}
			if f.Message == nil || f.ClientID == nil || *f.ClientID != clientID {
				return fmt.Errorf("message_ack without the message sent")
			}
			return nil
		case <-w.sock.done:
			return fmt.Errorf("the socket closed (%s)", w.sock.closeCode())
		case <-t.C:
			return fmt.Errorf("no message_ack within %s", ackWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
