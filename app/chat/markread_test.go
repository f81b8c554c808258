package chat_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/confab/confab/app/chat"
)

// unreadableStore fails every Message read, as a database that stopped
// answering between two calls would.
type unreadableStore struct{ *countingStore }

var errGone = &chat.Error{Code: chat.CodeUnavailable, Detail: "The database is not answering."}

func (s unreadableStore) Message(context.Context, int64) (chat.Message, error) {
	return chat.Message{}, fmt.Errorf("message: %w", errGone)
}

func TestMarkRead_StoreFailureIsNotTheClientsFault(t *testing.T) {
	f := newFixtureWith(t, 2, chat.Options{}, wrapping{store: func(c *countingStore) chat.Store { return unreadableStore{c} }})
	conv := f.group(t)
	m, _, err := f.svc.SendMessage(context.Background(), f.users[0], conv, "hi", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.MarkRead(context.Background(), f.users[1].ID, conv, m.ID)
	if code := chat.ErrorCode(err); code != chat.CodeUnavailable {
		t.Errorf("MarkRead while the message cannot be read: %v (code %q), want unavailable, not invalid", err, code)
	}
	// A message that does not exist is still the client's mistake.
	f2 := newFixture(t, 2)
	conv2 := f2.group(t)
	if _, err := f2.svc.MarkRead(context.Background(), f2.users[1].ID, conv2, 999); chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("MarkRead of a message that does not exist: %v, want invalid", err)
	}
}
