package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

// versions returns the version of message msgID and of its conversation.
func versions(t *testing.T, s chat.Store, conv, viewer, msgID int64) (msg, c int64) {
	t.Helper()
	ctx := context.Background()
	m, err := s.Message(ctx, msgID)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := s.Conversation(ctx, conv, viewer)
	if err != nil {
		t.Fatal(err)
	}
	return m.Version, cv.Version
}

func reaction(emoji string, count int, me *bool) chat.Reaction {
	return chat.Reaction{Emoji: emoji, Count: count, Me: me}
}

func ptr(b bool) *bool { return &b }

// testReactions: a reaction added or removed changes the count, takes a
// version for the message and its conversation, and is listed in order of
// first use with Me for the viewer; one that changes nothing bumps
// nothing.
func testReactions(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ada"), mustUser(t, s, "bea"), mustUser(t, s, "cy")
	conv := mustConversation(t, s, true, a, b, c)
	m := mustSend(t, s, a, conv, "react to me")
	other := mustSend(t, s, a, conv, "and me")

	mv, cv := versions(t, s, conv, a.ID, m.ID)
	rc, err := s.React(ctx, m.ID, b.ID, "👍", true, t0.Add(time.Second))
	if err != nil || !rc.Changed || rc.Count != 1 || rc.ConversationID != conv || rc.Version <= cv {
		t.Fatalf("first reaction: %+v %v (versions before: message %d, conversation %d)", rc, err, mv, cv)
	}
	if mv2, cv2 := versions(t, s, conv, a.ID, m.ID); mv2 != rc.Version || cv2 != rc.Version {
		t.Errorf("versions after a reaction: message %d, conversation %d; want both %d", mv2, cv2, rc.Version)
	}
	again, err := s.React(ctx, m.ID, b.ID, "👍", true, t0.Add(2*time.Second))
	if err != nil || again.Changed || again.Count != 1 {
		t.Errorf("the same reaction again: %+v %v", again, err)
	}
	if mv2, cv2 := versions(t, s, conv, a.ID, m.ID); mv2 != rc.Version || cv2 != rc.Version {
		t.Errorf("a reaction that changed nothing moved versions to %d, %d", mv2, cv2)
	}
	if rc, err = s.React(ctx, m.ID, c.ID, "👍", true, t0.Add(3*time.Second)); err != nil || !rc.Changed || rc.Count != 2 {
		t.Errorf("second user: %+v %v", rc, err)
	}
	if _, err = s.React(ctx, m.ID, c.ID, "🎉", true, t0.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err = s.React(ctx, other.ID, a.ID, "❤️", true, t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}

	got, err := s.Reactions(ctx, b.ID, []int64{m.ID, other.ID, 999999})
	want := map[int64]chat.Reactions{
		m.ID:     {reaction("👍", 2, ptr(true)), reaction("🎉", 1, ptr(false))},
		other.ID: {reaction("❤️", 1, ptr(false))},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("reactions for b: %v %v; want %v", got, err, want)
	}
	got, _ = s.Reactions(ctx, 0, []int64{m.ID})
	if want := (chat.Reactions{reaction("👍", 2, nil), reaction("🎉", 1, nil)}); !reflect.DeepEqual(got[m.ID], want) {
		t.Errorf("reactions for nobody: %v; want %v", got[m.ID], want)
	}
	if got, err := s.Reactions(ctx, a.ID, nil); err != nil || len(got) != 0 {
		t.Errorf("reactions of no message: %v %v", got, err)
	}

	_, cv = versions(t, s, conv, a.ID, m.ID)
	rc, err = s.React(ctx, m.ID, b.ID, "👍", false, t0)
	if err != nil || !rc.Changed || rc.Count != 1 || rc.Version <= cv {
		t.Errorf("removal: %+v %v", rc, err)
	}
	if rc, err = s.React(ctx, m.ID, b.ID, "👍", false, t0); err != nil || rc.Changed || rc.Count != 1 {
		t.Errorf("removal of what is not there: %+v %v", rc, err)
	}
	if _, err := s.React(ctx, 999999, b.ID, "👍", true, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("reaction to a missing message: %v", err)
	}

	// A tombstone keeps no reactions and takes none.
	if _, _, err := s.DeleteMessage(ctx, m.ID, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Reactions(ctx, a.ID, []int64{m.ID}); len(got[m.ID]) != 0 {
		t.Errorf("a deleted message's reactions: %v", got[m.ID])
	}
	_, err = s.React(ctx, m.ID, b.ID, "👍", true, t0)
	if e := (*chat.Error)(nil); !errors.As(err, &e) || e.Code != chat.CodeInvalid || e.Fields["message"] == nil {
		t.Errorf("reaction to a deleted message: %v", err)
	}
}

// testReactionsCap: a message takes at most chat.MaxReactions distinct
// emoji, even from concurrent writers; more users with one of them are
// fine.
func testReactionsCap(t *testing.T, open func(t *testing.T) chat.Store) {
	s, s2 := open(t), open(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ari"), mustUser(t, s, "bo")
	conv := mustConversation(t, s, false, a, b)
	m := mustSend(t, s, a, conv, "many")

	// Far more than the cap, at once, from two nodes.
	emojis := []rune("😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩🤔🤨😐😑😶🙄😏😣😥")
	var wg sync.WaitGroup
	errs := make([]error, len(emojis))
	for i, e := range emojis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []chat.Store{s, s2}[i%2]
			_, errs[i] = node.React(ctx, m.ID, a.ID, string(e), true, t0.Add(time.Duration(i)*time.Millisecond))
		}()
	}
	wg.Wait()
	refused := 0
	for i, err := range errs {
		var e *chat.Error
		switch {
		case err == nil:
		case errors.As(err, &e) && e.Code == chat.CodeInvalid && e.Fields["emoji"] != nil:
			refused++
		default:
			t.Errorf("reaction %d: %v", i, err)
		}
	}
	got, err := s.Reactions(ctx, a.ID, []int64{m.ID})
	if err != nil || len(got[m.ID]) != chat.MaxReactions || refused != len(emojis)-chat.MaxReactions {
		t.Fatalf("%d distinct reactions, %d refused, %v; want %d and %d", len(got[m.ID]), refused, err,
			chat.MaxReactions, len(emojis)-chat.MaxReactions)
	}
	// Another user's reaction with one already there is no new emoji.
	if rc, err := s.React(ctx, m.ID, b.ID, got[m.ID][0].Emoji, true, t0); err != nil || rc.Count != 2 {
		t.Errorf("a second user with an existing emoji at the cap: %+v %v", rc, err)
	}
	if _, err := s.React(ctx, m.ID, b.ID, "🦄", true, t0); err == nil {
		t.Error("a new emoji past the cap was taken")
	}
}
