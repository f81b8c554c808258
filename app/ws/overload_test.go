package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// fsyncStall is the server's store, except that while stalled every
// group commit hangs until release, whatever its deadline says: an fsync
// the disk does not finish, which nothing in the process can interrupt.
// Once released, the commit goes through (the fsync returned), so every
// send that was in it is stored.
type fsyncStall struct {
	chat.Store
	entered chan struct{} // a stalled commit began
	release chan struct{} // closed: the disk answers again
	once    sync.Once
}

func newFsyncStall() *fsyncStall {
	return &fsyncStall{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (s *fsyncStall) InsertMessages(ctx context.Context, batch []chat.NewMessage) ([]chat.Inserted, error) {
	select {
	case <-s.release:
	default:
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-s.release
	}
	return s.Store.InsertMessages(context.WithoutCancel(ctx), batch)
}

func (s *fsyncStall) unstall() { s.once.Do(func() { close(s.release) }) }

// restSend posts a message with a client_id and returns the status, the
// Retry-After header and the body; safe on any goroutine.
func restSend(s *servertest.Server, from servertest.User, conv int64, clientID string) (int, string, string, error) {
	r, err := s.Request(http.MethodPost, "/api/conversations/"+itoa(conv)+"/messages/", from.Access,
		map[string]string{"content": "stalled " + clientID, "client_id": clientID})
	if err != nil {
		return 0, "", "", err
	}
	return r.Status, r.Header.Get("Retry-After"), string(r.Body), nil
}

// goroutinesAtMost waits for the process to have at most n goroutines.
func goroutinesAtMost(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%s: %d goroutines, want at most %d:\n%s", what, runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		http.DefaultClient.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
}

// While the disk stalls a commit, the queue in front of the group commit
// fills to COMMIT_QUEUE; past it a REST send gets 503 overloaded with
// Retry-After and a socket's new_message an error frame, at once (while
// the stall is still in force), and nothing piles up. When the disk
// answers again every queued send commits and is acknowledged, nothing
// acknowledged is missing, and sends are taken again.
func TestStalledCommit_FullQueueRefusesAtOnceAndLosesNothing(t *testing.T) {
	const queue = 8
	stall := newFsyncStall()
	s := servertest.Start(t,
		servertest.WithConfig(func(c *config.Config) { c.CommitQueue = queue }),
		servertest.WithStore(func(st chat.Store) chat.Store { stall.Store = st; return stall }))
	t.Cleanup(stall.unstall) // runs before the server closes: its writer must not hang
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	watcher := dial(t, s, "/ws/chat/", bob.Access)
	watcher.join(conv)
	sender := dial(t, s, "/ws/chat/", alice.Access)
	http.DefaultClient.CloseIdleConnections()
	base := runtime.NumGoroutine()

	type result struct {
		clientID, retryAfter, body string
		status                     int
		err                        error
	}
	results := make(chan result, queue+1)
	post := func(clientID string) {
		st, ra, body, err := restSend(s, alice, conv, clientID)
		results <- result{clientID, ra, body, st, err}
	}

	// The writer takes the first send and its commit stalls; the next
	// queue sends wait behind it.
	go post("held")
	select {
	case <-stall.entered:
	case <-time.After(waitFor):
		t.Fatal("the first send never reached the commit")
	}
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for s.Chat.Queued() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d sends queued, want %d", s.Chat.Queued(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	queued(0) // the held send counts as queued until its sender sees it taken
	for i := range queue {
		go post(fmt.Sprint("queued-", i))
	}
	queued(queue)
	filled := runtime.NumGoroutine()

	// Full: refused, and answered while the commit is still stalled.
	const extra = 40
	for i := range extra {
		st, ra, body, err := restSend(s, alice, conv, fmt.Sprint("refused-", i))
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"overloaded"`) || ra != "1" {
			t.Fatalf("send past a full queue: %d Retry-After %q %s; want 503 overloaded, Retry-After 1", st, ra, body)
		}
	}
	sender.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "too many",
		"client_id": "refused-ws", "request_id": "over"})
	if f := sender.next("error"); f["code"] != "overloaded" || f["request_id"] != "over" {
		t.Fatalf("new_message past a full queue: %v, want an error frame with code overloaded", f)
	}
	select {
	case <-stall.release:
		t.Fatal("the stall ended before the refusals were checked")
	case r := <-results:
		t.Fatalf("send %s answered (%d %s) while its commit is stalled", r.clientID, r.status, r.body)
	default:
	}
	// Refusals cost no goroutine that outlives them: the count is back
	// where the full queue left it (a few for the HTTP client's
	// connection, and the clients' own).
	goroutinesAtMost(t, filled+4, "after refusing sends during the stall")

	metrics := s.Do(t, http.MethodGet, "/metrics", "", nil)
	if want := fmt.Sprintf(`confab_sends_refused_total{reason="queue_full"} %d`, extra+1); !strings.Contains(string(metrics.Body), want) {
		t.Errorf("metrics lack %s", want)
	}
	if want := fmt.Sprintf("confab_sends_queued %d", queue); !strings.Contains(string(metrics.Body), want) {
		t.Errorf("metrics lack %s", want)
	}
	if logs := s.Logs.String(); strings.Count(logs, "sends refused") != 1 {
		t.Errorf("want exactly one (rate-limited) log line for %d refused sends, got:\n%s", extra+1, logs)
	}

	// The disk answers: every send that was held or queued is stored and
	// acknowledged.
	stall.unstall()
	acked := map[string]bool{}
	for range queue + 1 {
		r := <-results
		if r.err != nil || r.status != http.StatusCreated {
			t.Errorf("send %s after the stall: %d %s %v, want 201", r.clientID, r.status, r.body, r.err)
			continue
		}
		acked[r.clientID] = true
	}
	stored := map[string]bool{}
	page := s.Do(t, http.MethodGet, "/api/conversations/"+itoa(conv)+"/messages/?limit=100", alice.Access, nil)
	var hist struct {
		Results []struct {
			ClientID string `json:"client_id"`
		} `json:"results"`
	}
	page.JSON(t, &hist)
	for _, m := range hist.Results {
		stored[m.ClientID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged send %s is not stored", id)
		}
	}
	for id := range stored {
		if strings.HasPrefix(id, "refused-") {
			t.Errorf("refused send %s was stored", id)
		}
	}
	for range queue + 1 {
		watcher.next("new_message")
	}

	// Sends are taken again, over both edges.
	if st, _, body, err := restSend(s, alice, conv, "after"); err != nil || st != http.StatusCreated {
		t.Fatalf("send after the stall: %d %s %v", st, body, err)
	}
	sender.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "after", "client_id": "after-ws"})
	if f := sender.next("message_ack"); f["client_id"] != "after-ws" {
		t.Fatalf("ack after the stall: %v", f)
	}
	if s.Chat.Queued() != 0 {
		t.Errorf("%d sends still queued", s.Chat.Queued())
	}
	goroutinesAtMost(t, base+4, "after the stall")
}
