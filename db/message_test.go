package db_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

func TestInsertMessages_BatchKeepsEachOutcome(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	a, b, outsider := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "out")
	conv := mustConversation(t, s, false, a, b)

	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: lite(a), Content: "first", ClientID: "k", At: t0},
		{ConversationID: conv, Sender: lite(outsider), Content: "let me in", At: t0},
		{ConversationID: conv, Sender: lite(a), Content: "retry", ClientID: "k", At: t0},
		{ConversationID: conv, Sender: lite(b), Content: "same client id, other sender", ClientID: "k", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Created || res[0].Err != nil || res[0].Message.Content != "first" {
		t.Errorf("first: %+v", res[0])
	}
	if !errors.Is(res[1].Err, chat.ErrNotFound) || res[1].Created {
		t.Errorf("non-participant: %+v, want ErrNotFound", res[1])
	}
	if res[2].Created || res[2].Err != nil || res[2].Message.ID != res[0].Message.ID || res[2].Message.Content != "first" {
		t.Errorf("retry in the same batch: %+v, want the original", res[2])
	}
	if !res[3].Created || res[3].Message.ID <= res[0].Message.ID {
		t.Errorf("other sender: %+v", res[3])
	}
	var n int
	s.DB().QueryRow(`SELECT count(*) FROM messages`).Scan(&n)
	if n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
	c, err := s.Conversation(ctx, conv, a.ID)
	if err != nil || c.LastMessage == nil || c.LastMessage.ID != res[3].Message.ID {
		t.Errorf("last message %+v %v", c.LastMessage, err)
	}
}

func TestEditAndDelete(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
	id := mustSend(t, s, a, conv, "draft")

	m, err := s.EditMessage(ctx, id, "final", t0.Add(time.Minute))
	if err != nil || m.Content != "final" || m.EditedAt == nil || !m.EditedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("edit: %+v %v", m, err)
	}
	m, changed, err := s.DeleteMessage(ctx, id, t0.Add(2*time.Minute))
	if err != nil || !changed || !m.IsDeleted || m.Content != "" {
		t.Fatalf("delete: %+v %v %v", m, changed, err)
	}
	if _, changed, err = s.DeleteMessage(ctx, id, t0); err != nil || changed {
		t.Errorf("second delete: changed=%v %v", changed, err)
	}
	if _, err := s.EditMessage(ctx, id, "again", t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("edit of a deleted message: %v", err)
	}
	if _, _, err := s.DeleteMessage(ctx, 999, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("delete of a missing message: %v", err)
	}
	var stored string
	s.DB().QueryRow(`SELECT content FROM messages WHERE id = ?`, id).Scan(&stored)
	if stored != "" {
		t.Errorf("deleted content kept: %q", stored)
	}
}

func TestMarkRead_NeverMovesBackwards(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
	m1, m2, m3 := mustSend(t, s, a, conv, "1"), mustSend(t, s, a, conv, "2"), mustSend(t, s, a, conv, "3")
	steps := []struct {
		msg    int64
		moved  bool
		mark   int64
		unread int
	}{
		{m2, true, m2, 1},
		{m1, false, m2, 1},
		{m2, false, m2, 1},
		{m3, true, m3, 0},
	}
	for _, st := range steps {
		mark, moved, err := s.MarkRead(ctx, conv, b.ID, st.msg)
		if err != nil || moved != st.moved || int64(mark.LastReadMessageID) != st.mark || mark.UnreadCount != st.unread {
			t.Errorf("read %d: %+v moved=%v %v; want mark %d unread %d moved %v", st.msg, mark, moved, err, st.mark, st.unread, st.moved)
		}
	}
	if _, _, err := s.MarkRead(ctx, conv, mustUser(t, s, "out").ID, m1); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("non-participant: %v", err)
	}
}

func TestCreateConversation_DirectOncePerPair(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	nc := chat.NewConversation{UserIDs: []int64{a.ID, b.ID}, DirectKey: pairKey(a.ID, b.ID), At: t0}
	id, created, err := s.CreateConversation(ctx, nc)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if err := s.RemoveParticipant(ctx, id, b.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveParticipant(ctx, id, b.ID, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("second removal: %v", err)
	}
	// From the other side, after b left: the same conversation, b back in.
	nc.UserIDs = []int64{b.ID, a.ID}
	again, created, err := s.CreateConversation(ctx, nc)
	if err != nil || created || again != id {
		t.Fatalf("again: %d %v %v", again, created, err)
	}
	if role, group, err := s.Membership(ctx, id, b.ID); err != nil || group || role != chat.RoleMember {
		t.Errorf("b's membership: %q %v %v", role, group, err)
	}
	if err := s.AddParticipant(ctx, id, a.ID, chat.RoleMember, t0); chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("adding a participant twice: %v", err)
	}
}

func TestDeleteUser_RepointsLastMessages(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	gone, b, c := mustUser(t, s, "gone"), mustUser(t, s, "ben"), mustUser(t, s, "cy")
	spoke := mustConversation(t, s, false, b, gone)
	kept := mustSend(t, s, b, spoke, "kept")
	mustSend(t, s, gone, spoke, "last")
	onlyGone := mustConversation(t, s, true, c, gone, b)
	mustSend(t, s, gone, onlyGone, "only")
	untouched := mustConversation(t, s, false, b, c)
	last := mustSend(t, s, c, untouched, "hi")

	if err := s.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, gone.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	for conv, want := range map[int64]int64{spoke: kept, onlyGone: 0, untouched: last} {
		cv, err := s.Conversation(ctx, conv, b.ID)
		if err != nil {
			t.Errorf("conversation %d: %v", conv, err)
			continue
		}
		var got int64
		if cv.LastMessage != nil {
			got = cv.LastMessage.ID
		}
		if got != want {
			t.Errorf("conversation %d: last message %d, want %d", conv, got, want)
		}
	}
	cs, err := s.Conversations(ctx, b.ID)
	if err != nil || len(cs) != 3 {
		t.Errorf("b has %d conversations (%v), want 3", len(cs), err)
	}
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestRefreshTokens_RotationAndReuse(t *testing.T) {
	s, _ := mustOpenDB(t)
	ctx := context.Background()
	u, other := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	tok := func(name string, exp time.Time) chat.RefreshToken {
		return chat.RefreshToken{Hash: hash(name), UserID: u.ID, ChainID: "chain-" + name, ExpiresAt: exp, CreatedAt: t0}
	}
	week := t0.Add(168 * time.Hour)
	if err := s.InsertRefreshToken(ctx, tok("r1", week)); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(ctx, hash("r1"), tok("r2", week), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(ctx, hash("r2"), tok("r3", week), t0); err != nil {
		t.Fatal(err)
	}
	// Another user's next token cannot be rotated in.
	wrong := tok("x", week)
	wrong.UserID = other.ID
	if err := s.RotateRefreshToken(ctx, hash("r3"), wrong, t0); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("cross-user rotation: %v", err)
	}
	if err := s.RotateRefreshToken(ctx, hash("r1"), tok("r4", week), t0); !errors.Is(err, chat.ErrTokenReused) {
		t.Errorf("reuse: %v", err)
	}
	// The whole chain, r3 included, is revoked, and that was committed.
	if err := s.RotateRefreshToken(ctx, hash("r3"), tok("r5", week), t0); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("newest after reuse: %v", err)
	}
	if err := s.RotateRefreshToken(ctx, hash("unknown"), tok("r6", week), t0); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("unknown: %v", err)
	}

	if err := s.InsertRefreshToken(ctx, tok("e1", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(ctx, hash("e1"), tok("e2", week), t0.Add(time.Hour)); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("expired: %v", err)
	}

	if err := s.InsertRefreshToken(ctx, tok("l1", week)); err != nil {
		t.Fatal(err)
	}
	if uid, err := s.RevokeRefreshChain(ctx, hash("l1"), t0); err != nil || uid != u.ID {
		t.Errorf("logout: %d %v", uid, err)
	}
	if _, err := s.RevokeRefreshChain(ctx, hash("l1"), t0); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("second logout: %v", err)
	}
}
