package systemtest

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	_ "modernc.org/sqlite" // the read-only integrity check opens the file itself

	"github.com/confab/confab/app/server/servertest"
)

// The crash test kills a real server process with SIGKILL at random
// moments while clients send over REST and the WebSocket, restarts it on
// the same files, and checks what a user would: nothing acknowledged is
// lost or doubled, a careful client's resend of an unanswered message
// never makes a second copy, ids keep growing, the file is intact, and a
// reader that reconnects with last_message_id gets every message once, in
// order. The schedule comes from a seed printed in the log; set
// CONFAB_CRASH_SEED to replay one.

const (
	crashRounds      = 30
	crashDefaultSeed = 20261127
)

// crashServer is one database served by a succession of processes.
type crashServer struct {
	t    *testing.T
	bin  string
	db   string
	env  []string
	logs *servertest.LogBuffer // every life's output, for failures

	url  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // what Wait returned, once done is closed
}

// launch starts a process on a fresh port without waiting for it.
func (s *crashServer) launch() {
	s.t.Helper()
	port := FreePort(s.t)
	s.url = "http://127.0.0.1:" + port
	s.cmd = exec.Command(s.bin, "serve")
	s.cmd.Env = append([]string{"HOST=127.0.0.1", "PORT=" + port, "DATABASE_PATH=" + s.db}, s.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done, cmd := make(chan struct{}), s.cmd
	s.done = done
	go func() {
		s.err = cmd.Wait()
		close(done)
	}()
}

// start launches a process and waits until /healthz answers.
func (s *crashServer) start() {
	s.t.Helper()
	s.launch()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			s.t.Fatalf("the server exited at start (%v):\n%s", s.err, s.logs)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the server did not answer /healthz:\n%s", s.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *crashServer) kill() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Fatal("the server survived SIGKILL for 10 s")
	}
}

// stop sends SIGTERM and requires a clean exit.
func (s *crashServer) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			s.t.Fatalf("exit after SIGTERM: %v\n%s", s.err, s.logs)
		}
	case <-time.After(20 * time.Second):
		s.t.Fatalf("still running 20 s after SIGTERM:\n%s", s.logs)
	}
}

// crashUser is an account with its access token, which must survive every
// restart: the signing key lives in the database.
type crashUser struct {
	id     int64
	name   string
	access string
}

// crashSend is one message a client tried to send.
type crashSend struct {
	sender   crashUser
	conv     int64
	clientID string
	content  string
}

// crashLedger is what the clients know: which sends were acknowledged
// (with the id the server gave), and which are in doubt because the
// server died before answering.
type crashLedger struct {
	mu      sync.Mutex
	sends   map[string]crashSend // every send ever tried, by client_id
	acked   map[string]int64     // client_id → acknowledged id
	inDoubt map[string]bool      // tried, not (yet) acknowledged
	// resent counts the resends of sends in doubt, by whether the
	// server had the message already (200) or made it then (201).
	resentFound, resentMade int
	// floor is the largest id acknowledged or seen before the current
	// round: a message created in this round must have a larger one.
	floor int64
	fails []string
}

func newLedger() *crashLedger {
	return &crashLedger{sends: map[string]crashSend{}, acked: map[string]int64{}, inDoubt: map[string]bool{}}
}

func (l *crashLedger) failf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failLocked(format, args...)
}

// try records a send before it goes out: from then on it is in doubt.
func (l *crashLedger) try(s crashSend) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sends[s.clientID] = s
	l.inDoubt[s.clientID] = true
}

// ack records the server's answer to a send: created tells a new message
// (201, message_ack of a first send) from the original returned again.
func (l *crashLedger) ack(clientID string, id int64, content string, created bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sends[clientID]
	switch {
	case content != s.content:
		l.failLocked("client_id %s acknowledged with content %q, sent %q", clientID, content, s.content)
	case l.acked[clientID] != 0 && l.acked[clientID] != id:
		l.failLocked("client_id %s acknowledged as id %d, earlier as %d", clientID, id, l.acked[clientID])
	case created && id <= l.floor:
		l.failLocked("a new message got id %d, not above %d, the largest id known before this round", id, l.floor)
	}
	l.acked[clientID] = id
	delete(l.inDoubt, clientID)
}

// resend sends again, with the same client_id, a send left in doubt, as
// a careful client does after a reconnect; the answer settles the doubt.
func (l *crashLedger) resend(base string, d crashSend) error {
	id, content, status, err := crashPost(base, d)
	if err != nil {
		return err
	}
	l.ack(d.clientID, id, content, status == http.StatusCreated)
	l.mu.Lock()
	defer l.mu.Unlock()
	if status == http.StatusCreated {
		l.resentMade++
	} else {
		l.resentFound++
	}
	return nil
}

// failLocked records a failure, the first 20 of them; l.mu is held.
func (l *crashLedger) failLocked(format string, args ...any) {
	if len(l.fails) < 20 {
		l.fails = append(l.fails, fmt.Sprintf(format, args...))
	}
}

func (l *crashLedger) doubtful() []crashSend {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []crashSend
	for id := range l.inDoubt {
		out = append(out, l.sends[id])
	}
	slices.SortFunc(out, func(a, b crashSend) int { return strings.Compare(a.clientID, b.clientID) })
	return out
}

// raiseFloor makes every id known so far the floor for the next round.
func (l *crashLedger) raiseFloor(seen int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.floor = max(l.floor, seen)
	for _, id := range l.acked {
		l.floor = max(l.floor, id)
	}
}

var crashHTTP = &http.Client{Timeout: 10 * time.Second}

// answerError is an answer from the server that is not the message.
type answerError struct {
	status int
	body   []byte
}

func (e *answerError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// crashPost sends one message over REST. An error that is not an
// *answerError means the answer never came: the send stays in doubt.
func crashPost(base string, s crashSend) (id int64, content string, status int, err error) {
	body, _ := json.Marshal(map[string]string{"content": s.content, "client_id": s.clientID})
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/conversations/%d/messages/", base, s.conv), strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.sender.access)
	resp, err := crashHTTP.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", 0, err
	}
	var m struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &m); err != nil {
			return 0, "", resp.StatusCode, &answerError{resp.StatusCode, b}
		}
		return m.ID, m.Content, resp.StatusCode, nil
	}
	return 0, "", resp.StatusCode, &answerError{resp.StatusCode, b}
}

// restSender posts messages one after another until the server dies.
func restSender(base string, l *crashLedger, u crashUser, convs []int64, tag string) {
	var last int64
	for i := 0; ; i++ {
		s := crashSend{sender: u, conv: convs[i%len(convs)], clientID: fmt.Sprintf("%s-%d", tag, i)}
		s.content = "crash test " + s.clientID
		l.try(s)
		id, content, status, err := crashPost(base, s)
		if err != nil {
			var answered *answerError
			if errors.As(err, &answered) {
				l.failf("REST send %s: %v", s.clientID, err)
			}
			return // the server died
		}
		if status != http.StatusCreated {
			l.failf("REST send %s: status %d for a client_id never used before", s.clientID, status)
		}
		if id <= last {
			l.failf("REST sender %s: id %d acknowledged after %d", tag, id, last)
		}
		last = id
		l.ack(s.clientID, id, content, true)
	}
}

// crashFrame is the part of a server frame the crash test reads.
type crashFrame struct {
	Type           string `json:"type"`
	Code           string `json:"code"`
	Detail         string `json:"detail"`
	ClientID       string `json:"client_id"`
	ConversationID int64  `json:"conversation_id"`
	Recovered      bool   `json:"recovered"`
	Missed         int    `json:"missed"`
	Message        struct {
		ID             int64  `json:"id"`
		ConversationID int64  `json:"conversation_id"`
		Content        string `json:"content"`
	} `json:"message"`
}

func crashDial(base string, u crashUser) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/chat/?token="+u.access, nil)
	if err != nil {
		return nil, err
	}
	var f crashFrame
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.ReadJSON(&f); err != nil || f.Type != "connection_established" {
		c.Close()
		return nil, fmt.Errorf("first frame %+v: %v", f, err)
	}
	return c, nil
}

// wsSender sends new_message frames, a few ahead of the acks, until the
// server dies.
func wsSender(base string, l *crashLedger, u crashUser, convs []int64, tag string) {
	c, err := crashDial(base, u)
	if err != nil {
		return // the server died first
	}
	defer c.Close()
	const window = 4
	var outstanding []string
	var last int64
	for i := 0; ; {
		for len(outstanding) < window {
			s := crashSend{sender: u, conv: convs[i%len(convs)], clientID: fmt.Sprintf("%s-%d", tag, i)}
			s.content = "crash test " + s.clientID
			i++
			l.try(s)
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.WriteJSON(map[string]any{"type": "new_message", "conversation_id": s.conv,
				"content": s.content, "client_id": s.clientID}); err != nil {
				return
			}
			outstanding = append(outstanding, s.clientID)
		}
		var f crashFrame
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.ReadJSON(&f); err != nil {
			return
		}
		switch f.Type {
		case "message_ack":
			if len(outstanding) == 0 || f.ClientID != outstanding[0] {
				l.failf("socket sender %s: ack for %q, expected %v first", tag, f.ClientID, outstanding)
				return
			}
			outstanding = outstanding[1:]
			if f.Message.ID <= last {
				l.failf("socket sender %s: id %d acknowledged after %d", tag, f.Message.ID, last)
			}
			last = f.Message.ID
			l.ack(f.ClientID, f.Message.ID, f.Message.Content, true)
		case "error":
			l.failf("socket sender %s: error frame %s: %s", tag, f.Code, f.Detail)
			return
		}
	}
}

// crashReader is a participant who only reads: one socket per server
// life, joined to every conversation with the newest id it has, so that
// everything it missed while the server was down is replayed.
type crashReader struct {
	u     crashUser
	convs []int64

	mu     sync.Mutex
	got    map[int64][]int64 // ids received per conversation, in arrival order
	joined map[int64]bool    // joined in the current life
	fails  []string
}

func (r *crashReader) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fails) < 20 {
		r.fails = append(r.fails, fmt.Sprintf(format, args...))
	}
}

func (r *crashReader) last(conv int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.got[conv]
	if len(ids) == 0 {
		return 0
	}
	return ids[len(ids)-1]
}

func (r *crashReader) newest() int64 {
	var n int64
	for _, conv := range r.convs {
		n = max(n, r.last(conv))
	}
	return n
}

// reset forgets the joins of the previous life.
func (r *crashReader) reset() {
	r.mu.Lock()
	r.joined = map[int64]bool{}
	r.mu.Unlock()
}

// allJoined reports whether every join of the current life was answered.
func (r *crashReader) allJoined() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.joined) == len(r.convs)
}

// run connects, joins every conversation from its cursor, and records
// frames until the connection ends. The caller has called reset.
func (r *crashReader) run(base string) {
	c, err := crashDial(base, r.u)
	if err != nil {
		return
	}
	defer c.Close()
	replayed := map[int64]int{}
	for _, conv := range r.convs {
		if err := c.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": conv, "last_message_id": r.last(conv)}); err != nil {
			return
		}
	}
	for {
		var f crashFrame
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := c.ReadJSON(&f); err != nil {
			return
		}
		switch f.Type {
		case "new_message":
			conv, id := f.ConversationID, f.Message.ID
			r.mu.Lock()
			ids := r.got[conv]
			if n := len(ids); n > 0 && id <= ids[n-1] {
				r.mu.Unlock()
				r.failf("conversation %d: message %d arrived after %d (a duplicate or out of order)", conv, id, ids[n-1])
				continue
			}
			r.got[conv] = append(ids, id)
			if !r.joined[conv] {
				replayed[conv]++
			}
			r.mu.Unlock()
		case "joined":
			if !f.Recovered || f.Missed != replayed[f.ConversationID] {
				r.failf("conversation %d: joined says recovered=%v missed=%d, after %d replayed messages",
					f.ConversationID, f.Recovered, f.Missed, replayed[f.ConversationID])
			}
			r.mu.Lock()
			r.joined[f.ConversationID] = true
			r.mu.Unlock()
		case "error":
			r.failf("reader: error frame %s: %s", f.Code, f.Detail)
		}
	}
}

func TestCrash_SIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a confab process for rounds of traffic")
	}
	seed := uint64(crashDefaultSeed)
	if v := os.Getenv("CONFAB_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CONFAB_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (replay with CONFAB_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	s := &crashServer{t: t, bin: BuildBinary(t, "crash-test"), db: filepath.Join(t.TempDir(), "confab.db"),
		env:  []string{"LOG_LEVEL=warn", "WS_FRAMES_PER_SECOND=100000", "WS_FRAME_BURST=100000", "REQUESTS_PER_SECOND=0"},
		logs: &servertest.LogBuffer{}}
	t.Cleanup(func() {
		if s.cmd != nil {
			s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", s.logs)
		}
	})

	// The cast: three senders, a reader, two conversations.
	s.start()
	register := func(name string) crashUser {
		code, m := (&Proc{URL: s.url}).Call(t, http.MethodPost, "/api/auth/register/", "",
			map[string]string{"username": name, "password": "correct horse battery"})
		if code != http.StatusCreated {
			t.Fatalf("register %s: %d %v", name, code, m)
		}
		return crashUser{id: int64(m["user"].(map[string]any)["id"].(float64)), name: name, access: m["access"].(string)}
	}
	alice, bob, carol, rita := register("alice"), register("bob"), register("carol"), register("rita")
	conversation := func(owner crashUser, others ...crashUser) int64 {
		var ids []int64
		for _, o := range others {
			ids = append(ids, o.id)
		}
		code, m := (&Proc{URL: s.url}).Call(t, http.MethodPost, "/api/conversations/", owner.access,
			map[string]any{"participant_ids": ids, "is_group": true, "title": "crash"})
		if code != http.StatusCreated {
			t.Fatalf("conversation: %d %v", code, m)
		}
		return int64(m["id"].(float64))
	}
	convs := []int64{conversation(alice, bob, carol, rita), conversation(bob, alice, rita)}
	s.stop()

	ledger := newLedger()
	reader := &crashReader{u: rita, convs: convs, got: map[int64][]int64{}}
	senders := []crashUser{alice, bob, carol}
	var killedDuringStart, killedWithSendsInFlight int
	for round := range crashRounds {
		ledger.raiseFloor(reader.newest())
		// One round in eight kills the process while it starts up.
		if rng.IntN(8) == 0 {
			s.launch()
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			s.kill()
			var exit *exec.ExitError
			if !errors.As(s.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("round %d: the server exited by itself while starting (%v):\n%s", round, s.err, s.logs)
			}
			killedDuringStart++
			continue
		}
		s.start()
		killAfter := time.Duration(50+rng.IntN(550)) * time.Millisecond
		var wg sync.WaitGroup
		reader.reset()
		wg.Go(func() { reader.run(s.url) })
		// A careful client sends again, with the same client_id, what got
		// no answer before the crash.
		doubtful := ledger.doubtful()
		wg.Go(func() {
			for _, d := range doubtful {
				if err := ledger.resend(s.url, d); err != nil {
					var answered *answerError
					if errors.As(err, &answered) {
						ledger.failf("resend %s: %v", d.clientID, err)
					}
					return
				}
			}
		})
		for i, u := range senders {
			// Each sender writes to both conversations: carol only to the
			// first, which is the only one she is in.
			cs := convs
			if u.id == carol.id {
				cs = convs[:1]
			}
			wg.Go(func() { restSender(s.url, ledger, u, cs, fmt.Sprintf("r%d-rest-%s", round, u.name)) })
			wg.Go(func() { wsSender(s.url, ledger, u, cs, fmt.Sprintf("r%d-ws%d-%s", round, i, u.name)) })
		}
		time.Sleep(killAfter)
		inFlight := len(ledger.doubtful())
		s.kill()
		wg.Wait()
		if inFlight > 0 {
			killedWithSendsInFlight++
		}
	}

	// The last life: the careful clients resend what is still in doubt,
	// the reader recovers, and the server stops cleanly.
	s.start()
	ledger.raiseFloor(reader.newest())
	for _, d := range ledger.doubtful() {
		if err := ledger.resend(s.url, d); err != nil {
			t.Fatalf("resend %s after the last restart: %v", d.clientID, err)
		}
	}
	reader.reset()
	readerDone := make(chan struct{})
	go func() { reader.run(s.url); close(readerDone) }()
	for deadline := time.Now().Add(10 * time.Second); !reader.allJoined(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reader's joins were not answered within 10 s")
		}
	}
	s.stop()
	<-readerDone

	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	reader.mu.Lock()
	defer reader.mu.Unlock()
	for _, f := range append(ledger.fails, reader.fails...) {
		t.Error(f)
	}
	t.Logf("%d rounds (%d killed while starting, %d with sends in flight), %d messages acknowledged; "+
		"of the sends left in doubt, %d were found stored on resend and %d made then",
		crashRounds, killedDuringStart, killedWithSendsInFlight, len(ledger.acked), ledger.resentFound, ledger.resentMade)
	if len(ledger.acked) < 100 || killedWithSendsInFlight < crashRounds/2 {
		t.Fatalf("too little happened to test anything: %d acknowledged, %d rounds killed with sends in flight",
			len(ledger.acked), killedWithSendsInFlight)
	}

	// The file, opened read-only by SQLite itself.
	dbh, err := sql.Open("sqlite", "file:"+s.db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer dbh.Close()
	var integrity string
	if err := dbh.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q %v", integrity, err)
	}
	rows, err := dbh.Query(`SELECT id, conversation_id, sender_id, COALESCE(client_id, ''), content FROM messages ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, conv, sender  int64
		clientID, content string
	}
	byClient := map[string][]row{}
	inDB := map[int64][]int64{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.conv, &r.sender, &r.clientID, &r.content); err != nil {
			t.Fatal(err)
		}
		byClient[r.clientID] = append(byClient[r.clientID], r)
		inDB[r.conv] = append(inDB[r.conv], r.id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// Every send was acknowledged in the end (the last resends included),
	// and every acknowledged message is in the file exactly once, as sent.
	if len(ledger.inDoubt) != 0 {
		t.Errorf("%d sends still in doubt after the last resend", len(ledger.inDoubt))
	}
	for clientID, id := range ledger.acked {
		s := ledger.sends[clientID]
		got := byClient[clientID]
		switch {
		case len(got) != 1:
			t.Errorf("acknowledged message %s (id %d) is in the database %d times", clientID, id, len(got))
		case got[0].id != id || got[0].conv != s.conv || got[0].sender != s.sender.id || got[0].content != s.content:
			t.Errorf("acknowledged message %s: acked as id %d in %d from %d, stored as %+v", clientID, id, s.conv, s.sender.id, got[0])
		}
	}
	for clientID, rs := range byClient {
		if _, ok := ledger.sends[clientID]; !ok {
			t.Errorf("the database holds %d messages nobody sent: client_id %q, e.g. %+v", len(rs), clientID, rs[0])
		}
	}
	// The reader, across every crash and reconnect, got each message of
	// each conversation once, in id order: exactly what the file holds.
	for _, conv := range convs {
		if !slices.Equal(reader.got[conv], inDB[conv]) {
			t.Errorf("conversation %d: the reader received %d messages, the database holds %d; first difference at %d",
				conv, len(reader.got[conv]), len(inDB[conv]), firstDiff(reader.got[conv], inDB[conv]))
		}
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
