package ws_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// A client that was away rejoins with since_version: the messages sent,
// edited and deleted meanwhile come first, in version order, in their
// current state, then joined with the conversation's version; live
// changes follow once each.
func TestSinceVersion_ReplaysWhatChangedWhileAway(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	m1 := s.Send(t, alice, conv, "one")
	m2 := s.Send(t, alice, conv, "two")

	c := dial(t, s, "/ws/chat/", bob.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv})
	joined := c.next("joined")
	since := joined.int("version")
	if since <= 0 {
		t.Fatalf("joined = %v, want a version", joined)
	}
	c.close()

	// While bob is away.
	m3 := s.Send(t, alice, conv, "three")
	if r := s.Do(t, http.MethodPatch, fmt.Sprintf("/api/messages/%d/", m1), alice.Access, map[string]any{"content": "one, edited"}); r.Status != http.StatusOK {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, http.MethodDelete, fmt.Sprintf("/api/messages/%d/", m2), alice.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}

	c = dial(t, s, "/ws/chat/", bob.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": since})
	var got []string
	var last int64
	for {
		f := c.nextAny()
		if f.typ() == "joined" {
			if f["recovered"] != true || f.int("missed") != 3 || f.int("version") <= since {
				t.Fatalf("joined = %v, want recovered, 3 missed and a newer version", f)
			}
			last = f.int("version")
			break
		}
		m := f.obj("message")
		got = append(got, fmt.Sprintf("%s %d %q %v", f.typ(), m.int("id"), m["content"], m["is_deleted"]))
	}
	want := []string{
		fmt.Sprintf("new_message %d %q false", m3, "three"),
		fmt.Sprintf("message_updated %d %q false", m1, "one, edited"),
		fmt.Sprintf("message_deleted %d %q true", m2, ""),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replay:\n%v\nwant\n%v", got, want)
	}

	// Live from here, each change once.
	if r := s.Do(t, http.MethodPatch, fmt.Sprintf("/api/messages/%d/", m3), alice.Access, map[string]any{"content": "three, edited"}); r.Status != http.StatusOK {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	f := c.next("message_updated")
	if m := f.obj("message"); m.int("id") != m3 || m.int("version") <= last {
		t.Fatalf("live edit = %v, want message %d past version %d", f, m3, last)
	}

	// Nothing new: an empty replay, and the same version.
	c2 := dial(t, s, "/ws/chat/", bob.Access)
	c2.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": f.obj("message").int("version")})
	if f := c2.nextAny(); f.typ() != "joined" || f.int("missed") != 0 {
		t.Fatalf("frame = %v, want joined with nothing missed", f)
	}
	c2.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": -1})
	if f := c2.next("error"); f["code"] != "invalid" {
		t.Fatalf("since_version -1: %v, want invalid", f)
	}
}

// Messages are sent and edited without pause while a client drops and
// rejoins with since_version, again and again: it ends with exactly what
// is stored, each message created once.
func TestSinceVersion_RaceWithSendsAndEdits(t *testing.T) {
	s := servertest.Start(t)
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ids []int64
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id, err := postMessage(s, alice, conv, fmt.Sprintf("m%d", i))
			if err != nil {
				t.Errorf("sender: %v", err)
				return
			}
			ids = append(ids, id)
			if i%3 == 2 {
				target := ids[(i*7)%len(ids)]
				r, err := s.Request(http.MethodPatch, fmt.Sprintf("/api/messages/%d/", target), alice.Access, map[string]any{"content": fmt.Sprintf("edit %d", i)})
				if err != nil || r.Status != http.StatusOK {
					t.Errorf("edit: %v %v", err, r.Status)
					return
				}
			}
		}
	}()

	content := map[int64]string{}
	var since int64
	apply := func(f frame) {
		m := f.obj("message")
		id := m.int("id")
		if _, ok := content[id]; ok && f.typ() == "new_message" {
			t.Fatalf("message %d created twice", id)
		}
		if _, ok := content[id]; !ok && f.typ() != "new_message" {
			t.Fatalf("%s for message %d never created", f.typ(), id)
		}
		content[id] = m["content"].(string)
		since = max(since, m.int("version"))
	}
	for round := range 6 {
		c := dial(t, s, "/ws/chat/", bob.Access)
		c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": since})
		for {
			f := c.nextAny()
			if f.typ() == "joined" {
				if f["recovered"] != true {
					t.Fatalf("round %d: %v", round, f)
				}
				since = max(since, f.int("version"))
				break
			}
			if f.typ() != "notification" { // of sends before the join
				apply(f)
			}
		}
		for range 15 + round*5 {
			f := c.nextAny()
			switch f.typ() {
			case "new_message", "message_updated":
				apply(f)
			}
		}
		c.close()
		time.Sleep(15 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	c := dial(t, s, "/ws/chat/", bob.Access)
	c.send(map[string]any{"type": "join_conversation", "conversation_id": conv, "since_version": since})
	for {
		f := c.nextAny()
		if f.typ() == "joined" {
			break
		}
		if f.typ() != "notification" {
			apply(f)
		}
	}

	r := s.Do(t, http.MethodGet, fmt.Sprintf("/api/conversations/%d/messages/?limit=100", conv), bob.Access, nil)
	stored := map[int64]string{}
	for {
		page := r.Map(t)
		for _, m := range page["results"].([]any) {
			m := m.(map[string]any)
			stored[int64(m["id"].(float64))] = m["content"].(string)
		}
		if page["has_more"] != true {
			break
		}
		first := page["results"].([]any)[0].(map[string]any)
		r = s.Do(t, http.MethodGet, fmt.Sprintf("/api/conversations/%d/messages/?limit=100&before=%d", conv, int64(first["id"].(float64))), bob.Access, nil)
	}
	if len(stored) != len(content) {
		t.Fatalf("bob has %d messages, %d are stored", len(content), len(stored))
	}
	for id, text := range stored {
		if content[id] != text {
			t.Errorf("message %d: bob has %q, stored %q", id, content[id], text)
		}
	}
}
