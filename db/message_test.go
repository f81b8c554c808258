package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// BenchmarkInsertMessages_Writer is the group commit as the service's
// writer runs it: one goroutine, batches of 16 messages from 16 senders,
// each in a direct conversation of its own, every batch under a commit
// deadline (a context that can end), with client ids. One op is one
// stored message; ns/op includes the batch's fsync (synchronous=FULL)
// shared by its 16 messages.
func BenchmarkInsertMessages_Writer(b *testing.B) {
	s, _ := mustOpenDB(b)
	const senders = 16
	sink := mustUser(b, s, "sink")
	type sender struct {
		u    chat.UserLite
		conv int64
	}
	var from [senders]sender
	for i := range from {
		u := mustUser(b, s, fmt.Sprint("sender", i))
		from[i] = sender{u.Lite(), mustConversation(b, s, u, sink)}
	}
	batch := make([]chat.NewMessage, 0, senders)
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := s.InsertMessages(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if !r.Created {
				b.Fatalf("not stored: %v", r.Err)
			}
		}
		batch = batch[:0]
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		f := from[i%senders]
		batch = append(batch, chat.NewMessage{ConversationID: f.conv, Sender: f.u,
			Content: "a benchmark message of ordinary length, about sixty bytes", ClientID: fmt.Sprint("c", i), At: t0})
		if len(batch) == senders {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
