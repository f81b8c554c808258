package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/confab/confab/app/chat"
)

// BenchInsertMessages is the group commit alone: batches of 32 messages
// over 4 conversations from 8 goroutines, spread over nodes (Stores on one
// database; one is enough). One op is one stored message.
func BenchInsertMessages(b *testing.B, nodes ...chat.Store) {
	ctx := context.Background()
	const convs, batch = 4, 32
	users := make([]chat.User, 8)
	for i := range users {
		users[i] = mustUser(b, nodes[0], fmt.Sprint("user", i))
	}
	var conv [convs]int64
	for i := range conv {
		conv[i] = mustConversation(b, nodes[0], true, users...)
	}
	var next atomic.Int64
	b.SetParallelism(4) // 8 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(next.Add(1) - 1)
		node, u := nodes[w%len(nodes)], users[w%len(users)]
		msgs := make([]chat.NewMessage, 0, batch)
		flush := func() {
			if _, err := node.InsertMessages(ctx, msgs); err != nil {
				b.Error(err)
			}
			msgs = msgs[:0]
		}
		for i := 0; pb.Next(); i++ {
			msgs = append(msgs, chat.NewMessage{ConversationID: conv[i%convs], Sender: chat.UserLite{ID: u.ID},
				Content: "a benchmark message of ordinary length, about sixty bytes", At: t0})
			if len(msgs) == batch {
				flush()
			}
		}
		if len(msgs) > 0 {
			flush()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchConversations lists the conversations of a user who is in 50
// groups of 5, each with a message from every member. One op is one
// listing.
func BenchConversations(b *testing.B, s chat.Store) {
	ctx := context.Background()
	users := make([]chat.User, 5)
	for i := range users {
		users[i] = mustUser(b, s, fmt.Sprint("user", i))
	}
	for range 50 {
		conv := mustConversation(b, s, true, users...)
		for _, u := range users {
			mustSend(b, s, u, conv, "hello")
		}
	}
	b.ResetTimer()
	for b.Loop() {
		cs, err := s.Conversations(ctx, users[0].ID, chat.Position{}, 50)
		if err != nil || len(cs) != 50 {
			b.Fatalf("%d conversations, %v", len(cs), err)
		}
	}
}
