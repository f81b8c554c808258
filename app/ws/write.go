package ws

import (
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// keepQueue is the largest queue buffer a connection keeps while no
// writer runs (8 bytes an event).
const keepQueue = 16

// writeLoop is the connection's writer while its queue has frames: it
// takes everything queued, writes it in batches, and ends when the queue
// is empty (the next frame starts a new one). The close frame ends it for
// good. With a WriteDelay it waits that long before each write, so that
// events arriving back to back share it.
func (c *conn) writeLoop() {
	delay := c.h.opt.WriteDelay
	if delay > 0 {
		time.Sleep(delay)
	}
	c.qmu.Lock()
	for {
		q := c.queue
		if len(q) == 0 {
			// Short buffers stay for the next writer, so that a socket
			// receiving one event at a time queues it with no
			// allocation, even when it arrives while the previous one
			// is being written (it goes into the spare); long ones go,
			// so that a socket idle after a burst does not keep them.
			spare := c.spare
			if cap(q) == 0 {
				q, spare = spare, nil
			}
			if cap(q) > keepQueue {
				q = nil
			}
			if cap(spare) > keepQueue {
				spare = nil
			}
			// The next writer may start as soon as writing is false.
			c.fw.s.release()
			c.queue, c.spare, c.writing = q, spare, false
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
		if delay > 0 && len(c.queue) > 0 {
			c.qmu.Unlock()
			time.Sleep(delay)
			c.qmu.Lock()
		}
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
			w.s.control(websocket.PingMessage, nil)
		case ctrlPong:
			w.s.control(websocket.PongMessage, ev.Data)
		case ctrlExpiry:
			c.onExpiry(w)
		case ctrlRecovered:
			c.writeRecovery(ev.ConversationID, w)
		default:
			if isClosed(c.quit) && c.closeCode == CloseTooSlow {
				continue // dropped: the queue overflowed
			}
			w.add(ev)
		}
		w.flushIfFull()
	}
	w.flush()
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
		w.s.flush(time.Second)
	} else {
		w.s.discard()
	}
	// A close gorilla asked for (the answer to the peer's close, or a
	// protocol error or an oversized frame) says why better than ours.
	payload, ok := c.gc.gorillaClose()
	if !ok {
		payload = closePayload(c.closeCode, c.closeReason)
	}
	if w.s.close(payload, time.Second) == nil {
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

// frameWriter is the writer's view of the connection: the socket, and
// what it has sent.
type frameWriter struct {
	c *conn
	s socket
	// lastSent is, per conversation, what this socket was last sent: the
	// newest message id (a recovery replay and live traffic never repeat
	// a message), and the newest version (a change at or below it is
	// already reflected: a since_version replay sent the current state).
	lastSent map[int64]sentMark
}

type sentMark struct{ id, version int64 }

// add queues ev for the next flush, unless it is a message this socket has
// already been sent or a change it already reflects.
func (w *frameWriter) add(ev *hub.Event) {
	if ev.Version != 0 || (ev.MessageID != 0 && ev.Type == chat.EventNewMessage) {
		if w.lastSent == nil {
			w.lastSent = map[int64]sentMark{}
		}
		mark := w.lastSent[ev.ConversationID]
		if ev.Version != 0 && ev.Version <= mark.version {
			return
		}
		if ev.Type == chat.EventNewMessage {
			if ev.MessageID <= mark.id {
				return
			}
			mark.id = ev.MessageID
		}
		mark.version = max(mark.version, ev.Version)
		w.lastSent[ev.ConversationID] = mark
	}
	w.s.text(ev.Type, ev.Data)
}

// flushIfFull writes a full batch.
func (w *frameWriter) flushIfFull() {
	if w.s.full() {
		w.flush()
	}
}

// flush writes the batch; a socket that cannot take it within writeWait
// is closed.
func (w *frameWriter) flush() {
	if err := w.s.flush(writeWait); err != nil {
		w.c.kill(CloseNormal, "")
	}
}
