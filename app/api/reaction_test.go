package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

// reactionPath is the path of emoji's reaction to message id, the emoji
// path-escaped as a client escapes it.
func reactionPath(id int64, emoji string) string {
	return p("/api/messages/%d/reactions/%s/", id, url.PathEscape(emoji))
}

// react PUTs (add) or DELETEs u's reaction and returns the answer's
// message.
func react(t *testing.T, s *servertest.Server, u servertest.User, id int64, emoji string, add bool) map[string]any {
	t.Helper()
	method := http.MethodPut
	if !add {
		method = http.MethodDelete
	}
	r := s.Do(t, method, reactionPath(id, emoji), u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	return wantMessage(t, r.Map(t))
}

// reactionList is a message's reactions as [emoji, count, me] triples,
// me "-" when it is left out.
func reactionList(m map[string]any) [][3]any {
	out := [][3]any{}
	for _, v := range m["reactions"].([]any) {
		r := v.(map[string]any)
		me, ok := r["me"]
		if !ok {
			me = "-"
		}
		out = append(out, [3]any{r["emoji"], num(r["count"]), me})
	}
	return out
}

func wantReactions(t *testing.T, what string, m map[string]any, want ...[3]any) {
	t.Helper()
	if want == nil {
		want = [][3]any{}
	}
	if got := reactionList(m); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: reactions %v, want %v", what, got, want)
	}
}

// historyMessage is message id as u's history shows it.
func historyMessage(t *testing.T, s *servertest.Server, u servertest.User, conv, id int64) map[string]any {
	t.Helper()
	r := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	for _, v := range r.Map(t)["results"].([]any) {
		if m := wantMessage(t, v); num(m["id"]) == id {
			return m
		}
	}
	t.Fatalf("message %d is not in the history", id)
	return nil
}

func conversationVersion(t *testing.T, s *servertest.Server, u servertest.User, conv int64) int64 {
	t.Helper()
	r := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	return num(r.Map(t)["version"])
}

// TestReactions_PutAndDelete: a PUT adds the caller's reaction and a
// DELETE takes it back, each answering the message with its reactions
// (count, and me for the caller) and publishing one reaction_updated
// event that takes a new version for the message and its conversation.
// Doing either again changes nothing: the same answer, no event, no new
// version. Every reader sees the counts, with their own me; an edit
// keeps the reactions, and its event carries them without me.
func TestReactions_PutAndDelete(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	a, b, c := s.Register(t, "ria"), s.Register(t, "rob"), s.Register(t, "roy")
	conv := s.Conversation(t, a, b, c)
	msg := s.Send(t, a, conv, "react to this")
	events := listen(t, s, hub.ConversationTopic(conv))
	before := conversationVersion(t, s, a, conv)
	r := s.Do(t, http.MethodGet, "/api/sync/", c.Access, nil)
	wantStatus(t, r, http.StatusOK)
	cursor := r.Map(t)["cursor"].(string)

	m := react(t, s, b, msg, "👍", true)
	wantReactions(t, "b's 👍", m, [3]any{"👍", int64(1), true})
	v1 := num(m["version"])
	if v1 <= before || conversationVersion(t, s, a, conv) != v1 {
		t.Errorf("after a reaction: message version %d, conversation %d; want both past %d", v1, conversationVersion(t, s, a, conv), before)
	}
	evs := events.ofType(chat.EventReactionUpdated)
	want := fmt.Sprintf(`{"type":"reaction_updated","conversation_id":%d,"message_id":%d,"emoji":"👍","count":1,"user_id":%d,"added":true,"version":%d}`,
		conv, msg, b.ID, v1)
	if len(evs) != 1 || string(evs[0].Data) != want || evs[0].ConversationID != conv || evs[0].Version != v1 {
		t.Fatalf("events %v, want one %s", evs, want)
	}

	// Again: the same answer, and nothing published or versioned.
	m = react(t, s, b, msg, "👍", true)
	wantReactions(t, "b's 👍 again", m, [3]any{"👍", int64(1), true})
	if num(m["version"]) != v1 || conversationVersion(t, s, a, conv) != v1 || len(events.ofType(chat.EventReactionUpdated)) != 1 {
		t.Errorf("a repeated PUT: version %d (conversation %d), %d events; want %d and 1",
			num(m["version"]), conversationVersion(t, s, a, conv), len(events.ofType(chat.EventReactionUpdated)), v1)
	}

	clk.Advance(time.Second)
	m = react(t, s, c, msg, "🎉", true)
	wantReactions(t, "c's 🎉", m, [3]any{"👍", int64(1), false}, [3]any{"🎉", int64(1), true})
	clk.Advance(time.Second)
	m = react(t, s, c, msg, "👍", true)
	wantReactions(t, "c's 👍", m, [3]any{"👍", int64(2), true}, [3]any{"🎉", int64(1), true})

	wantReactions(t, "a's history", historyMessage(t, s, a, conv, msg), [3]any{"👍", int64(2), false}, [3]any{"🎉", int64(1), false})
	wantReactions(t, "b's history", historyMessage(t, s, b, conv, msg), [3]any{"👍", int64(2), true}, [3]any{"🎉", int64(1), false})
	r = s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), c.Access, nil)
	wantStatus(t, r, http.StatusOK)
	wantReactions(t, "c's conversation's last_message", wantConversation(t, r.Map(t))["last_message"].(map[string]any),
		[3]any{"👍", int64(2), true}, [3]any{"🎉", int64(1), true})
	r = s.Do(t, http.MethodGet, "/api/conversations/", b.Access, nil)
	wantStatus(t, r, http.StatusOK)
	wantReactions(t, "b's list's last_message", wantConversation(t, r.Map(t)["results"].([]any)[0])["last_message"].(map[string]any),
		[3]any{"👍", int64(2), true}, [3]any{"🎉", int64(1), false})

	// The order is that of the oldest reaction of each emoji: with b's
	// gone, c's 👍 is younger than c's 🎉.
	m = react(t, s, b, msg, "👍", false)
	wantReactions(t, "b's 👍 taken back", m, [3]any{"🎉", int64(1), false}, [3]any{"👍", int64(1), false})
	v2 := num(m["version"])
	evs = events.ofType(chat.EventReactionUpdated)
	want = fmt.Sprintf(`{"type":"reaction_updated","conversation_id":%d,"message_id":%d,"emoji":"👍","count":1,"user_id":%d,"added":false,"version":%d}`,
		conv, msg, b.ID, v2)
	if len(evs) != 4 || string(evs[3].Data) != want {
		t.Fatalf("%d events, the last %s; want 4, the last %s", len(evs), evs[len(evs)-1].Data, want)
	}
	m = react(t, s, b, msg, "👍", false)
	wantReactions(t, "b's 👍 taken back again", m, [3]any{"🎉", int64(1), false}, [3]any{"👍", int64(1), false})
	if num(m["version"]) != v2 || len(events.ofType(chat.EventReactionUpdated)) != 4 {
		t.Errorf("a repeated DELETE: version %d, %d events; want %d and 4", num(m["version"]), len(events.ofType(chat.EventReactionUpdated)), v2)
	}
	// The last one of an emoji goes, and the emoji with it.
	m = react(t, s, c, msg, "🎉", false)
	wantReactions(t, "🎉 gone", m, [3]any{"👍", int64(1), true})

	// The sync feed has the message, changed by the reactions, with
	// them and c's me.
	r = s.Do(t, http.MethodGet, "/api/sync/?since="+url.QueryEscape(cursor), c.Access, nil)
	wantStatus(t, r, http.StatusOK)
	synced := r.Map(t)["messages"].([]any)
	if len(synced) != 1 {
		t.Fatalf("sync: %d messages, want the one reacted to", len(synced))
	}
	wantReactions(t, "c's sync", wantMessage(t, synced[0]), [3]any{"👍", int64(1), true})

	// An edit keeps them: the answer with me, the event without.
	r = s.Do(t, http.MethodPatch, p("/api/messages/%d/", msg), a.Access, map[string]string{"content": "edited"})
	wantStatus(t, r, http.StatusOK)
	wantReactions(t, "the edit's answer", wantMessage(t, r.Map(t)), [3]any{"👍", int64(1), false})
	upd := events.ofType(chat.EventMessageUpdated)
	if len(upd) != 1 {
		t.Fatalf("%d message_updated events", len(upd))
	}
	var ev struct{ Message map[string]any }
	if err := json.Unmarshal(upd[0].Data, &ev); err != nil {
		t.Fatal(err)
	}
	wantReactions(t, "message_updated", wantMessage(t, ev.Message), [3]any{"👍", int64(1), "-"})
}

// TestReactions_EmojiSurvivesThePath: an emoji of several code points
// (skin tone, ZWJ family, flag, keycap, VS16) comes through the path as
// it was sent, escaped in upper or lower case, with or without the
// trailing slash.
func TestReactions_EmojiSurvivesThePath(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "pia"), s.Register(t, "pat")
	conv := s.Conversation(t, a, b)
	msg := s.Send(t, a, conv, "paths")
	var want [][3]any
	for _, e := range []string{"👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️", "🏳️‍🌈"} {
		m := react(t, s, b, msg, e, true)
		want = append(want, [3]any{e, int64(1), true})
		wantReactions(t, e, m, want...)
	}
	for _, path := range []string{
		p("/api/messages/%d/reactions/%%f0%%9f%%91%%8d/", msg),
		p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D", msg),
	} {
		r := s.Do(t, http.MethodPut, path, a.Access, nil)
		wantStatus(t, r, http.StatusOK)
		list := reactionList(r.Map(t))
		if last := list[len(list)-1]; last != [3]any{"👍", int64(1), true} {
			t.Errorf("PUT %s: reactions %v, want 👍 last", path, list)
		}
	}
}

// TestReactions_RefusesWhatIsNotOneEmoji: letters, digits, two emoji,
// text with an emoji, nothing: a 400 on emoji, with nothing stored or
// published.
func TestReactions_RefusesWhatIsNotOneEmoji(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "eve"), s.Register(t, "eli")
	conv := s.Conversation(t, a, b)
	msg := s.Send(t, a, conv, "emoji only")
	events := listen(t, s, hub.ConversationTopic(conv))
	for name, e := range map[string]string{
		"a letter": "a", "a word": "like", "a digit": "7", "two emoji": "👍👍", "text and an emoji": "ok👍",
		"a space": " ", "a skin tone alone": "🏽", "two flags": "🇫🇷🇩🇪", "an emoji and a space": "👍 ",
	} {
		t.Run(name, func(t *testing.T) {
			wantInvalid(t, s.Do(t, http.MethodPut, reactionPath(msg, e), b.Access, nil), "emoji")
			wantInvalid(t, s.Do(t, http.MethodDelete, reactionPath(msg, e), b.Access, nil), "emoji")
		})
	}
	t.Run("empty", func(t *testing.T) {
		wantInvalid(t, s.Do(t, http.MethodPut, p("/api/messages/%d/reactions//", msg), b.Access, nil), "emoji")
	})
	t.Run("not UTF-8", func(t *testing.T) {
		wantInvalid(t, s.Do(t, http.MethodPut, p("/api/messages/%d/reactions/%%FF/", msg), b.Access, nil), "emoji")
	})
	wantReactions(t, "after the refusals", historyMessage(t, s, a, conv, msg))
	if n := len(events.ofType(chat.EventReactionUpdated)); n != 0 {
		t.Errorf("%d events published", n)
	}
}

// TestReactions_AtMostTwentyEmoji: the 21st distinct emoji on a message
// is a 400 on emoji; more users reacting with one already there is fine.
func TestReactions_AtMostTwentyEmoji(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "mia"), s.Register(t, "moe")
	conv := s.Conversation(t, a, b)
	msg := s.Send(t, a, conv, "so many")
	emojis := []rune("😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩")
	for _, e := range emojis[:chat.MaxReactions] {
		react(t, s, a, msg, string(e), true)
	}
	wantInvalid(t, s.Do(t, http.MethodPut, reactionPath(msg, string(emojis[chat.MaxReactions])), b.Access, nil), "emoji")
	m := react(t, s, b, msg, "😀", true)
	if list := reactionList(m); len(list) != chat.MaxReactions || list[0] != [3]any{"😀", int64(2), true} {
		t.Errorf("reactions %v, want %d with 😀 twice first", list, chat.MaxReactions)
	}
	// One taken back leaves room for another.
	react(t, s, a, msg, "🙂", false)
	react(t, s, b, msg, string(emojis[chat.MaxReactions]), true)
}

// TestReactions_DeletedMessage: deleting a message drops its reactions,
// and a tombstone takes none (400 on message); an unknown message is a
// 404.
func TestReactions_DeletedMessage(t *testing.T) {
	s := servertest.Start(t)
	a, b := s.Register(t, "dee"), s.Register(t, "dan")
	conv := s.Conversation(t, a, b)
	msg := s.Send(t, a, conv, "soon gone")
	react(t, s, b, msg, "👍", true)
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", msg), a.Access, nil), http.StatusNoContent)
	wantReactions(t, "the tombstone", historyMessage(t, s, b, conv, msg))
	wantInvalid(t, s.Do(t, http.MethodPut, reactionPath(msg, "👍"), b.Access, nil), "message")
	wantInvalid(t, s.Do(t, http.MethodDelete, reactionPath(msg, "👍"), b.Access, nil), "message")
	wantError(t, s.Do(t, http.MethodPut, reactionPath(999999, "👍"), b.Access, nil), http.StatusNotFound, "not_found")
}
