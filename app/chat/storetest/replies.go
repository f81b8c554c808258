package storetest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// testReplies: a reply stores its original's id and shows a preview of
// it (at most chat.MaxPreview code points) in every read: the insert's
// answer, history, by seq, by id, the conversation's last message;
// empty and is_deleted once the original is deleted. A reply to a
// message of another conversation, or to none, is refused with
// ErrReplyTo, without a hole in seq and without failing the rest of the
// batch.
func testReplies(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "cy")
	conv := mustConversation(t, s, true, a, b)
	other := mustConversation(t, s, true, a, c)
	long := strings.Repeat("é", chat.MaxPreview) + "-cut"
	orig := mustSend(t, s, b, conv, long)
	elsewhere := mustSend(t, s, c, other, "elsewhere")

	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: a.Lite(), Content: "plain", At: t0},
		{ConversationID: conv, Sender: a.Lite(), Content: "to another conversation", ReplyToID: elsewhere.ID, At: t0},
		{ConversationID: conv, Sender: a.Lite(), Content: "reply", ClientID: "r1", ReplyToID: orig.ID, At: t0},
		{ConversationID: conv, Sender: a.Lite(), Content: "to nothing", ReplyToID: 999999, At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 3} {
		if !errors.Is(res[i].Err, chat.ErrReplyTo) || res[i].Created {
			t.Errorf("message %d: %+v, want ErrReplyTo", i, res[i])
		}
	}
	if res[0].Err != nil || res[0].Message.ReplyTo != nil || res[2].Err != nil || !res[2].Created {
		t.Fatalf("plain and reply: %+v / %+v", res[0], res[2])
	}
	if res[2].Message.Seq != res[0].Message.Seq+1 {
		t.Errorf("seqs %d, %d: a refused reply left a hole", res[0].Message.Seq, res[2].Message.Seq)
	}
	want := &chat.ReplyTo{ID: orig.ID, Sender: b.Lite(), ContentPreview: strings.Repeat("é", chat.MaxPreview)}
	reply := res[2].Message
	if reply.ReplyTo == nil || *reply.ReplyTo != *want {
		t.Errorf("insert answer: reply_to %+v, want %+v", reply.ReplyTo, want)
	}
	check := func(when string, want *chat.ReplyTo) {
		t.Helper()
		reads := map[string]chat.Message{}
		if m, err := s.Message(ctx, reply.ID); err == nil {
			reads["by id"] = m
		} else {
			t.Fatal(err)
		}
		page, err := s.Messages(ctx, conv, chat.PageQuery{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Results {
			if m.ID == reply.ID {
				reads["history"] = m
			}
		}
		for _, m := range all(t, s, conv) {
			if m.ID == reply.ID {
				reads["by seq"] = m
			}
		}
		cv, err := s.Conversation(ctx, conv, a.ID)
		if err != nil || cv.LastMessage == nil {
			t.Fatalf("conversation: %+v %v", cv, err)
		}
		reads["last message"] = *cv.LastMessage
		if len(reads) != 4 {
			t.Fatalf("%s: the reply was read only %v", when, slices.Sorted(maps.Keys(reads)))
		}
		for name, m := range reads {
			if m.ReplyTo == nil || *m.ReplyTo != *want {
				t.Errorf("%s, %s: reply_to %+v, want %+v", when, name, m.ReplyTo, want)
			}
		}
	}
	check("sent", want)

	// A retry of the reply returns the original, preview and all.
	again, err := s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: a.Lite(), Content: "reply", ClientID: "r1", ReplyToID: orig.ID, At: t0}})
	if err != nil || again[0].Err != nil || again[0].Created || again[0].Message.ID != reply.ID ||
		again[0].Message.ReplyTo == nil || *again[0].Message.ReplyTo != *want {
		t.Errorf("retry: %+v %v", again, err)
	}

	if _, err := s.EditMessage(ctx, orig.ID, "edited", nil, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	edited := *want
	edited.ContentPreview = "edited"
	check("original edited", &edited)

	if _, _, err := s.DeleteMessage(ctx, orig.ID, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	gone := *want
	gone.ContentPreview, gone.IsDeleted = "", true
	check("original deleted", &gone)

	// A reply to a tombstone is still a reply: the client saw it.
	res, err = s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: a.Lite(), Content: "late", ReplyToID: orig.ID, At: t0}})
	if err != nil || res[0].Err != nil || res[0].Message.ReplyTo == nil || *res[0].Message.ReplyTo != gone {
		t.Errorf("reply to a deleted message: %+v %v", res, err)
	}
}

// testMentions: the mentions given are stored and read back in their
// order, replaced by an edit; ParticipantsNamed finds participants only,
// by folded username.
func testMentions(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ann"), mustUser(t, s, "Ben"), mustUser(t, s, "cy")
	conv := mustConversation(t, s, true, a, b)
	_ = mustConversation(t, s, true, a, c)

	found, err := s.ParticipantsNamed(ctx, conv, []string{"ben", "cy", "ann", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found["ben"] != b.ID || found["ann"] != a.ID {
		t.Errorf("participants named: %v, want ben %d and ann %d only", found, b.ID, a.ID)
	}
	if found, err := s.ParticipantsNamed(ctx, conv, nil); err != nil || len(found) != 0 {
		t.Errorf("no names: %v %v", found, err)
	}

	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: a.Lite(), Content: "hi @ben @ann", Mentions: []int64{b.ID, a.ID}, At: t0},
		{ConversationID: conv, Sender: a.Lite(), Content: "no one", At: t0},
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("insert: %+v %v", res, err)
	}
	if got := res[0].Message.Mentions; !slices.Equal(got, []int64{b.ID, a.ID}) {
		t.Errorf("insert answer: mentions %v", got)
	}
	msgs := all(t, s, conv)
	if !slices.Equal(msgs[0].Mentions, []int64{b.ID, a.ID}) || len(msgs[1].Mentions) != 0 {
		t.Errorf("read back: %v, %v", msgs[0].Mentions, msgs[1].Mentions)
	}
	m, err := s.EditMessage(ctx, msgs[0].ID, "only @ann", []int64{a.ID}, t0)
	if err != nil || !slices.Equal(m.Mentions, []int64{a.ID}) {
		t.Errorf("edit: %v %v", m.Mentions, err)
	}
	if got, err := s.Message(ctx, msgs[0].ID); err != nil || !slices.Equal(got.Mentions, []int64{a.ID}) {
		t.Errorf("after edit: %v %v", got.Mentions, err)
	}
}
