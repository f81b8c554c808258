package ws

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// maxBatch is the most frames one write carries.
const maxBatch = 64

// batch gathers queued frames so that one writev sends them all: under
// load a connection pays one syscall per batch, not one per frame, and the
// payload bytes shared by every subscriber are never copied.
//
// Frames are written straight to the network connection, beside gorilla's
// own control frames (pong, close): each side's frames go out in single
// Write calls, which the net package never interleaves.
type batch struct {
	bufs   net.Buffers
	hdr    []byte // frame headers, 10 bytes each at most
	frames int
	types  []string
}

var batches = sync.Pool{New: func() any {
	return &batch{
		bufs:  make(net.Buffers, 0, 2*maxBatch),
		hdr:   make([]byte, 0, 10*maxBatch),
		types: make([]string, 0, maxBatch),
	}
}}

// add appends one unmasked text frame.
func (b *batch) add(typ string, payload []byte) {
	start := len(b.hdr)
	n := len(payload)
	switch {
	case n < 126:
		b.hdr = append(b.hdr, 0x81, byte(n))
	case n <= 0xffff:
		b.hdr = append(b.hdr, 0x81, 126)
		b.hdr = binary.BigEndian.AppendUint16(b.hdr, uint16(n))
	default:
		b.hdr = append(b.hdr, 0x81, 127)
		b.hdr = binary.BigEndian.AppendUint64(b.hdr, uint64(n))
	}
	b.bufs = append(b.bufs, b.hdr[start:len(b.hdr):len(b.hdr)], payload)
	b.types = append(b.types, typ)
	b.frames++
}

func (b *batch) full() bool { return b.frames >= maxBatch }

func (b *batch) reset() {
	clear(b.bufs[:cap(b.bufs)]) // drop references to payloads
	b.bufs, b.hdr, b.types, b.frames = b.bufs[:0], b.hdr[:0], b.types[:0], 0
}

// writer owns every write to the socket: queued frames, pings, the token
// expiry warning and the final close frame.
func (c *conn) writer() {
	h := c.h
	defer c.ws.Close() // unblocks the reader
	w := &frameWriter{c: c, net: c.ws.NetConn()}

	ping := time.NewTicker(h.opt.PingInterval)
	defer ping.Stop()
	expiry := time.NewTimer(0)
	defer expiry.Stop()
	warned := false
	resetExpiry := func() {
		exp := time.Unix(0, c.expires.Load())
		warned = false
		expiry.Reset(max(exp.Sub(h.opt.Now())-expiryWarning, 0))
	}
	resetExpiry()

	// connection_established goes first, before any timer can fire.
	select {
	case ev := <-c.send:
		w.add(ev)
		if !w.flush(writeWait) {
			c.kill(CloseNormal, "")
			return
		}
	case <-c.quit:
	}

	for {
		select {
		case ev := <-c.send:
			// Take what else is waiting, up to a batch, then write once.
			for {
				switch ev.Type {
				case ctrlRenewed:
					resetExpiry()
				case ctrlRecovered:
					if !c.writeRecovery(ev.ConversationID, w) {
						c.kill(CloseNormal, "")
						return
					}
				default:
					w.add(ev)
				}
				if w.full() || len(c.send) == 0 {
					break
				}
				ev = <-c.send
			}
			if !w.flush(writeWait) {
				c.kill(CloseNormal, "")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.kill(CloseNormal, "")
				return
			}
		case <-expiry.C:
			exp := time.Unix(0, c.expires.Load())
			left := exp.Sub(h.opt.Now())
			if left <= 0 {
				c.kill(CloseUnauthorized, "token expired")
				continue
			}
			if !warned {
				warned = true
				w.add(reply("token_expiring", expiryFrame{Type: "token_expiring", ExpiresAt: chat.Time{Time: exp}}))
				if !w.flush(writeWait) {
					c.kill(CloseNormal, "")
					return
				}
			}
			expiry.Reset(left)
		case <-c.quit:
			if c.closeCode != CloseTooSlow && c.closeCode != CloseNormal {
				// Closed for a reason (1001, 4001, 4029): the client still
				// reads what was queued before, the replies that explain
				// the close among them.
				for n := len(c.send); n > 0; n-- {
					if ev := <-c.send; ev.Type[0] != 0 {
						w.add(ev)
					}
				}
				w.flush(time.Second)
			}
			msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
			if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) == nil {
				select {
				case <-c.readerDone:
				case <-time.After(time.Second):
				}
			}
			return
		}
	}
}

// frameWriter is the writer goroutine's view of the socket.
type frameWriter struct {
	c   *conn
	net net.Conn
	b   *batch // nil when empty
	// lastSent is the newest message id written per conversation; it
	// keeps a recovery replay and live traffic from repeating a message.
	lastSent map[int64]int64
}

// add queues ev for the next flush, unless it is a message this socket has
// already been sent.
func (w *frameWriter) add(ev *hub.Event) {
	if ev.MessageID != 0 && ev.Type == chat.EventNewMessage {
		if w.lastSent == nil {
			w.lastSent = map[int64]int64{}
		}
		if ev.MessageID <= w.lastSent[ev.ConversationID] {
			return
		}
		w.lastSent[ev.ConversationID] = ev.MessageID
	}
	if w.b == nil {
		w.b = batches.Get().(*batch)
	}
	w.b.add(ev.Type, ev.Data)
}

func (w *frameWriter) full() bool { return w.b != nil && w.b.full() }

// flush writes the batch in one writev, within timeout.
func (w *frameWriter) flush(timeout time.Duration) bool {
	b := w.b
	if b == nil {
		return true
	}
	w.b = nil
	defer func() { b.reset(); batches.Put(b) }()
	w.net.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := b.bufs.WriteTo(w.net); err != nil {
		return false
	}
	for _, typ := range b.types {
		w.c.h.opt.Metrics.FrameOut(typ)
	}
	return true
}

// writeRecovery sends a join's replay, its joined reply, then the live
// events held meanwhile, skipping what the replay already sent.
func (c *conn) writeRecovery(convID int64, w *frameWriter) bool {
	c.mu.Lock()
	st := c.joined[convID]
	if st == nil { // left meanwhile
		c.mu.Unlock()
		return true
	}
	replay, jr, held, after := st.replay, st.reply, st.buf, st.after
	st.replay, st.reply, st.buf, st.recovering = nil, nil, nil, false
	c.mu.Unlock()

	if w.lastSent == nil {
		w.lastSent = map[int64]int64{}
	}
	// The client asked for everything after `after`: start from there.
	w.lastSent[convID] = after
	for i := range replay {
		w.add(chat.MessageEvent(&replay[i]))
		if w.full() && !w.flush(writeWait) {
			return false
		}
	}
	if jr != nil {
		w.add(jr)
	}
	for _, ev := range held {
		w.add(ev)
		if w.full() && !w.flush(writeWait) {
			return false
		}
	}
	return w.flush(writeWait)
}
