// Package storetest holds the behaviour every chat.Store must have, as
// tests that each store's package runs against itself (Run), so that the
// SQLite and the PostgreSQL store cannot drift apart. It knows no SQL:
// what only one store can show (files, pragmas, rows as stored) is tested
// in that store's package.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Run runs every behaviour test of chat.Store, each in a parallel subtest.
//
// open must return a Store on an empty database of the subtest's own, and
// close it when the test ends. Called again with the same t, it must
// return another Store on that same database: a second node, for the
// tests of concurrent writers. Opener builds such a function.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) chat.Store)
	}{
		{"CreateUser_UniqueCaseInsensitively", testCreateUser},
		{"UpdateUser_ChangesWhatIsGiven", testUpdateUser},
		{"ChangePassword_RevokesOtherChainsAndMovesTheEpoch", testChangePassword},
		{"SearchUsers_PrefixOfUsernameOrDisplayName", testSearchUsers},
		{"CreateConversation_DirectOncePerPair", testDirectOncePerPair},
		{"Participants_AddRemoveAndMembership", testParticipants},
		{"Conversations_EachAsConversationShowsIt", testConversationsList},
		{"Participants_BigGroupCappedCountedAndPaged", testBigGroup},
		{"UnreadCount_FromSeqAndReadMark", testUnreadFromSeq},
		{"InsertMessages_BatchKeepsEachOutcome", testBatchOutcomes},
		{"EditAndDelete", testEditAndDelete},
		{"Replies_PreviewEverywhereAndSameConversationOnly", testReplies},
		{"Mentions_StoredAndReplacedByEdit", testMentions},
		{"Reactions_CountedVersionedAndListedByFirstUse", testReactions},
		{"Reactions_AtMostTwentyEmojiEvenConcurrently", testReactionsCap},
		{"Messages_Pages", testMessagesPages},
		{"MarkRead_NeverMovesBackwards", testMarkRead},
		{"DeleteUser_TombstoneKeepsConversationsCoherent", testDeleteUser},
		{"DeleteUser_UsernameReservedThenFree", testUsernameReserved},
		{"EraseMessages_InBatchesWithVersionsAndFinish", testEraseBatches},
		{"RefreshTokens_RotationAndReuse", testRefreshTokens},
		{"Setting_SetOnceThenKept", testSetting},
		{"Seq_ConsecutivePerConversationFromOne", testSeqConsecutive},
		{"Seq_NoHoleForRejectedOrRepeatedSends", testSeqNoHoles},
		{"Seq_DeletedAuthorsMessagesStayAsTombstones", testSeqDeletedAuthor},
		{"MessagesBySeq_BoundsAndLimit", testMessagesBySeq},
		{"SearchMessages_WhatIsFound", testSearchMessages},
		{"SearchMessages_RankedThenNewestAndPaged", testSearchRanking},
		{"SearchMessages_ViewerInManyConversations", testSearchManyConversations},
		{"SearchMessages_WindowsOfRecency", testSearchWindows},
		{"SearchMessages_LastWordOfACommonPrefix", testSearchCommonPrefix},
		{"SearchMessages_AnyWayIn", testSearchAnyWayIn},
		{"Seq_ConcurrentNodesGiveEachConversationOneOrder", testSeqConcurrent},
		{"Versions_EveryChangeAndChangesSince", testVersions},
		{"Feed_ConversationsDeparturesMessagesInPages", testFeed},
		{"Feed_GaplessWithWritersOnSeveralNodes", testFeedGapless},
		{"Blocks_OneWayListedAndGoneWithTheAccount", testBlocks},
		{"Blocks_RefuseTheBlockedSenderInADirectConversationOnly", testBlocksSend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// Opener returns an open function for Run. create makes an empty database
// for a test and returns where it is (a file, a URL); connect opens a
// Store there and closes it when the test ends. create runs once per test,
// connect on every call.
func Opener(create func(t *testing.T) string, connect func(t *testing.T, where string) chat.Store) func(t *testing.T) chat.Store {
	var mu sync.Mutex
	where := map[*testing.T]string{}
	return func(t *testing.T) chat.Store {
		t.Helper()
		mu.Lock()
		w, ok := where[t]
		mu.Unlock()
		if !ok {
			w = create(t)
			mu.Lock()
			where[t] = w
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(where, t)
				mu.Unlock()
			})
		}
		return connect(t, w)
	}
}

func mustUser(tb testing.TB, s chat.Store, name string) chat.User {
	tb.Helper()
	u, err := s.CreateUser(context.Background(), name, name, "hash", t0)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func pairKey(a, b int64) string { return fmt.Sprintf("%d:%d", min(a, b), max(a, b)) }

func mustConversation(tb testing.TB, s chat.Store, group bool, users ...chat.User) int64 {
	tb.Helper()
	nc := chat.NewConversation{IsGroup: group, At: t0}
	for _, u := range users {
		nc.UserIDs = append(nc.UserIDs, u.ID)
	}
	if !group {
		nc.DirectKey = pairKey(users[0].ID, users[1].ID)
	}
	id, _, err := s.CreateConversation(context.Background(), nc)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustSend(tb testing.TB, s chat.Store, from chat.User, conv int64, content string) chat.Message {
	tb.Helper()
	res, err := s.InsertMessages(context.Background(), []chat.NewMessage{{ConversationID: conv, Sender: from.Lite(), Content: content, At: t0}})
	if err != nil || res[0].Err != nil {
		tb.Fatalf("insert: %v %v", err, res[0].Err)
	}
	return res[0].Message
}

// all returns every message of conv by seq.
func all(tb testing.TB, s chat.Store, conv int64) []chat.Message {
	tb.Helper()
	msgs, err := s.MessagesBySeq(context.Background(), conv, 0, 0, 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	return msgs
}

func seqs(msgs []chat.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func ids(msgs []chat.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func oneTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}

// lastSeq is LastSeqs for one conversation: ErrNotFound when it is
// unknown.
func lastSeq(ctx context.Context, s chat.Store, conv int64) (int64, error) {
	m, err := s.LastSeqs(ctx, []int64{conv})
	if err != nil {
		return 0, err
	}
	seq, ok := m[conv]
	if !ok {
		return 0, chat.ErrNotFound
	}
	return seq, nil
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func testCreateUser(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	alice := mustUser(t, s, "Alice")
	_, err := s.CreateUser(ctx, "aLICE", "x", "hash", t0)
	if chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := s.CreateUser(ctx, "ÄLICE", "x", "hash", t0); err != nil {
		t.Errorf("a different name: %v", err)
	}
	if _, err := s.CreateUser(ctx, "älice", "x", "hash", t0); chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("non-ASCII duplicate: %v", err)
	}
	a, err := s.UserByUsername(ctx, "ALICE")
	if err != nil || a.Username != "Alice" || a.PasswordHash != "hash" || a.ID != alice.ID || !a.CreatedAt.Equal(t0) {
		t.Errorf("lookup: %+v %v", a, err)
	}
	if b, err := s.UserByID(ctx, alice.ID); err != nil || b != a {
		t.Errorf("by id: %+v %v, want %+v", b, err, a)
	}
	if _, err := s.UserByID(ctx, 999999); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := s.UserByUsername(ctx, "nobody"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
}

func testUpdateUser(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	u := mustUser(t, s, "ann")
	name, pw := "Ännchen", "new-hash"
	got, err := s.UpdateUser(ctx, u.ID, &name, nil)
	if err != nil || got.DisplayName != name || got.Username != "ann" {
		t.Fatalf("display name: %+v %v", got, err)
	}
	if _, err := s.UpdateUser(ctx, u.ID, nil, &pw); err != nil {
		t.Fatal(err)
	}
	a, err := s.UserByID(ctx, u.ID)
	if err != nil || a.DisplayName != name || a.PasswordHash != pw {
		t.Errorf("after updates: %+v %v", a, err)
	}
	if found, _ := s.SearchUsers(ctx, "än", 10); len(found) != 1 || found[0].ID != u.ID {
		t.Errorf("search by the new display name: %+v", found)
	}
	if _, err := s.UpdateUser(ctx, 999999, &name, nil); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func testSearchUsers(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	for _, u := range []struct{ name, display string }{
		{"albert", "Bert"}, {"zed", "Al Zed"}, {"bob", "Bob"}, {"under_score", "U"}, {"umlaut", "Özil Ünal"},
		{"Émile", "E"}, {"pct", "100%"}, {"xeno", "Ξενοφῶν"}, {"yuri", "ЮРИЙ Гагарин"},
	} {
		if _, err := s.CreateUser(ctx, u.name, u.display, "h", t0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"al", 20, []string{"albert", "zed"}},
		{"AL", 20, []string{"albert", "zed"}},
		{"al", 1, []string{"albert"}},
		{"under_", 20, []string{"under_score"}},
		{"u_", 20, nil}, // _ is not a wildcard
		{"%", 20, nil},
		{"100%", 20, []string{"pct"}},
		{`\`, 20, nil},
		{"Öz", 20, []string{"umlaut"}},
		{"öz", 20, []string{"umlaut"}},
		{"émi", 20, []string{"Émile"}},
		{"ξεν", 20, []string{"xeno"}},
		{"ΞΕΝ", 20, []string{"xeno"}},
		{"юрий г", 20, []string{"yuri"}},
		{"Юр", 20, []string{"yuri"}},
		{"", 3, []string{"albert", "bob", "pct"}},
	}
	for _, tt := range tests {
		us, err := s.SearchUsers(ctx, tt.prefix, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range us {
			got = append(got, u.Username)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("search %q (limit %d) = %v, want %v", tt.prefix, tt.limit, got, tt.want)
		}
	}
}

func testDirectOncePerPair(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
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
	c, err := s.Conversation(ctx, id, a.ID)
	if err != nil || c.IsGroup || len(c.Participants) != 2 || c.CreatedBy != chat.OptID(a.ID) || c.LastMessage != nil {
		t.Errorf("conversation: %+v %v", c, err)
	}
}

func testParticipants(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c, d := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "cy"), mustUser(t, s, "dee")
	g := mustConversation(t, s, true, a, b, c)
	if err := s.SetTitle(ctx, g, "team", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTitle(ctx, 999999, "x", t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("title of an unknown conversation: %v", err)
	}
	for u, want := range map[int64]string{a.ID: chat.RoleAdmin, b.ID: chat.RoleMember, c.ID: chat.RoleMember} {
		if role, group, err := s.Membership(ctx, g, u); err != nil || !group || role != want {
			t.Errorf("membership of %d: %q %v %v, want %q", u, role, group, err, want)
		}
	}
	if _, _, err := s.Membership(ctx, g, d.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("membership of an outsider: %v", err)
	}
	last := mustSend(t, s, a, g, "before dee")
	if err := s.AddParticipant(ctx, g, d.ID, chat.RoleMember, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.ParticipantIDs(ctx, g); err != nil || !slices.Equal(ps, []int64{a.ID, b.ID, c.ID, d.ID}) {
		t.Errorf("participants: %v %v", ps, err)
	}
	cv, err := s.Conversation(ctx, g, d.ID)
	if err != nil || cv.Title != "team" || cv.UnreadCount != 0 || !cv.UpdatedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("as dee: %+v %v", cv, err)
	}
	if p := cv.Participant(d.ID); p == nil || p.LastReadMessageID != chat.OptID(last.ID) || p.Role != chat.RoleMember {
		t.Errorf("dee joins having read what came before: %+v", p)
	}
	// The last admin leaves: the longest-standing member takes over.
	if err := s.RemoveParticipant(ctx, g, a.ID, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if role, _, err := s.Membership(ctx, g, b.ID); err != nil || role != chat.RoleAdmin {
		t.Errorf("ben after ann left: %q %v", role, err)
	}
	if _, err := s.Conversation(ctx, g, a.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("ann still sees the group: %v", err)
	}
	direct := mustConversation(t, s, false, b, d)
	if cs, err := s.ConversationIDs(ctx, d.ID); err != nil || !slices.Equal(cs, []int64{g, direct}) {
		t.Errorf("dee's conversations by activity: %v %v", cs, err)
	}
	if cs, err := s.ConversationIDs(ctx, a.ID); err != nil || len(cs) != 0 {
		t.Errorf("ann's conversations: %v %v", cs, err)
	}
}

func testBatchOutcomes(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, outsider := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "out")
	conv := mustConversation(t, s, false, a, b)
	other := mustConversation(t, s, false, a, outsider)

	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: a.Lite(), Content: "first", ClientID: "k", At: t0},
		{ConversationID: conv, Sender: outsider.Lite(), Content: "let me in", At: t0},
		{ConversationID: conv, Sender: a.Lite(), Content: "retry", ClientID: "k", At: t0},
		{ConversationID: conv, Sender: b.Lite(), Content: "same client id, other sender", ClientID: "k", At: t0.Add(time.Second)},
		{ConversationID: other, Sender: a.Lite(), Content: "same client id, other conversation", ClientID: "k", At: t0},
		{ConversationID: 999999, Sender: a.Lite(), Content: "nowhere", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Created || res[0].Err != nil || res[0].Message.Content != "first" || res[0].Message.Seq != 1 ||
		res[0].Message.ClientID == nil || *res[0].Message.ClientID != "k" || res[0].Message.Sender != a.Lite() {
		t.Errorf("first: %+v", res[0])
	}
	if !errors.Is(res[1].Err, chat.ErrNotFound) || res[1].Created {
		t.Errorf("non-participant: %+v, want ErrNotFound", res[1])
	}
	if res[2].Created || res[2].Err != nil || res[2].Message.ID != res[0].Message.ID || res[2].Message.Content != "first" || res[2].Message.Seq != 1 {
		t.Errorf("retry in the same batch: %+v, want the original", res[2])
	}
	if !res[3].Created || res[3].Message.ID <= res[0].Message.ID || res[3].Message.Seq != 2 {
		t.Errorf("other sender: %+v", res[3])
	}
	if chat.ErrorCode(res[4].Err) != chat.CodeConflict || res[4].Message.ID != 0 {
		t.Errorf("client id reused in another conversation: %+v, want a conflict", res[4])
	}
	if !errors.Is(res[5].Err, chat.ErrNotFound) {
		t.Errorf("unknown conversation: %+v", res[5])
	}
	if got := all(t, s, conv); !slices.Equal(ids(got), []int64{res[0].Message.ID, res[3].Message.ID}) {
		t.Errorf("stored %v", got)
	}
	if got := all(t, s, other); len(got) != 0 {
		t.Errorf("stored in the other conversation: %v", got)
	}
	c, err := s.Conversation(ctx, conv, a.ID)
	if err != nil || c.LastMessage == nil || c.LastMessage.ID != res[3].Message.ID || c.LastMessage.Seq != 2 ||
		!c.UpdatedAt.Equal(t0.Add(time.Second)) || c.UnreadCount != 1 {
		t.Errorf("conversation after the batch: %+v %v", c, err)
	}

	// Retried in a later batch, after the sender left: still the original.
	if err := s.RemoveParticipant(ctx, conv, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	res, err = s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv, Sender: a.Lite(), Content: "again", ClientID: "k", At: t0}})
	if err != nil || res[0].Created || res[0].Err != nil || res[0].Message.Content != "first" {
		t.Errorf("later retry: %+v %v", res, err)
	}
}

func testEditAndDelete(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
	sent := mustSend(t, s, a, conv, "draft")
	id := sent.ID

	m, err := s.EditMessage(ctx, id, "final", nil, t0.Add(time.Minute))
	if err != nil || m.Content != "final" || m.EditedAt == nil || !m.EditedAt.Equal(t0.Add(time.Minute)) || m.Seq != sent.Seq || m.Sender != a.Lite() {
		t.Fatalf("edit: %+v %v", m, err)
	}
	if got, err := s.Message(ctx, id); err != nil || got.Content != "final" || got.Seq != sent.Seq {
		t.Errorf("after edit: %+v %v", got, err)
	}
	m, changed, err := s.DeleteMessage(ctx, id, t0.Add(2*time.Minute))
	if err != nil || !changed || !m.IsDeleted || m.Content != "" || m.Seq != sent.Seq {
		t.Fatalf("delete: %+v %v %v", m, changed, err)
	}
	if _, changed, err = s.DeleteMessage(ctx, id, t0); err != nil || changed {
		t.Errorf("second delete: changed=%v %v", changed, err)
	}
	if _, err := s.EditMessage(ctx, id, "again", nil, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("edit of a deleted message: %v", err)
	}
	if _, _, err := s.DeleteMessage(ctx, 999999, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("delete of a missing message: %v", err)
	}
	if _, err := s.EditMessage(ctx, 999999, "x", nil, t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("edit of a missing message: %v", err)
	}
	if _, err := s.Message(ctx, 999999); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("missing message: %v", err)
	}
	if got, err := s.Message(ctx, id); err != nil || !got.IsDeleted || got.Content != "" {
		t.Errorf("tombstone: %+v %v", got, err)
	}
}

func testMessagesPages(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
	var sent []int64
	for i := range 5 {
		sent = append(sent, mustSend(t, s, a, conv, fmt.Sprint(i)).ID)
	}
	tests := []struct {
		q       chat.PageQuery
		want    []int64
		hasMore bool
	}{
		{chat.PageQuery{Limit: 2}, sent[3:], true},
		{chat.PageQuery{Limit: 10}, sent, false},
		{chat.PageQuery{Limit: 2, FromStart: true}, sent[:2], true},
		{chat.PageQuery{Limit: 2, Before: sent[3]}, sent[1:3], true},
		{chat.PageQuery{Limit: 2, Before: sent[2]}, sent[:2], false},
		{chat.PageQuery{Limit: 2, After: sent[2]}, sent[3:], false},
		{chat.PageQuery{Limit: 2, After: sent[0]}, sent[1:3], true},
	}
	for _, tt := range tests {
		p, err := s.Messages(ctx, conv, tt.q)
		if err != nil || !slices.Equal(ids(p.Results), tt.want) || p.HasMore != tt.hasMore {
			t.Errorf("%+v: %v more=%v %v, want %v more=%v", tt.q, ids(p.Results), p.HasMore, err, tt.want, tt.hasMore)
		}
	}
}

func testMarkRead(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
	m1, m2, m3 := mustSend(t, s, a, conv, "1").ID, mustSend(t, s, a, conv, "2").ID, mustSend(t, s, a, conv, "3").ID
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

func testChangePassword(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	u, other := mustUser(t, s, "pat"), mustUser(t, s, "quinn")
	week := t0.Add(168 * time.Hour)
	insert := func(name string, userID int64, chain string) {
		t.Helper()
		rt := chat.RefreshToken{Hash: hash(name), UserID: userID, ChainID: chain, ExpiresAt: week, CreatedAt: t0}
		if err := s.InsertRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	insert("phone", u.ID, "chain-phone")
	insert("laptop", u.ID, "chain-laptop")
	insert("tablet", u.ID, "chain-tablet")
	insert("theirs", other.ID, "chain-theirs")
	if a, err := s.UserByID(ctx, u.ID); err != nil || a.TokenEpoch != 0 || a.KeptSession != "" {
		t.Fatalf("a new account: epoch %d, kept %q (%v)", a.TokenEpoch, a.KeptSession, err)
	}

	a, err := s.ChangePassword(ctx, u.ID, "new-hash", "chain-laptop", t0)
	if err != nil {
		t.Fatal(err)
	}
	if a.PasswordHash != "new-hash" || a.TokenEpoch != 1 || a.KeptSession != "chain-laptop" || a.ID != u.ID || a.Username != u.Username {
		t.Errorf("changed account %+v", a)
	}
	if b, err := s.UserByID(ctx, u.ID); err != nil || b != a {
		t.Errorf("read back %+v (%v), want %+v", b, err, a)
	}
	if b, err := s.UserByUsername(ctx, u.Username); err != nil || b != a {
		t.Errorf("by username %+v (%v), want %+v", b, err, a)
	}
	next := func(name, chain string, userID int64) chat.RefreshToken {
		return chat.RefreshToken{Hash: hash(name), UserID: userID, ChainID: chain, ExpiresAt: week, CreatedAt: t0}
	}
	for _, gone := range []string{"phone", "tablet"} {
		if err := s.RotateRefreshToken(ctx, hash(gone), next(gone+"2", "", u.ID), t0); !errors.Is(err, chat.ErrTokenNotValid) {
			t.Errorf("%s's chain after the change: %v, want ErrTokenNotValid", gone, err)
		}
	}
	if err := s.RotateRefreshToken(ctx, hash("laptop"), next("laptop2", "", u.ID), t0); err != nil {
		t.Errorf("the kept chain: %v", err)
	}
	if err := s.RotateRefreshToken(ctx, hash("theirs"), next("theirs2", "", other.ID), t0); err != nil {
		t.Errorf("another user's chain: %v", err)
	}

	// Changed again with no chain to keep: every chain goes.
	a, err = s.ChangePassword(ctx, u.ID, "newer-hash", "", t0)
	if err != nil || a.TokenEpoch != 2 || a.KeptSession != "" {
		t.Errorf("second change: %+v %v", a, err)
	}
	if err := s.RotateRefreshToken(ctx, hash("laptop2"), next("laptop3", "", u.ID), t0); !errors.Is(err, chat.ErrTokenNotValid) {
		t.Errorf("the once-kept chain after a change that keeps none: %v", err)
	}
	if _, err := s.ChangePassword(ctx, 999999, "h", "", t0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func testRefreshTokens(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
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

func testSetting(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	v, err := s.Setting(ctx, "jwt_secret", []byte("first"))
	if err != nil || string(v) != "first" {
		t.Fatalf("%q %v", v, err)
	}
	if v, err := s.Setting(ctx, "jwt_secret", []byte("second")); err != nil || string(v) != "first" {
		t.Errorf("setting replaced by %q (%v)", v, err)
	}
	if v, err := open(t).Setting(ctx, "jwt_secret", []byte("third")); err != nil || string(v) != "first" {
		t.Errorf("from another store on the database: %q (%v)", v, err)
	}
	if v, err := s.Setting(ctx, "other", []byte{0, 1, 2}); err != nil || !slices.Equal(v, []byte{0, 1, 2}) {
		t.Errorf("binary value: %v %v", v, err)
	}
}

func testSeqConsecutive(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, c := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "cy")
	ab, bc := mustConversation(t, s, false, a, b), mustConversation(t, s, false, b, c)
	for _, conv := range []int64{ab, bc} {
		if n, err := lastSeq(ctx, s, conv); err != nil || n != 0 {
			t.Errorf("last seq of a new conversation: %d %v", n, err)
		}
	}
	if _, err := lastSeq(ctx, s, 999999); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("last seq of an unknown conversation: %v", err)
	}
	// Interleaved, in batches and one by one.
	var batch []chat.NewMessage
	for i := range 7 {
		conv, from := ab, a
		if i%3 == 0 {
			conv, from = bc, c
		}
		batch = append(batch, chat.NewMessage{ConversationID: conv, Sender: from.Lite(), Content: fmt.Sprint(i), At: t0})
	}
	res, err := s.InsertMessages(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]int64{}
	for i, r := range res {
		want[batch[i].ConversationID]++
		if r.Err != nil || !r.Created || r.Message.Seq != want[batch[i].ConversationID] {
			t.Errorf("message %d: %+v, want seq %d", i, r, want[batch[i].ConversationID])
		}
	}
	if m := mustSend(t, s, b, ab, "after"); m.Seq != want[ab]+1 {
		t.Errorf("next in ab: seq %d, want %d", m.Seq, want[ab]+1)
	}
	want[ab]++
	lasts, err := s.LastSeqs(ctx, []int64{ab, bc, 999999})
	if err != nil || len(lasts) != 2 || lasts[ab] != want[ab] || lasts[bc] != want[bc] {
		t.Errorf("LastSeqs: %v %v, want %v (and no entry for an unknown id)", lasts, err, want)
	}
	for conv, n := range want {
		got := all(t, s, conv)
		if !slices.Equal(seqs(got), oneTo(n)) {
			t.Errorf("conversation %d: seqs %v, want 1..%d", conv, seqs(got), n)
		}
		if !slices.IsSorted(ids(got)) {
			t.Errorf("conversation %d: ids %v do not grow with seq", conv, ids(got))
		}
		if last, err := lastSeq(ctx, s, conv); err != nil || last != n {
			t.Errorf("conversation %d: last seq %d %v, want %d", conv, last, err, n)
		}
		// Every way of reading a message gives its seq.
		p, err := s.Messages(ctx, conv, chat.PageQuery{Limit: 100})
		if err != nil || !slices.Equal(seqs(p.Results), oneTo(n)) {
			t.Errorf("conversation %d: page seqs %v %v", conv, seqs(p.Results), err)
		}
		if m, err := s.Message(ctx, got[0].ID); err != nil || m.Seq != 1 {
			t.Errorf("conversation %d: first message %+v %v", conv, m, err)
		}
		cv, err := s.Conversation(ctx, conv, b.ID)
		if err != nil || cv.LastMessage == nil || cv.LastMessage.Seq != n {
			t.Errorf("conversation %d: last message %+v %v", conv, cv.LastMessage, err)
		}
	}
}

func testSeqNoHoles(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b, out := mustUser(t, s, "ann"), mustUser(t, s, "ben"), mustUser(t, s, "out")
	conv := mustConversation(t, s, false, a, b)
	other := mustConversation(t, s, false, a, out)
	mustSend(t, s, a, other, "elsewhere")
	res, err := s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: a.Lite(), Content: "1", ClientID: "x", At: t0},
		{ConversationID: conv, Sender: out.Lite(), Content: "rejected", At: t0},
		{ConversationID: conv, Sender: a.Lite(), Content: "repeat", ClientID: "x", At: t0},
		{ConversationID: other, Sender: a.Lite(), Content: "conflict", ClientID: "x", At: t0},
		{ConversationID: conv, Sender: b.Lite(), Content: "2", At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Message.Seq != 1 || res[4].Message.Seq != 2 {
		t.Errorf("seqs %d and %d, want 1 and 2", res[0].Message.Seq, res[4].Message.Seq)
	}
	res, err = s.InsertMessages(ctx, []chat.NewMessage{
		{ConversationID: conv, Sender: a.Lite(), Content: "repeat", ClientID: "x", At: t0},
		{ConversationID: conv, Sender: b.Lite(), Content: "3", At: t0},
	})
	if err != nil || res[0].Created || res[1].Message.Seq != 3 {
		t.Errorf("after a repeat: %+v %v", res, err)
	}
	if got := all(t, s, conv); !slices.Equal(seqs(got), oneTo(3)) {
		t.Errorf("seqs %v", seqs(got))
	}
	if got := all(t, s, other); !slices.Equal(seqs(got), oneTo(1)) {
		t.Errorf("other conversation: seqs %v", seqs(got))
	}
}

func testSeqDeletedAuthor(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, gone, b := mustUser(t, s, "ann"), mustUser(t, s, "gone"), mustUser(t, s, "ben")
	g := mustConversation(t, s, true, a, gone, b)
	mustSend(t, s, a, g, "1")
	mustSend(t, s, gone, g, "2")
	mustSend(t, s, b, g, "3")
	mustSend(t, s, gone, g, "4")
	mustDeleteUser(t, s, gone.ID)
	got := all(t, s, g)
	if !slices.Equal(seqs(got), oneTo(4)) {
		t.Errorf("after the author left: seqs %v, want [1 2 3 4]", seqs(got))
	}
	for _, m := range got {
		if gone := m.Seq%2 == 0; m.IsDeleted != gone || gone && m.Content != "" {
			t.Errorf("seq %d: deleted %v, content %q", m.Seq, m.IsDeleted, m.Content)
		}
	}
	if last, err := lastSeq(ctx, s, g); err != nil || last != 4 {
		t.Errorf("last seq %d %v, want 4: a seq is never handed out twice", last, err)
	}
	if m := mustSend(t, s, a, g, "5"); m.Seq != 5 {
		t.Errorf("next seq %d, want 5", m.Seq)
	}
}

func testMessagesBySeq(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	ctx := context.Background()
	a, b := mustUser(t, s, "ann"), mustUser(t, s, "ben")
	conv := mustConversation(t, s, false, a, b)
	for i := range 6 {
		mustSend(t, s, a, conv, fmt.Sprint(i+1))
	}
	third := all(t, s, conv)[2]
	if _, _, err := s.DeleteMessage(ctx, third.ID, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		after, before int64
		limit         int
		want          []int64
	}{
		{0, 0, 100, []int64{1, 2, 3, 4, 5, 6}},
		{2, 0, 100, []int64{3, 4, 5, 6}},
		{2, 5, 100, []int64{3, 4}},
		{2, -1, 100, []int64{3, 4, 5, 6}},
		{0, 0, 2, []int64{1, 2}},
		{3, 0, 2, []int64{4, 5}},
		{6, 0, 100, nil},
		{2, 3, 100, nil},
		{0, 0, 0, nil},
	}
	for _, tt := range tests {
		got, err := s.MessagesBySeq(ctx, conv, tt.after, tt.before, tt.limit)
		if err != nil || got == nil || !slices.Equal(seqs(got), oneOf(tt.want)) {
			t.Errorf("after %d before %d limit %d: %v %v, want %v", tt.after, tt.before, tt.limit, seqs(got), err, tt.want)
		}
	}
	got, _ := s.MessagesBySeq(ctx, conv, 2, 4, 10)
	if len(got) != 1 || !got[0].IsDeleted || got[0].Content != "" || got[0].ID != third.ID {
		t.Errorf("tombstone: %+v", got)
	}
	if got, err := s.MessagesBySeq(ctx, 999999, 0, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("unknown conversation: %v %v", got, err)
	}
}

func oneOf(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// testSeqConcurrent has several goroutines insert batches at once through
// two Stores on one database (two nodes), into the same conversations.
func testSeqConcurrent(t *testing.T, open func(t *testing.T) chat.Store) {
	nodes := []chat.Store{open(t), open(t)}
	s := nodes[0]
	ctx := context.Background()
	const writers, batches = 8, 15
	users := make([]chat.User, writers)
	for i := range users {
		users[i] = mustUser(t, s, fmt.Sprintf("user%d", i))
	}
	convs := []int64{mustConversation(t, s, true, users...), mustConversation(t, s, true, users...), mustConversation(t, s, true, users...)}
	slices.Reverse(convs[:2]) // not in id order within a batch

	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := map[int64][]chat.Message{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := nodes[w%len(nodes)]
			for n := range batches {
				var batch []chat.NewMessage
				for k := range 1 + (w+n)%5 {
					batch = append(batch, chat.NewMessage{
						ConversationID: convs[(w+n+k)%len(convs)], Sender: users[w].Lite(),
						Content: fmt.Sprintf("%d/%d/%d", w, n, k), ClientID: fmt.Sprintf("%d-%d", n, k), At: t0,
					})
				}
				res, err := node.InsertMessages(ctx, batch)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				for i, r := range res {
					if r.Err != nil || !r.Created {
						t.Errorf("writer %d message %d: %+v", w, i, r)
						continue
					}
					stored[r.Message.ConversationID] = append(stored[r.Message.ConversationID], r.Message)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, conv := range convs {
		n := int64(len(stored[conv]))
		got := all(t, nodes[1], conv)
		if !slices.Equal(seqs(got), oneTo(n)) {
			t.Errorf("conversation %d: seqs %v, want 1..%d", conv, seqs(got), n)
		}
		if !slices.IsSorted(ids(got)) {
			t.Errorf("conversation %d: ids %v not in seq order", conv, ids(got))
		}
		// What each writer was told is what is stored.
		bySeq := map[int64]int64{}
		for _, m := range got {
			bySeq[m.Seq] = m.ID
		}
		for _, m := range stored[conv] {
			if bySeq[m.Seq] != m.ID {
				t.Errorf("conversation %d: told seq %d for id %d, stored id %d", conv, m.Seq, m.ID, bySeq[m.Seq])
			}
		}
		if last, err := lastSeq(ctx, nodes[1], conv); err != nil || last != n {
			t.Errorf("conversation %d: last seq %d %v, want %d", conv, last, err, n)
		}
	}
}
