package ws

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxBatch is the most frames one write carries.
const maxBatch = 64

// maxControlPayload is the largest payload of a control frame (RFC 6455
// 5.5).
const maxControlPayload = 125

// errCloseSent is returned by a socket once its close frame is written.
var errCloseSent = errors.New("ws: close frame already sent")

// socket is the one writer of a connection's network socket. Data frames,
// control frames (ping, pong, close) and every write deadline go through
// it, and it is used by one goroutine at a time, the connection's writer:
// nothing else writes to the network connection or moves its write
// deadline.
//
// Frames are gathered into a batch that one writev sends: under load a
// connection pays one syscall per batch, not one per frame, and the
// payload bytes shared by every subscriber are never copied. The socket
// keeps its batch while its writer runs and gives it back to a pool when
// the writer ends (release), so that an idle connection holds none.
type socket struct {
	nc      net.Conn
	metrics Metrics
	b       *batch // nil when released
	closed  bool   // the close frame was written, or its write failed
	// deadline is the write deadline in force on nc (zero: none yet).
	deadline time.Time
}

// batch is the frames of one write.
type batch struct {
	bufs   net.Buffers
	out    net.Buffers // what the write consumes
	hdr    []byte      // frame headers, 10 bytes each at most
	frames int
	types  []string // per frame, for metrics; "" for control frames
}

// batchesMade counts the batches the pool has had to make. Tests read it
// to tell a pool miss (which the race detector causes on purpose) from an
// allocation on the path of a delivery.
var batchesMade atomic.Int64

var batches = sync.Pool{New: func() any {
	batchesMade.Add(1)
	return &batch{
		bufs:  make(net.Buffers, 0, 2*maxBatch),
		hdr:   make([]byte, 0, 10*maxBatch),
		types: make([]string, 0, maxBatch),
	}
}}

// add appends one unmasked, unfragmented frame with opcode op.
func (b *batch) add(op byte, typ string, payload []byte) {
	start := len(b.hdr)
	n := len(payload)
	switch {
	case n < 126:
		b.hdr = append(b.hdr, 0x80|op, byte(n))
	case n <= 0xffff:
		b.hdr = append(b.hdr, 0x80|op, 126)
		b.hdr = binary.BigEndian.AppendUint16(b.hdr, uint16(n))
	default:
		b.hdr = append(b.hdr, 0x80|op, 127)
		b.hdr = binary.BigEndian.AppendUint64(b.hdr, uint64(n))
	}
	b.bufs = append(b.bufs, b.hdr[start:len(b.hdr):len(b.hdr)], payload)
	b.types = append(b.types, typ)
	b.frames++
}

func (b *batch) reset() {
	clear(b.bufs[:cap(b.bufs)]) // drop references to payloads
	b.out = nil
	b.bufs, b.hdr, b.types, b.frames = b.bufs[:0], b.hdr[:0], b.types[:0], 0
}

func (s *socket) batch() *batch {
	if s.b == nil {
		s.b = batches.Get().(*batch)
	}
	return s.b
}

// text queues a text frame of type typ for the next flush. The payload
// is not copied: it must not change until the flush.
func (s *socket) text(typ string, payload []byte) {
	s.batch().add(websocket.TextMessage, typ, payload)
}

// control queues a ping or pong frame behind the frames already queued.
// A payload longer than a control frame may carry is cut.
func (s *socket) control(op byte, payload []byte) {
	if len(payload) > maxControlPayload {
		payload = payload[:maxControlPayload]
	}
	s.batch().add(op, "", payload)
}

// full reports whether the batch should be flushed before more is added.
func (s *socket) full() bool { return s.b != nil && s.b.frames >= maxBatch }

// discard drops the queued frames unwritten.
func (s *socket) discard() {
	if s.b != nil {
		s.b.reset()
	}
}

// release drops the queued frames and gives the batch back to the pool;
// the socket takes one again when it next has a frame.
func (s *socket) release() {
	if s.b != nil {
		s.b.reset()
		batches.Put(s.b)
		s.b = nil
	}
}

// flush writes the queued frames in one writev, within timeout.
func (s *socket) flush(timeout time.Duration) error {
	b := s.b
	if b == nil || b.frames == 0 {
		return nil
	}
	defer b.reset()
	if s.closed {
		return errCloseSent
	}
	s.setDeadline(timeout)
	// WriteTo consumes the slice it is called on: a copy keeps bufs
	// whole for reuse (a field, so that it is not allocated).
	b.out = b.bufs
	if _, err := b.out.WriteTo(s.nc); err != nil {
		s.closed = true // a failed write leaves the stream in pieces
		return err
	}
	for _, typ := range b.types {
		if typ != "" {
			s.metrics.FrameOut(typ)
		}
	}
	return nil
}

// setDeadline gives the next write between timeout/2 and timeout. The
// deadline in force is kept while it falls in that range: a busy socket
// moves it once per timeout/2, not once per write (each move costs a
// timer update in the runtime's poller).
func (s *socket) setDeadline(timeout time.Duration) {
	now := time.Now()
	if s.deadline.Before(now.Add(timeout/2)) || s.deadline.After(now.Add(timeout)) {
		s.deadline = now.Add(timeout)
		s.nc.SetWriteDeadline(s.deadline)
	}
}

// close writes the queued frames and then the close frame with payload
// (see closePayload), within timeout, and releases the batch. Nothing is
// written after it.
func (s *socket) close(payload []byte, timeout time.Duration) error {
	defer s.release()
	if s.closed {
		return errCloseSent
	}
	if len(payload) > maxControlPayload {
		payload = payload[:maxControlPayload]
	}
	s.batch().add(websocket.CloseMessage, "", payload)
	err := s.flush(timeout)
	s.closed = true
	return err
}

// closePayload is a close frame's payload: the code, then as much of the
// reason as fits. websocket.CloseNoStatusReceived stands for no code.
func closePayload(code int, reason string) []byte {
	if code == websocket.CloseNoStatusReceived {
		return nil
	}
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
	}
	return websocket.FormatCloseMessage(code, reason)
}

// gorillaConn is the network connection as gorilla's Conn sees it. Once
// the connection's writer owns the socket, what gorilla writes itself
// (the close frame it sends when a frame breaks the protocol or the read
// limit) is kept for the writer to send rather than written, and gorilla
// no longer moves the write deadline: only the writer writes.
type gorillaConn struct {
	net.Conn
	mu    sync.Mutex
	owned bool
	// closeFrame is the payload of the first close frame gorilla wrote
	// after the writer took over; nil if none.
	closeFrame []byte
}

// own hands the socket to the connection's writer.
func (g *gorillaConn) own() {
	g.mu.Lock()
	g.owned = true
	g.mu.Unlock()
}

// Write writes during the handshake; afterwards gorilla writes only
// control frames through WriteControl, each in one call: the payload of a
// close frame is kept for the writer, anything else is dropped (pings and
// pongs have handlers of the connection's own).
func (g *gorillaConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.owned {
		return g.Conn.Write(p)
	}
	if len(p) >= 2 && p[0]&0x0f == websocket.CloseMessage && g.closeFrame == nil {
		n := int(p[1] & 0x7f)
		if n <= maxControlPayload && len(p) == 2+n {
			g.closeFrame = append([]byte{}, p[2:]...)
		}
	}
	return len(p), nil
}

// gorillaClose returns the payload of the close frame gorilla asked for,
// if it did.
func (g *gorillaConn) gorillaClose() ([]byte, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closeFrame, g.closeFrame != nil
}

// SetWriteDeadline is the writer's once it owns the socket.
func (g *gorillaConn) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned {
		return nil
	}
	return g.Conn.SetWriteDeadline(t)
}

// SetDeadline moves only the read deadline once the writer owns the
// socket.
func (g *gorillaConn) SetDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned {
		return g.Conn.SetReadDeadline(t)
	}
	return g.Conn.SetDeadline(t)
}

// hijacker hands gorilla's Upgrader a gorillaConn in place of the
// hijacked network connection.
type hijacker struct {
	http.ResponseWriter
	conn *gorillaConn
}

func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &gorillaConn{Conn: nc}
	return w.conn, brw, nil
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *hijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }
