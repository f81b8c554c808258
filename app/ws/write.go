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

// writeLoop is the connection's writer while its queue has frames: it
// takes everything queued, writes it in batches, and ends when the queue
// is empty (the next frame starts a new one). The close frame ends it for
// good.
func (c *conn) writeLoop() {
	for {
		c.qmu.Lock()
		q := c.queue
		if len(q) == 0 {
			c.queue, c.spare, c.writing = nil, nil, false
			c.qmu.Unlock()
			return
		}
		c.queue, c.spare = c.spare, nil
		c.qmu.Unlock()

		if done := c.writeQueued(q); done {
			return
		}
		clear(q)
		c.qmu.Lock()
		c.spare = q[:0]
		c.qmu.Unlock()
	}
}

// writeQueued writes one taken queue; it returns true once the socket is
// closed.
func (c *conn) writeQueued(q []*hub.Event) bool {
	w := &c.fw
	for _, ev := range q {
		switch ev.Type {
		case ctrlClose:
			c.finish(w)
			return true
		case ctrlPing:
			if !w.flush(writeWait) || c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
				c.kill(CloseNormal, "")
			}
		case ctrlExpiry:
			c.onExpiry(w)
		case ctrlRecovered:
			if !c.writeRecovery(ev.ConversationID, w) {
				c.kill(CloseNormal, "")
			}
		default:
			if isClosed(c.quit) && c.closeCode == CloseTooSlow {
				continue // dropped: the queue overflowed
			}
			w.add(ev)
			if w.full() && !w.flush(writeWait) {
				c.kill(CloseNormal, "")
			}
		}
	}
	if !w.flush(writeWait) {
		c.kill(CloseNormal, "")
	}
	return false
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// onExpiry warns once that the token in force is about to expire, and
// closes the socket with 4001 when it has.
func (c *conn) onExpiry(w *frameWriter) {
	exp := time.Unix(0, c.expires.Load())
	left := exp.Sub(c.h.opt.Now())
	if left <= 0 {
		c.kill(CloseUnauthorized, "token expired")
		return
	}
	if d := c.untilWarning(); d > 0 { // renewed meanwhile
		c.expiry.Reset(d)
		return
	}
	if !c.warned.Swap(true) {
		w.add(reply("token_expiring", expiryFrame{Type: "token_expiring", ExpiresAt: chat.Time{Time: exp}}))
	}
	c.expiry.Reset(left)
}

// finish writes what is still queued ahead of the close (unless the queue
// overflowed), the close frame, waits briefly for the peer's answer, and
// closes the socket. No writer starts after it.
func (c *conn) finish(w *frameWriter) {
	if c.closeCode != CloseTooSlow && c.closeCode != CloseNormal {
		// Closed for a reason (1001, 4001, 4029): the client still reads
		// what was sent before, the replies that explain the close
		// among them.
		w.flush(time.Second)
	} else {
		w.discard()
	}
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
	if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) == nil {
		select {
		case <-c.readerDone:
		case <-time.After(time.Second):
		}
	}
	c.ws.Close() // unblocks the reader
	c.qmu.Lock()
	c.queue, c.spare = nil, nil // writing stays true: nothing more is written
	c.qmu.Unlock()
	close(c.closed)
}

// frameWriter is the writer's view of the socket.
type frameWriter struct {
	c *conn
	b *batch // nil when empty
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

// discard drops the batch unwritten.
func (w *frameWriter) discard() {
	if w.b != nil {
		w.b.reset()
		batches.Put(w.b)
		w.b = nil
	}
}

// flush writes the batch in one writev, within timeout.
func (w *frameWriter) flush(timeout time.Duration) bool {
	b := w.b
	if b == nil {
		return true
	}
	w.b = nil
	defer func() { b.reset(); batches.Put(b) }()
	nc := w.c.ws.NetConn()
	nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := b.bufs.WriteTo(nc); err != nil {
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
