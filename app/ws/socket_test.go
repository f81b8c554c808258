package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// handshake answers a client's WebSocket handshake on nc, as a server.
func handshake(nc net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(nc))
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	return err
}

// socketPair returns the server end of a WebSocket connection, as the
// network connection a socket writes to, and a gorilla client reading it.
// Over TCP the writes are real writevs; over net.Pipe they are in memory.
func socketPair(tb testing.TB, tcp bool) (net.Conn, *websocket.Conn) {
	tb.Helper()
	var cn, sn net.Conn
	if tcp {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- nc
		}()
		if cn, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			tb.Fatal(err)
		}
		if sn = <-accepted; sn == nil {
			tb.Fatal("accept failed")
		}
	} else {
		cn, sn = net.Pipe()
	}
	done := make(chan error, 1)
	go func() { done <- handshake(sn) }()
	d := websocket.Dialer{
		NetDialContext:   func(context.Context, string, string) (net.Conn, error) { return cn, nil },
		HandshakeTimeout: 5 * time.Second,
	}
	client, _, err := d.Dial("ws://socket.test/", nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close(); sn.Close() })
	return sn, client
}

// received is what a gorilla client read, in order: data frames as
// "text:<payload>", pings and pongs as "ping:<payload>"/"pong:<payload>",
// and the close as "close:<code>:<reason>".
func readAll(client *websocket.Conn) ([]string, error) {
	var got []string
	client.SetPingHandler(func(s string) error { got = append(got, "ping:"+s); return nil })
	client.SetPongHandler(func(s string) error { got = append(got, "pong:"+s); return nil })
	client.SetCloseHandler(func(code int, text string) error { return nil })
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		mt, data, err := client.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return append(got, fmt.Sprintf("close:%d:%s", ce.Code, ce.Text)), nil
		case err != nil:
			return got, err
		case mt != websocket.TextMessage:
			return got, fmt.Errorf("message type %d", mt)
		}
		got = append(got, "text:"+string(data))
	}
}

// readInto runs readAll in a goroutine; the result arrives on the channel.
func readInto(client *websocket.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		got, err := readAll(client)
		ch <- readResult{got, err}
	}()
	return ch
}

type readResult struct {
	got []string
	err error
}

type countingMetrics struct {
	nopMetrics
	out map[string]int
}

func (m *countingMetrics) FrameOut(typ string) { m.out[typ]++ }

func TestSocket_FramesOfEveryLength(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			nc, client := socketPair(t, true)
			result := readInto(client)
			m := &countingMetrics{out: map[string]int{}}
			s := socket{nc: nc, metrics: m}
			payload := bytes.Repeat([]byte("x"), n)
			s.text("new_message", payload)
			s.text("typing", []byte("after"))
			if err := s.flush(time.Second); err != nil {
				t.Fatal(err)
			}
			if err := s.close(closePayload(CloseNormal, "bye"), time.Second); err != nil {
				t.Fatal(err)
			}
			r := <-result
			want := []string{"text:" + string(payload), "text:after", "close:1000:bye"}
			if r.err != nil || !equal(r.got, want) {
				t.Fatalf("client read %q (err %v), want %d-byte text, text, close", short(r.got), r.err, n)
			}
			if m.out["new_message"] != 1 || m.out["typing"] != 1 || len(m.out) != 2 {
				t.Fatalf("frames counted %v, want one new_message and one typing", m.out)
			}
		})
	}
}

func TestSocket_ControlFramesKeepTheirPlaceInABatch(t *testing.T) {
	nc, client := socketPair(t, true)
	result := readInto(client)
	s := socket{nc: nc, metrics: nopMetrics{}}
	s.text("a", []byte("1"))
	s.control(websocket.PingMessage, nil)
	s.text("a", []byte("2"))
	s.control(websocket.PongMessage, []byte("peer's ping"))
	s.control(websocket.PingMessage, bytes.Repeat([]byte("p"), 300)) // cut to 125
	s.text("a", []byte("3"))
	if err := s.flush(time.Second); err != nil {
		t.Fatal(err)
	}
	s.close(closePayload(4008, "too slow"), time.Second)
	r := <-result
	want := []string{"text:1", "ping:", "text:2", "pong:peer's ping", "ping:" + strings.Repeat("p", 125), "text:3", "close:4008:too slow"}
	if r.err != nil || !equal(r.got, want) {
		t.Fatalf("client read %q (err %v), want %q", r.got, r.err, want)
	}
}

func TestSocket_CloseDuringABatch(t *testing.T) {
	nc, client := socketPair(t, true)
	result := readInto(client)
	s := socket{nc: nc, metrics: nopMetrics{}}
	for i := range maxBatch - 1 {
		s.text("a", []byte(fmt.Sprint(i)))
	}
	if s.full() {
		t.Fatal("full one frame early")
	}
	s.text("a", []byte("last"))
	if !s.full() {
		t.Fatal("not full at maxBatch frames")
	}
	// The close goes out behind the queued frames, in the same write.
	if err := s.close(closePayload(CloseGoingAway, strings.Repeat("r", 200)), time.Second); err != nil {
		t.Fatal(err)
	}
	s.text("a", []byte("after the close"))
	if err := s.flush(time.Second); !errors.Is(err, errCloseSent) {
		t.Fatalf("flush after close = %v, want errCloseSent", err)
	}
	if err := s.close(closePayload(CloseNormal, ""), time.Second); !errors.Is(err, errCloseSent) {
		t.Fatalf("second close = %v, want errCloseSent", err)
	}
	r := <-result
	if r.err != nil || len(r.got) != maxBatch+1 || r.got[maxBatch-1] != "text:last" ||
		r.got[maxBatch] != "close:1001:"+strings.Repeat("r", 123) {
		t.Fatalf("client read %q (err %v)", short(r.got), r.err)
	}
}

func TestSocket_DiscardWritesNothing(t *testing.T) {
	nc, client := socketPair(t, true)
	result := readInto(client)
	s := socket{nc: nc, metrics: nopMetrics{}}
	s.text("a", []byte("dropped"))
	s.discard()
	s.close(closePayload(websocket.CloseNoStatusReceived, ""), time.Second)
	r := <-result
	if want := []string{"close:1005:"}; r.err != nil || !equal(r.got, want) {
		t.Fatalf("client read %q (err %v), want %q", r.got, r.err, want)
	}
}

func TestSocket_FailedWriteClosesIt(t *testing.T) {
	nc, client := socketPair(t, false)
	client.Close() // a pipe whose reader is gone fails every write
	s := socket{nc: nc, metrics: nopMetrics{}}
	s.text("a", []byte("x"))
	if err := s.flush(time.Second); err == nil {
		t.Fatal("flush to a closed peer succeeded")
	}
	s.text("a", []byte("y"))
	if err := s.flush(time.Second); !errors.Is(err, errCloseSent) {
		t.Fatalf("flush after a failed write = %v, want errCloseSent", err)
	}
}

func TestSocket_WriteDeadline(t *testing.T) {
	nc, _ := socketPair(t, false) // nobody reads the pipe
	s := socket{nc: nc, metrics: nopMetrics{}}
	s.text("a", []byte("x"))
	start := time.Now()
	if err := s.flush(20 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("flush with no reader = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("flush took %v", d)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestGorillaConn_KeepsItsCloseFrameForTheWriter: once owned, what
// gorilla writes itself (its close frame on a protocol error or an
// oversized frame) does not reach the network; the writer sends it.
func TestGorillaConn_KeepsItsCloseFrameForTheWriter(t *testing.T) {
	nc, client := socketPair(t, false)
	gc := &gorillaConn{Conn: nc}
	gc.own()
	if err := gc.SetWriteDeadline(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0x88, 2}, closePayload(CloseTooBig, "")...)
	if n, err := gc.Write(frame); n != len(frame) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	gc.Write([]byte{0x88, 2, 0x03, 0xe8}) // only the first counts
	payload, ok := gc.gorillaClose()
	if !ok || !bytes.Equal(payload, closePayload(CloseTooBig, "")) {
		t.Fatalf("kept close %x, %v", payload, ok)
	}
	result := readInto(client)
	s := socket{nc: nc, metrics: nopMetrics{}} // the deadline gorilla set did not reach nc
	if err := s.close(payload, time.Second); err != nil {
		t.Fatal(err)
	}
	if r := <-result; r.err != nil || !equal(r.got, []string{"close:1009:"}) {
		t.Fatalf("client read %q (err %v)", r.got, r.err)
	}
}

// FuzzSocketBatch writes an arbitrary sequence of data and control frames
// of every length class, flushes and a close, and reads them back with
// gorilla's client: every frame arrives whole and in order, and nothing
// after the close.
func FuzzSocketBatch(f *testing.F) {
	f.Add([]byte{0, 5, 1, 0, 2, 3, 0, 200, 4})
	f.Add([]byte{0, 0, 0, 125, 0, 126, 5, 255, 255, 0, 255, 1})
	f.Add([]byte{6, 0, 1, 7})
	f.Add(bytes.Repeat([]byte{0, 70}, 70))
	f.Add([]byte{1, 2, 1, 2, 3, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 512 {
			ops = ops[:512]
		}
		nc, client := socketPair(t, false)
		result := readInto(client)
		s := socket{nc: nc, metrics: nopMetrics{}}
		var want []string
		closed := false
		// Each op is a byte; data frames take one more for their length
		// class and size.
		for i := 0; i < len(ops) && !closed; i++ {
			arg := 0
			if i+1 < len(ops) {
				arg = int(ops[i+1])
			}
			switch ops[i] % 8 {
			case 0, 5: // data frame: ≤125, ≤65535 or larger
				i++
				n := arg % 126
				if ops[i-1]%8 == 5 {
					n = []int{126 + arg*250, 65535, 65536 + arg*100}[arg%3]
				}
				p := bytes.Repeat([]byte{byte('a' + len(want)%26)}, n)
				s.text("t", p)
				want = append(want, "text:"+string(p))
			case 1:
				s.control(websocket.PingMessage, []byte(fmt.Sprint(len(want))))
				want = append(want, fmt.Sprintf("ping:%d", len(want)))
			case 2:
				s.control(websocket.PongMessage, []byte(fmt.Sprint(len(want))))
				want = append(want, fmt.Sprintf("pong:%d", len(want)))
			case 3, 6:
				if err := s.flush(5 * time.Second); err != nil {
					t.Fatal(err)
				}
			case 4, 7:
				reason := strings.Repeat("r", arg%200)
				if err := s.close(closePayload(4000+arg, reason), 5*time.Second); err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("close:%d:%s", 4000+arg, reason[:min(len(reason), 123)]))
				closed = true
			}
			if s.full() {
				if err := s.flush(5 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !closed {
			s.close(closePayload(CloseNormal, ""), 5*time.Second)
			want = append(want, "close:1000:")
		}
		s.text("t", []byte("never"))
		if err := s.flush(time.Second); !errors.Is(err, errCloseSent) {
			t.Fatalf("flush after close = %v", err)
		}
		r := <-result
		if r.err != nil || !equal(r.got, want) {
			t.Fatalf("client read %q (err %v), want %q", short(r.got), r.err, short(want))
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// short abbreviates long frames for a failure message.
func short(frames []string) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		if len(f) > 40 {
			f = fmt.Sprintf("%s…(%d bytes)", f[:20], len(f))
		}
		out[i] = f
	}
	return out
}

// upgradedPair returns a connection upgraded by gorilla's Upgrader (and
// the network connection under it) whose client discards everything it
// receives.
func upgradedPair(b *testing.B) (*websocket.Conn, net.Conn) {
	type pair struct {
		ws *websocket.Conn
		nc net.Conn
	}
	ch := make(chan pair, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &hijacker{ResponseWriter: w}
		ws, err := (&websocket.Upgrader{}).Upgrade(hw, r, nil)
		if err != nil {
			close(ch)
			return
		}
		ch <- pair{ws, hw.conn.Conn}
	}))
	b.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	p, ok := <-ch
	if !ok {
		b.Fatal("upgrade failed")
	}
	b.Cleanup(func() { p.ws.Close() })
	go io.Copy(io.Discard, client.UnderlyingConn())
	return p.ws, p.nc
}

var benchPayload = bytes.Repeat([]byte(`{"type":"new_message","message":{"content":"x"}}`), 4)

// BenchmarkSocketBatch is the connection's writer under fan-out: batches
// of 16 shared payloads, one writev each.
func BenchmarkSocketBatch(b *testing.B) {
	_, nc := upgradedPair(b)
	s := socket{nc: nc, metrics: nopMetrics{}}
	b.ReportAllocs()
	b.SetBytes(int64(16 * len(benchPayload)))
	for b.Loop() {
		for range 16 {
			s.text("new_message", benchPayload)
		}
		if err := s.flush(writeWait); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGorillaPrepared is the same fan-out through gorilla's own
// writer: one PreparedMessage shared by all, written frame by frame.
func BenchmarkGorillaPrepared(b *testing.B) {
	ws, _ := upgradedPair(b)
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, benchPayload)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(16 * len(benchPayload)))
	for b.Loop() {
		for range 16 {
			ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := ws.WritePreparedMessage(pm); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestSocket_BatchAllocatesNothing holds the fan-out write path at zero
// allocations: batches come from a pool and payloads are not copied.
func TestSocket_BatchAllocatesNothing(t *testing.T) {
	nc, client := socketPair(t, true)
	go io.Copy(io.Discard, client.UnderlyingConn())
	s := socket{nc: nc, metrics: nopMetrics{}}
	allocs := testing.AllocsPerRun(200, func() {
		for range 16 {
			s.text("new_message", benchPayload)
		}
		s.control(websocket.PingMessage, nil)
		if err := s.flush(writeWait); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per batch, want 0", allocs)
	}
}
