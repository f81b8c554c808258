package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// frames is a hub.Subscriber that keeps the data of every event.
type frames struct {
	mu  sync.Mutex
	got [][]byte
}

func (f *frames) Deliver(_ hub.Topic, ev *hub.Event) {
	f.mu.Lock()
	f.got = append(f.got, ev.Data)
	f.mu.Unlock()
}

func (f *frames) last(t *testing.T) []byte {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("no event")
	}
	return f.got[len(f.got)-1]
}

// TestSend_EncodedAsHistoryShowsIt: the answer to a send, its new_message
// event and the recipient's notification carry exactly the bytes that
// encoding/json gives for the message as history returns it, whatever
// the content and the sender's name hold (quotes, HTML, control and
// line-separator characters, non-ASCII), with a client_id and without,
// and for a repeated client_id.
func TestSend_EncodedAsHistoryShowsIt(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	u, err := f.store.CreateUser(ctx, "tricky", "Ann \"<b>&</b>\" \\ \u2028 é", "hash", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sender, recipient := u.Lite(), f.users[0]
	c, _, err := f.svc.CreateConversation(ctx, sender.ID, []int64{recipient.ID}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	conv, notes := &frames{}, &frames{}
	f.hub.Subscribe(hub.ConversationTopic(c.ID), conv)
	f.hub.Subscribe(hub.UserTopic(recipient.ID), notes)

	type event struct {
		Type           string           `json:"type"`
		ConversationID int64            `json:"conversation_id"`
		Reason         string           `json:"reason,omitempty"`
		Message        *json.RawMessage `json:"message"`
	}
	wantEvent := func(typ, reason string, msg []byte) []byte {
		raw := json.RawMessage(msg)
		b, err := json.Marshal(event{typ, c.ID, reason, &raw})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var prev int64 // the message sent last, for a reply
	for _, tc := range []struct {
		name, content, clientID string
		reply                   bool
		reason                  string
	}{
		{"plain", "hello", "", false, chat.ReasonMessage},
		{"quotes and html", `say "hi" <script>alert(1)</script> & \ done`, "cid-1", false, chat.ReasonMessage},
		{"control characters", "tab\there\nnew line \x01 \x7f \u2028 \u2029 end", "", false, chat.ReasonMessage},
		{"non-ascii", "héllo wörld 🎉 日本語", "ünïcode-id", false, chat.ReasonMessage},
		{"trimmed", "  spaced out \n", "cid-2", false, chat.ReasonMessage},
		{"reply", "quoting you", "", true, chat.ReasonMessage},
		{"reply with client id", "quoting again", "cid-3", true, chat.ReasonMessage},
		{"mention", "hi @USER0, and @nobody", "cid-4", false, chat.ReasonMention},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var replyTo int64
			if tc.reply {
				replyTo = prev
			}
			s, err := f.svc.Send(ctx, sender, c.ID, tc.content, tc.clientID, replyTo)
			if err != nil || !s.Created {
				t.Fatalf("send: %+v %v", s, err)
			}
			prev = s.Message.ID
			if tc.reply && (s.Message.ReplyTo == nil || s.Message.ReplyTo.ID != replyTo) {
				t.Errorf("reply_to = %+v, want message %d", s.Message.ReplyTo, replyTo)
			}
			page, err := f.svc.Messages(ctx, recipient.ID, c.ID, chat.PageQuery{Limit: 1})
			if err != nil || len(page.Results) != 1 {
				t.Fatalf("history: %+v %v", page, err)
			}
			want, err := json.Marshal(page.Results[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.JSON, want) {
				t.Errorf("answer\n %s\nhistory\n %s", s.JSON, want)
			}
			if got := conv.last(t); !bytes.Equal(got, wantEvent(chat.EventNewMessage, "", want)) {
				t.Errorf("new_message\n %s\nwant\n %s", got, wantEvent(chat.EventNewMessage, "", want))
			}
			if got := notes.last(t); !bytes.Equal(got, wantEvent(chat.EventNotification, tc.reason, want)) {
				t.Errorf("notification\n %s\nwant\n %s", got, wantEvent(chat.EventNotification, tc.reason, want))
			}
			if tc.clientID == "" {
				return
			}
			again, err := f.svc.Send(ctx, sender, c.ID, "a retry's content is not stored", tc.clientID, 0)
			if err != nil || again.Created || !bytes.Equal(again.JSON, want) {
				t.Errorf("retry: created %v, %s %v; want %s", again.Created, again.JSON, err, want)
			}
		})
	}
}
