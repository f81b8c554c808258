package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db"
)

// BenchmarkInsertMessages_Writer is the group commit as the service's
// writer runs it: one goroutine, batches of 16 messages from 16 senders,
// each in a direct conversation of its own, every batch under a commit
// deadline (a context that can end), with client ids. One op is one
// stored message; ns/op includes the batch's fsync (synchronous=FULL)
// shared by its 16 messages. cpu-ns/op is the process's CPU: the search
// indexer's too, as far as it got while the loop ran; cpu-indexed-ns/op
// adds the rest of the indexing.
func BenchmarkInsertMessages_Writer(b *testing.B) { benchWriter(b, false) }

// BenchmarkInsertMessages_WriterIndexHeld is BenchmarkInsertMessages_Writer
// with the background search indexer held: cpu-ns/op is the send path
// alone, and cpu-indexed-ns/op adds the indexing of every message after
// the loop, in batches.
func BenchmarkInsertMessages_WriterIndexHeld(b *testing.B) { benchWriter(b, true) }

func benchWriter(b *testing.B, holdIndex bool) {
	s, _ := mustOpenDB(b)
	if holdIndex {
		db.HoldSearchIndexer(s)
	}
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
	b.StopTimer()
	cpu1 := cpuTime(b)
	b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	// The search index follows in its own transactions (see
	// db/searchindex.go), partly while the loop ran (in cpu-ns/op, as
	// the process's CPU): a search indexes what is left, so that this
	// one counts every message indexed too.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: sink.ID, Terms: []string{"benchmark"}, Limit: 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-indexed-ns/op")
}
