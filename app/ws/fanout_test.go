package ws_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/ws"
)

// BenchmarkFanout publishes one event at a time to a conversation that
// 100 real sockets have joined, and waits until every socket has read it:
// the whole live path of one delivery (the hub, Deliver, the queue, the
// writer goroutine, its write, and the client's read), with no batching
// across events. The clients read raw frames, so that their cost stays
// small and the same from one version of the server to the next.
func BenchmarkFanout(b *testing.B) {
	const subs = 100
	s := servertest.Start(b)
	owner := s.Register(b, "owner")
	member := s.Register(b, "member")
	conv := s.Conversation(b, owner, member)

	// Each reader reports every frame it reads on got.
	got := make(chan struct{}, subs)
	for range subs {
		conn, _, err := dialRaw(b, s.WSURL("/ws/chat/")+"?token="+member.Access, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		if _, _, err := conn.ReadMessage(); err != nil { // connection_established
			b.Fatal(err)
		}
		if err := conn.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": conv}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil { // joined
			b.Fatal(err)
		}
		go func() {
			for {
				if _, _, err := conn.NextReader(); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
	}
	// A frame of a message's usual size. It has no Seq, so the hub
	// delivers it as it comes, with no store in the way.
	ev := &hub.Event{Type: "message_updated", ConversationID: conv, Data: []byte(fmt.Sprintf(
		`{"type":"message_updated","message":{"id":1,"conversation_id":%d,"sender":{"id":%d,"username":"%s"},`+
			`"content":"a message of about the usual length, sixty-four characters","client_id":null,`+
			`"created_at":"2026-03-01T12:00:00.000000Z","edited_at":null,"seq":1}}`, conv, owner.ID, owner.Username))}
	topic := hub.ConversationTopic(conv)

	timeout := time.NewTimer(time.Hour)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		s.Hub.Publish(topic, ev)
		timeout.Reset(10 * time.Second)
		for range subs {
			select {
			case <-got:
			case <-timeout.C:
				b.Fatal("a delivery did not arrive")
			}
		}
		timeout.Stop()
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*subs), "ns/delivery")
}

// TestFanout_AllocatesNothingPerDelivery holds the live path of a
// delivery (the hub, Deliver, the queue, the writer and its write) at
// zero allocations once a socket has received an event before. The
// clients read raw bytes into a buffer of their own, so that only the
// server's allocations count.
func TestFanout_AllocatesNothingPerDelivery(t *testing.T) {
	const subs = 10
	// On the in-process hub even when the suite runs as a cluster node:
	// publishing through Redis costs allocations per publish (the
	// command, the encoded event), not per delivery, and this test is
	// about the deliveries.
	s := servertest.Start(t, servertest.OnSQLite())
	owner := s.Register(t, "owner")
	member := s.Register(t, "member")
	conv := s.Conversation(t, owner, member)
	payload := []byte(`{"type":"message_updated","message":{"id":1}}`)
	ev := &hub.Event{Type: "message_updated", ConversationID: conv, Data: payload}
	frame := append([]byte{0x81, byte(len(payload))}, payload...)

	done := make(chan error, subs)
	for range subs {
		conn, _, err := dialRaw(t, s.WSURL("/ws/chat/")+"?token="+member.Access, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, _, err := conn.ReadMessage(); err != nil { // connection_established
			t.Fatal(err)
		}
		if err := conn.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": conv}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil { // joined
			t.Fatal(err)
		}
		// Nothing else is on its way: from here on the frames are read
		// off the network connection itself.
		nc := conn.UnderlyingConn()
		go func() {
			buf := make([]byte, len(frame))
			for {
				if _, err := io.ReadFull(nc, buf); err != nil {
					return
				}
				if !bytes.Equal(buf, frame) {
					done <- fmt.Errorf("read %q, want %q", buf, frame)
					return
				}
				done <- nil
			}
		}()
	}
	topic := hub.ConversationTopic(conv)
	timeout := time.NewTimer(time.Hour)
	await := func() {
		timeout.Reset(waitFor)
		for range subs {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-timeout.C:
				t.Fatal("a delivery did not arrive")
			}
		}
		timeout.Stop()
	}
	publish := func() {
		s.Hub.Publish(topic, ev)
		await()
	}
	publish() // each socket's first event may allocate its queue

	// The writers take their batches from a sync.Pool, which may miss
	// (under the race detector it drops a quarter of what is put back, on
	// purpose): a miss costs one new batch, reused afterwards, and is
	// counted apart. Whatever else allocates on every delivery shows as at
	// least one allocation per socket per publish in every round; a
	// busy machine's runtime and test goroutines allocate now and then,
	// so the quietest round is the one judged.
	perBatch := testing.AllocsPerRun(10, func() { ws.NewBatch() })
	const rounds, runs = 5, 100
	least := math.Inf(1)
	var misses int64
	for range rounds {
		var before, after runtime.MemStats
		made := ws.BatchesMade()
		runtime.ReadMemStats(&before)
		for range runs {
			publish()
		}
		runtime.ReadMemStats(&after)
		missed := ws.BatchesMade() - made
		misses += missed
		allocs := (float64(after.Mallocs-before.Mallocs) - float64(missed)*perBatch) / runs
		least = min(least, allocs)
	}
	if least >= subs/2 {
		t.Fatalf("%.1f allocations per publish to %d sockets besides pool misses in the quietest of %d rounds, want none", least, subs, rounds)
	}
	t.Logf("%.2f allocations per publish to %d sockets in the quietest of %d rounds of %d; %d pool misses in all", least, subs, rounds, runs, misses)
}

// TestWriteDelay_BackToBackEventsShareAWrite: with WS_WRITE_DELAY, an
// event that follows another within the delay reaches the client in the
// same write, not in a second one.
func TestWriteDelay_BackToBackEventsShareAWrite(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.WSWriteDelay = 100 * time.Millisecond }))
	owner := s.Register(t, "owner")
	member := s.Register(t, "member")
	conv := s.Conversation(t, owner, member)
	conn, _, err := dialRaw(t, s.WSURL("/ws/chat/")+"?token="+member.Access, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := conn.ReadMessage(); err != nil { // connection_established
		t.Fatal(err)
	}
	if err := conn.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": conv}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil { // joined
		t.Fatal(err)
	}

	first := []byte(`{"type":"message_updated","message":{"id":1}}`)
	second := []byte(`{"type":"message_updated","message":{"id":2}}`)
	topic := hub.ConversationTopic(conv)
	s.Hub.Publish(topic, &hub.Event{Type: "message_updated", ConversationID: conv, Data: first})
	time.Sleep(20 * time.Millisecond) // long enough for a write made at once
	s.Hub.Publish(topic, &hub.Event{Type: "message_updated", ConversationID: conv, Data: second})

	nc := conn.UnderlyingConn()
	nc.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 4096)
	n, err := nc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{0x81, byte(len(first))}, first...), append([]byte{0x81, byte(len(second))}, second...)...)
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("first read %q, want both frames %q", buf[:n], want)
	}
}
