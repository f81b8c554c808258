package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db/postgres"
	"github.com/confab/confab/db/postgres/pgtest"
)

func TestUnavailable_Classifies(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want chat.Code // "" for "unchanged"
	}{
		{"nil", nil, ""},
		{"deadline", fmt.Errorf("user by id: %w", context.DeadlineExceeded), chat.CodeUnavailable},
		{"cut mid-answer", fmt.Errorf("insert: %w", io.ErrUnexpectedEOF), chat.CodeUnavailable},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, chat.CodeUnavailable},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, chat.CodeUnavailable},
		{"connection exception", &pgconn.PgError{Code: "08006"}, chat.CodeUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, chat.CodeUnavailable},
		{"a statement's own error", &pgconn.PgError{Code: "42703"}, ""},
		{"unique violation", &pgconn.PgError{Code: "23505"}, ""},
		{"no rows", pgx.ErrNoRows, ""},
		{"not found", chat.ErrNotFound, chat.CodeNotFound},
		{"already coded", fmt.Errorf("send: %w", chat.ErrMaybeStored), chat.CodeUnavailable},
		{"anything else", errors.New("scan: cannot assign"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := postgres.Unavailable(tt.err)
			if tt.want == "" {
				if got != tt.err {
					t.Errorf("Unavailable(%v) = %v, want it unchanged", tt.err, got)
				}
				return
			}
			var ce *chat.Error
			if !errors.As(got, &ce) || ce.Code != tt.want {
				t.Fatalf("Unavailable(%v) = %v, want code %s", tt.err, got, tt.want)
			}
			if tt.want == chat.CodeUnavailable && !errors.Is(got, tt.err) {
				t.Errorf("the cause %v is lost in %v", tt.err, got)
			}
		})
	}
}

// cutter forwards TCP connections to a target until cut: then it closes
// every connection it holds and refuses new ones, as a database that went
// away would, until uncut. Armed with cutAfterCommit, it lets the next
// group commit's COMMIT reach the database and closes that connection
// before the answer comes back: a commit whose outcome the client cannot
// know.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	// commitCut is armed by cutAfterCommit, and closed when it has cut.
	commitCut chan struct{}
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		c.setCut(true)
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.forward(in)
			}()
		}
	}()
	return c
}

func (c *cutter) forward(in net.Conn) {
	c.mu.Lock()
	if c.cut {
		c.mu.Unlock()
		in.Close()
		return
	}
	out, err := net.Dial("tcp", c.target)
	if err != nil {
		c.mu.Unlock()
		in.Close()
		return
	}
	c.conns[in], c.conns[out] = true, true
	c.mu.Unlock()
	done := make(chan struct{}, 2)
	var mute atomic.Bool // the database's answers are no longer passed on
	go func() { c.upstream(in, out, &mute); done <- struct{}{} }()
	go func() { io.Copy(in, mutable{out, &mute}); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	<-done
	c.mu.Lock()
	delete(c.conns, in)
	delete(c.conns, out)
	c.mu.Unlock()
}

// upstream copies what the client sends. pgx prepares a batch's
// statements first (the text "COMMIT" goes by once, in the group commit's
// first batch on a connection), then executes them in one write: when
// armed, the write after the one that named COMMIT is the execution, and
// the connection is closed once the database had time to commit it.
func (c *cutter) upstream(in, out net.Conn, mute *atomic.Bool) {
	buf := make([]byte, 64<<10)
	named := false
	for {
		n, err := in.Read(buf)
		if n > 0 {
			c.mu.Lock()
			armed := c.commitCut
			c.mu.Unlock()
			if armed != nil && named {
				mute.Store(true) // the client never hears how it ended
			}
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
			switch {
			case armed == nil:
			case named:
				time.Sleep(200 * time.Millisecond) // the database commits
				in.Close()
				out.Close()
				c.mu.Lock()
				c.commitCut = nil
				c.mu.Unlock()
				close(armed)
				return
			case bytes.Contains(buf[:n], []byte("COMMIT")):
				named = true
			}
		}
		if err != nil {
			return
		}
	}
}

// mutable reads a connection, and hides what it read once muted.
type mutable struct {
	net.Conn
	mute *atomic.Bool
}

func (m mutable) Read(p []byte) (int, error) {
	for {
		n, err := m.Conn.Read(p)
		if !m.mute.Load() || err != nil {
			return n, err
		}
	}
}

// cutAfterCommit arms the cutter for the next group commit on a new
// connection; the channel is closed once it has cut.
func (c *cutter) cutAfterCommit() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commitCut = make(chan struct{})
	return c.commitCut
}

func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for conn := range c.conns {
			conn.Close()
		}
	}
}

// openBehindCutter opens a store that reaches its database through a
// cutter (with query added to its URL), with alice and bob in a
// conversation.
func openBehindCutter(t *testing.T, query string) (*postgres.Store, *cutter, chat.User, int64) {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cut := newCutter(t, u.Host)
	u.Host = cut.ln.Addr().String()
	if query != "" {
		u.RawQuery += "&" + query
	}
	s := mustOpen(t, u.String())
	ctx := context.Background()
	alice, err := s.CreateUser(ctx, "alice", "Alice", "x", t0)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx, "bob", "Bob", "x", t0)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := s.CreateConversation(ctx, chat.NewConversation{UserIDs: []int64{alice.ID, bob.ID}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	return s, cut, alice, conv
}

func TestStore_DatabaseGoneAndBack(t *testing.T) {
	s, cut, alice, conv := openBehindCutter(t, "")
	ctx := context.Background()
	send := func(clientID string) ([]chat.Inserted, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return s.InsertMessages(ctx, []chat.NewMessage{{ConversationID: conv,
			Sender:  chat.UserLite{ID: alice.ID, Username: "alice", DisplayName: "Alice"},
			Content: "hi " + clientID, ClientID: clientID, At: t0}})
	}
	if _, err := send("before"); err != nil {
		t.Fatal(err)
	}

	cut.setCut(true)
	start := time.Now()
	_, err := s.UserByID(ctx, alice.ID)
	if code := chat.ErrorCode(postgres.Unavailable(err)); code != chat.CodeUnavailable {
		t.Errorf("a read with the database gone: %v (code %q), want unavailable", err, code)
	}
	_, err = send("during")
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != chat.CodeUnavailable || ce.Detail != chat.ErrMaybeStored.Detail {
		t.Errorf("a send with the database gone: %v, want ErrMaybeStored's code and detail", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refused connections took %v to answer", took)
	}

	cut.setCut(false)
	// The pool makes new connections by itself: no reopening.
	res, err := send("during")
	if err != nil {
		t.Fatalf("a send after the database came back: %v", err)
	}
	if !res[0].Created || res[0].Message.Seq != 2 {
		t.Errorf("after the outage: %+v, want the message stored as seq 2", res[0])
	}
}

// TestStore_CommitOutcomeUnknown: the connection breaks after COMMIT went
// out and before its answer came back. The send is told it may have been
// stored; sent again with its client_id it comes back as the original,
// stored once.
func TestStore_CommitOutcomeUnknown(t *testing.T) {
	// One connection: the one the cut is armed for.
	s, cut, alice, conv := openBehindCutter(t, "pool_max_conns=1")
	ctx := context.Background()
	// A fresh connection, so that the group commit prepares its
	// statements on it and COMMIT goes by.
	s.Pool().Reset()
	cutDone := cut.cutAfterCommit()
	batch := []chat.NewMessage{{ConversationID: conv, Sender: chat.UserLite{ID: alice.ID, Username: "alice", DisplayName: "Alice"},
		Content: "did it commit?", ClientID: "c-1", At: t0}}
	_, err := s.InsertMessages(ctx, batch)
	select {
	case <-cutDone:
	case <-time.After(5 * time.Second):
		t.Fatalf("the connection was not cut after COMMIT (insert: %v)", err)
	}
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != chat.CodeUnavailable || ce.Detail != chat.ErrMaybeStored.Detail {
		t.Fatalf("a commit cut on its way back: %v, want ErrMaybeStored's code and detail", err)
	}

	res, err := s.InsertMessages(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Created || res[0].Message.Seq != 1 {
		t.Errorf("sent again: %+v, want the original (created false, seq 1): the first commit went through", res[0])
	}
	page, err := s.Messages(ctx, conv, chat.PageQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 1 {
		t.Errorf("%d messages stored, want 1", len(page.Results))
	}
}
