package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/confab/confab/app/server/servertest"
)

func TestDeletedUser_OthersKeepTheirConversations(t *testing.T) {
	s := servertest.Start(t)
	gone, b, c := s.Register(t, "leaver"), s.Register(t, "stayer"), s.Register(t, "third")
	direct := s.Conversation(t, gone, b)
	group := s.Conversation(t, b, gone, c)
	kept := s.Send(t, b, direct, "from b")
	s.Send(t, gone, direct, "last word")
	gkept := s.Send(t, c, group, "from c")
	s.Send(t, gone, group, "bye")

	if err := s.Store.DeleteUser(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, http.MethodGet, "/api/conversations/", b.Access, nil)
	wantStatus(t, r, http.StatusOK)
	list := r.Map(t)["results"].([]any)
	if got := ids(list); !slices.Equal(got, []int64{group, direct}) && !slices.Equal(got, []int64{direct, group}) {
		t.Fatalf("b's conversations %v, want both %d and %d", got, direct, group)
	}
	for conv, last := range map[int64]int64{direct: kept, group: gkept} {
		r := s.Do(t, http.MethodGet, p("/api/conversations/%d/", conv), b.Access, nil)
		wantStatus(t, r, http.StatusOK)
		cm := wantConversation(t, r.Map(t))
		if lm, _ := cm["last_message"].(map[string]any); num(lm["id"]) != last {
			t.Errorf("conversation %d: last_message %v, want message %d", conv, cm["last_message"], last)
		}
		wantStatus(t, s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), b.Access, nil), http.StatusOK)
	}
	// The conversation goes on.
	s.Send(t, b, group, "still here")
}
