package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func chatScenario() *scenario {
	c := chatConfig{}
	return &scenario{
		name: "chat", args: "--users U --rooms R --duration D",
		multi:   true,
		summary: "a realistic mix for soak runs, checked for exactly-once delivery",
		help: `Registers U users and makes R small conversations of 2 to --room-size
people (a pair is a direct conversation). Every user keeps one socket
joined to all its conversations and, every --think on average, does one
thing: sends a message (over the socket, or over REST for --rest of
them, often after a typing event), sends a read receipt, pings, or
reconnects (--reconnect of the time; half of them drop the connection
without a close frame). --reconnect of the socket sends are also
followed at once by a reconnect, before their ack can arrive. A reconnect, or a close by the server, is
followed by join_conversation with last_message_id for every
conversation, then the unacknowledged sends are sent again with the same
client_id, as a careful client does. So is a send answered unavailable
(an error frame a second later; a REST 503, or no answer from a node
that is restarting, every half second for up to half a minute), and a
join answered unavailable is made again on a new socket.

After --duration the users stop, the bench waits up to --drain for the
last deliveries, and checks: every acknowledged message must have been
received exactly once, and in order, by every other member that stayed
connected or recovered. Lost, duplicated and out-of-order counts must be
zero, every send acknowledged, every member recovered, and no error
frame seen, or the exit status is 1. Sockets renew their access token
when told token_expiring, so runs may outlast ACCESS_TOKEN_TTL.

With several --url (the nodes of one cluster), user i keeps its socket on
node i modulo their number and sends its REST messages there too.

  confab bench chat --users 500 --rooms 300 --duration 10m`,
		timeout: func() time.Duration { return c.duration + 30*time.Minute },
		flags: func(fs *flag.FlagSet) func(context.Context, *env) (report, error) {
			fs.IntVar(&c.users, "users", 50, "users, one socket each")
			fs.IntVar(&c.rooms, "rooms", 20, "conversations")
			fs.IntVar(&c.roomSize, "room-size", 6, "most people in one conversation (at least 2)")
			fs.DurationVar(&c.duration, "duration", 30*time.Second, "how long the users act")
			fs.DurationVar(&c.think, "think", 2*time.Second, "mean pause between one user's actions")
			fs.Float64Var(&c.reconnect, "reconnect", 0.03, "share of actions that are a reconnect")
			fs.Float64Var(&c.rest, "rest", 0.2, "share of messages sent over REST instead of the socket")
			fs.IntVar(&c.size, "size", 64, "message content length in characters (at least 48, at most 4000)")
			fs.DurationVar(&c.drain, "drain", 15*time.Second, "after --duration, how long to wait for the last deliveries")
			fs.Uint64Var(&c.seed, "seed", 0, "random seed, for a repeatable mix (0: a new one)")
			return func(ctx context.Context, e *env) (report, error) {
				switch {
				case c.users < 2 || c.rooms < 1:
					return nil, &usageError{"--users must be at least 2 and --rooms at least 1"}
				case c.roomSize < 2 || c.roomSize > maxGroup:
					return nil, &usageError{fmt.Sprintf("--room-size must be between 2 and %d", maxGroup)}
				case c.duration <= 0 || c.think <= 0:
					return nil, &usageError{"--duration and --think must be positive"}
				case c.reconnect < 0 || c.reconnect > 0.5 || c.rest < 0 || c.rest > 1:
					return nil, &usageError{"--reconnect must be within 0–0.5 and --rest within 0–1"}
				case c.size < minContent || c.size > 4000:
					return nil, &usageError{fmt.Sprintf("--size must be between %d and 4000", minContent)}
				}
				if c.seed == 0 {
					c.seed = rand.Uint64()
				}
				return runChat(ctx, e, c)
			}
		},
	}
}

type chatConfig struct {
	users, rooms, roomSize, size int
	duration, think, drain       time.Duration
	reconnect, rest              float64
	seed                         uint64
}

type chatReport struct {
	header
	Seed         uint64         `json:"seed"`
	Users        int            `json:"users"`
	Rooms        int            `json:"rooms"`
	ActSeconds   float64        `json:"act_seconds"`
	Acked        int64          `json:"acked"`
	SentWS       int64          `json:"sent_ws"`
	SentREST     int64          `json:"sent_rest"`
	Resent       int64          `json:"resent"`
	Unacked      int64          `json:"unacked"`
	SendLatency  latency        `json:"send_latency"`
	Expected     int64          `json:"expected_deliveries"`
	Deliveries   int64          `json:"deliveries"`
	Latency      latency        `json:"latency"`
	Lost         int64          `json:"lost"`
	Duplicated   int64          `json:"duplicated"`
	OutOfOrder   int64          `json:"out_of_order"`
	Unexpected   int64          `json:"unexpected"`
	Excluded     int64          `json:"excluded_deliveries"`
	TypingSent   int64          `json:"typing_sent"`
	TypingGot    int64          `json:"typing_received"`
	ReceiptsSent int64          `json:"receipts_sent"`
	ReceiptsGot  int64          `json:"receipts_received"`
	Pings        int64          `json:"pings"`
	Reconnects   int64          `json:"reconnects"`
	ServerCloses map[string]int `json:"server_closes,omitempty"`
	Unrecovered  int64          `json:"unrecovered"`
	Unavailable  int64          `json:"unavailable"`
	Errors       map[string]int `json:"errors,omitempty"`
	FirstError   string         `json:"first_error,omitempty"`
}

func (r *chatReport) failed() bool {
	return r.Lost > 0 || r.Duplicated > 0 || r.OutOfOrder > 0 || r.Unacked > 0 || r.Unrecovered > 0 || len(r.Errors) > 0
}

func (r *chatReport) rows() [][2]string {
	rows := [][2]string{
		{"users × rooms", fmt.Sprintf("%d × %d (seed %d)", r.Users, r.Rooms, r.Seed)},
		{"acted for", fmt.Sprintf("%.1f s", r.ActSeconds)},
		{"messages acked", fmt.Sprintf("%d (socket %d, REST %d, resent %d, unacked %d)", r.Acked, r.SentWS, r.SentREST, r.Resent, r.Unacked)},
		{"send→ack latency", r.SendLatency.String()},
		{"deliveries", fmt.Sprintf("%d of %d expected (%d excluded: not recovered)", r.Deliveries, r.Expected, r.Excluded)},
		{"send→deliver latency", r.Latency.String()},
		{"lost", fmt.Sprint(r.Lost)},
		{"duplicated", fmt.Sprint(r.Duplicated)},
		{"out of order", fmt.Sprint(r.OutOfOrder)},
		{"unexpected (not acked)", fmt.Sprint(r.Unexpected)},
		{"typing sent / received", fmt.Sprintf("%d / %d", r.TypingSent, r.TypingGot)},
		{"receipts sent / received", fmt.Sprintf("%d / %d", r.ReceiptsSent, r.ReceiptsGot)},
		{"pings", fmt.Sprint(r.Pings)},
		{"reconnects", fmt.Sprintf("%d, unrecovered users %d", r.Reconnects, r.Unrecovered)},
		{"unavailable, sent again", fmt.Sprint(r.Unavailable)},
		{"closed by the server", fmtCodes(r.ServerCloses)},
		{"errors", fmtCodes(r.Errors)},
	}
	if r.FirstError != "" {
		rows = append(rows, [2]string{"first error", r.FirstError})
	}
	return append(rows, r.serverRows()...)
}

// room is one conversation of a chat run.
type room struct {
	id      int64
	members []*member
}

// ackedMsg is a message the server acknowledged.
type ackedMsg struct {
	conv, id int64
	sender   *member
}

// pendingSend is a socket send not yet acknowledged.
type pendingSend struct {
	conv    int64
	content string
	at      time.Duration
}

// member is one user of a chat run: its socket and what it has seen.
type member struct {
	idx   int
	u     *user
	rooms []*room
	rng   *rand.Rand // the actor's only
	seq   int        // the actor's only
	// joined receives each joined reply's conversation.
	joined chan int64

	mu         sync.Mutex
	sock       *sock
	last       map[int64]int64   // newest id seen per conversation: the recovery cursor
	got        map[int64][]int64 // ids of others' messages per conversation, ascending
	recovering map[int64]bool
	excluded   map[int64]bool // recovery failed (recovered:false): not counted
	lastRead   map[int64]int64
	pending    map[string]pendingSend // by client_id
	dup, ooo   int64
	gone       bool // could not reconnect: not counted
}

// chatRun is the shared state of a chat run.
type chatRun struct {
	e     *env
	cfg   chatConfig
	rooms map[int64]*room

	ackMu    sync.Mutex
	acked    []ackedMsg
	ackedIDs map[int64]bool
	ackedN   atomic.Int64 // len(acked), for the progress line

	readers sync.WaitGroup

	lat, sendLat                     hist
	deliveries, expected             atomic.Int64
	sentWS, sentREST, resent         atomic.Int64
	typingSent, typingGot            atomic.Int64
	receiptsSent, receiptsGot, pings atomic.Int64
	reconnects, unrecovered          atomic.Int64
	// unavailable counts the answers "unavailable" (error frames and
	// REST 503s) that were sent again.
	unavailable  atomic.Int64
	closes, errs codes
	firstErr     firstError
}

func (run *chatRun) fail(code string, err error) {
	run.errs.add(code)
	run.firstErr.set(err)
}

func (run *chatRun) ack(m *member, conv, id int64, sentAt, at time.Duration) {
	run.ackMu.Lock()
	defer run.ackMu.Unlock()
	if run.ackedIDs[id] {
		return // a resend answered with the original
	}
	run.ackedIDs[id] = true
	run.acked = append(run.acked, ackedMsg{conv, id, m})
	run.ackedN.Add(1)
	run.expected.Add(int64(len(run.rooms[conv].members) - 1))
	run.sendLat.add(at - sentAt)
}

func (m *member) handle(run *chatRun, s *sock) func(*frame, time.Duration) {
	return func(f *frame, at time.Duration) {
		switch f.Type {
		case "new_message":
			msg := f.Message
			if msg == nil {
				return
			}
			conv := f.ConversationID
			m.mu.Lock()
			own, isNew, dup := msg.Sender.ID == m.u.ID, false, false
			if !own {
				ids := m.got[conv]
				if n := len(ids); n == 0 || msg.ID > ids[n-1] {
					m.got[conv], isNew = append(ids, msg.ID), true
				} else if i, found := slices.BinarySearch(ids, msg.ID); found {
					dup = true
					m.dup++
				} else {
					m.got[conv], isNew = slices.Insert(ids, i, msg.ID), true
				}
			}
			if !dup && msg.ID < m.last[conv] {
				m.ooo++
			}
			m.last[conv] = max(m.last[conv], msg.ID)
			live := !m.recovering[conv]
			m.mu.Unlock()
			if isNew {
				run.deliveries.Add(1)
				if sent, ok := stampTime(msg.Content); ok && live {
					run.lat.add(at - sent)
				}
			}
		case "message_ack":
			if f.ClientID == nil || f.Message == nil {
				return
			}
			m.mu.Lock()
			p, ok := m.pending[*f.ClientID]
			delete(m.pending, *f.ClientID)
			m.mu.Unlock()
			if ok {
				run.ack(m, p.conv, f.Message.ID, p.at, at)
			}
		case "joined":
			m.mu.Lock()
			delete(m.recovering, f.ConversationID)
			if !f.Recovered {
				m.excluded[f.ConversationID] = true
			}
			m.mu.Unlock()
			select {
			case m.joined <- f.ConversationID:
			default:
			}
		case "typing":
			run.typingGot.Add(1)
		case "read_receipt":
			run.receiptsGot.Add(1)
		case "error":
			if f.Code == "unavailable" {
				// The database did not answer: not a failure of the
				// server's contract, and a careful client tries again.
				run.unavailable.Add(1)
				m.retryLater(run, s, f.RequestID)
				return
			}
			if f.RequestID != "" {
				m.mu.Lock()
				delete(m.pending, f.RequestID) // refused: it will never be acked
				m.mu.Unlock()
			}
			run.fail(f.Code, fmt.Errorf("error frame %s: %s", f.Code, f.Detail))
		}
	}
}

// retryLater answers an unavailable error frame on s: a send (cid, its
// request_id) stays pending and goes again on s a second later (or with
// the next reconnect, if s is gone by then); anything else (a join that
// could not be read) makes the member reconnect and join again.
func (m *member) retryLater(run *chatRun, s *sock, cid string) {
	m.mu.Lock()
	_, pending := m.pending[cid]
	m.mu.Unlock()
	if !pending {
		s.ws.Close() // from the socket's own reader: drop would wait for itself
		return
	}
	time.AfterFunc(time.Second, func() {
		m.mu.Lock()
		p, ok := m.pending[cid]
		current := m.sock == s
		m.mu.Unlock()
		if ok && current {
			run.resent.Add(1)
			s.send(map[string]any{"type": "new_message", "conversation_id": p.conv,
				"content": p.content, "client_id": cid, "request_id": cid})
		}
	})
}

// postRetried sends a message over REST as a careful client does: a 503,
// or no answer (a node restarting), is sent again with the same client_id
// every half second, for up to half a minute.
func (m *member) postRetried(ctx context.Context, run *chatRun, convID int64, content, cid string) (wireMessage, error) {
	for attempt := 1; ; attempt++ {
		msg, err := run.e.apiOf(m.idx).post(ctx, m.u, convID, content, cid) // its socket's node
		if st := statusOf(err); err == nil || (st != 0 && st != http.StatusServiceUnavailable) || attempt == 60 {
			return msg, err
		}
		run.unavailable.Add(1)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return msg, err
		}
	}
}

// connect opens the member's socket and joins every conversation, with
// recovery when recover is set; then it sends the unacknowledged sends
// again.
func (m *member) connect(ctx context.Context, run *chatRun, recover bool) error {
	e := run.e
	s, err := e.dial(ctx, m.idx, "/ws/chat/", m.u)
	if err != nil {
		return err
	}
	for len(m.joined) > 0 {
		<-m.joined
	}
	m.mu.Lock()
	m.sock = s
	joins := make([]map[string]any, len(m.rooms))
	for i, r := range m.rooms {
		joins[i] = map[string]any{"type": "join_conversation", "conversation_id": r.id}
		if recover {
			joins[i]["last_message_id"] = m.last[r.id]
			m.recovering[r.id] = true
		}
	}
	m.mu.Unlock()
	run.readers.Go(func() { s.run(e, m.u, m.handle(run, s)) })
	for _, j := range joins {
		if err := s.send(j); err != nil {
			s.drop()
			return err
		}
	}
	timeout := time.After(handshakeWait)
	for range m.rooms {
		select {
		case <-m.joined:
		case <-s.done:
			return fmt.Errorf("closed while joining: %v", s.err)
		case <-timeout:
			s.drop()
			return errors.New("no joined reply")
		case <-ctx.Done():
			s.drop()
			return ctx.Err()
		}
	}
	m.mu.Lock()
	resend := make(map[string]pendingSend, len(m.pending))
	for cid, p := range m.pending {
		resend[cid] = p
	}
	m.mu.Unlock()
	for cid, p := range resend {
		run.resent.Add(1)
		if err := s.send(map[string]any{"type": "new_message", "conversation_id": p.conv,
			"content": p.content, "client_id": cid, "request_id": cid}); err != nil {
			break // the socket is gone: the next reconnect sends them
		}
	}
	return nil
}

// reconnect replaces the member's socket, which the server closed or the
// member ends now (voluntary). It returns false when the member could not
// come back: it is then left out of the check.
func (m *member) reconnect(ctx context.Context, run *chatRun, voluntary bool) bool {
	old := m.sock
	switch {
	case !voluntary:
		run.closes.add(old.closeCode())
	case m.rng.IntN(2) == 0:
		old.close()
	default:
		old.drop()
	}
	run.reconnects.Add(1)
	for attempt := 1; attempt <= 16; attempt++ {
		pause := time.Duration(50+m.rng.IntN(250)) * time.Millisecond * time.Duration(attempt)
		select {
		case <-time.After(min(pause, 2*time.Second)):
		case <-ctx.Done():
		}
		err := m.connect(ctx, run, true)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			break
		}
		run.firstErr.set(fmt.Errorf("reconnect: %w", err))
	}
	m.mu.Lock()
	m.gone = true
	m.mu.Unlock()
	run.unrecovered.Add(1)
	return false
}

// act is one user's life: actions until actCtx ends (then acting.Done),
// then only reconnects (when the server closes the socket) until stop.
func (m *member) act(ctx, actCtx context.Context, acting *sync.WaitGroup, stop <-chan struct{}, run *chatRun) {
	done := sync.OnceFunc(acting.Done)
	defer done()
	for actCtx.Err() == nil {
		pause := time.Duration(float64(run.cfg.think) * (0.5 + m.rng.Float64()))
		select {
		case <-actCtx.Done():
		case <-m.sock.done:
			if !m.reconnect(ctx, run, false) {
				return
			}
		case <-time.After(pause):
			if !m.action(ctx, actCtx, run) {
				return
			}
		}
	}
	done()
	for {
		select {
		case <-stop:
			return
		case <-m.sock.done:
			if !m.reconnect(ctx, run, false) {
				return
			}
		}
	}
}

// action does one random thing; it returns false when the member is gone.
func (m *member) action(ctx, actCtx context.Context, run *chatRun) bool {
	e, cfg := run.e, run.cfg
	x := m.rng.Float64()
	switch {
	case x < cfg.reconnect:
		return m.reconnect(ctx, run, true)
	case len(m.rooms) == 0 || x < cfg.reconnect+0.10:
		run.pings.Add(1)
		m.sock.send(map[string]any{"type": "ping", "timestamp": int64(e.since())})
		return true
	}
	r := m.rooms[m.rng.IntN(len(m.rooms))]
	if x < cfg.reconnect+0.35 {
		m.mu.Lock()
		last, read := m.last[r.id], m.lastRead[r.id]
		if last > read {
			m.lastRead[r.id] = last
		}
		m.mu.Unlock()
		if last > read {
			run.receiptsSent.Add(1)
			m.sock.send(map[string]any{"type": "read_receipt", "conversation_id": r.id, "message_id": last})
		}
		return true
	}
	if m.rng.IntN(2) == 0 {
		run.typingSent.Add(1)
		m.sock.send(map[string]any{"type": "typing", "conversation_id": r.id, "is_typing": true})
		select {
		case <-time.After(time.Duration(50+m.rng.IntN(250)) * time.Millisecond):
		case <-actCtx.Done():
			return true
		}
	}
	m.seq++
	cid := fmt.Sprintf("c%d-%d", m.idx, m.seq)
	at := e.since()
	content := stamp(at, cid, cfg.size)
	if m.rng.Float64() < cfg.rest {
		run.sentREST.Add(1)
		msg, err := m.postRetried(ctx, run, r.id, content, cid)
		if err != nil {
			run.fail("POST "+statusName(err), err)
			return true
		}
		run.ack(m, r.id, msg.ID, at, e.since())
		return true
	}
	run.sentWS.Add(1)
	m.mu.Lock()
	m.pending[cid] = pendingSend{conv: r.id, content: content, at: at}
	m.mu.Unlock()
	// A failed write leaves it pending: the reconnect sends it again.
	m.sock.send(map[string]any{"type": "new_message", "conversation_id": r.id, "content": content,
		"client_id": cid, "request_id": cid})
	if m.rng.Float64() < cfg.reconnect {
		// The network goes right after a send, before its ack: the
		// reconnect must send it again with its client_id, and the
		// server must not make a second message of it.
		return m.reconnect(ctx, run, true)
	}
	return true
}

func runChat(ctx context.Context, e *env, cfg chatConfig) (report, error) {
	if err := checkFiles(cfg.users); err != nil {
		return nil, err
	}
	users, err := e.registerPhase(ctx, cfg.users)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	run := &chatRun{e: e, cfg: cfg, rooms: map[int64]*room{}, ackedIDs: map[int64]bool{}}
	members := make([]*member, cfg.users)
	for i, u := range users {
		members[i] = &member{
			idx: i, u: u, rng: rand.New(rand.NewPCG(cfg.seed, uint64(i)+2)),
			last: map[int64]int64{}, got: map[int64][]int64{}, recovering: map[int64]bool{},
			excluded: map[int64]bool{}, lastRead: map[int64]int64{}, pending: map[string]pendingSend{},
		}
	}

	// Conversations: sizes 2 to room-size, every user in some when there
	// are enough of them; a pair is a direct conversation, which the
	// server returns again if that pair already has one.
	e.progress.set(func() string { return fmt.Sprintf("creating conversations: %d/%d", len(run.rooms), cfg.rooms) })
	for r := range cfg.rooms {
		k := 2 + rng.IntN(min(cfg.roomSize, cfg.users)-1)
		picked := []*member{members[r%cfg.users]}
		for _, j := range rng.Perm(cfg.users) {
			if len(picked) == k {
				break
			}
			if j != r%cfg.users {
				picked = append(picked, members[j])
			}
		}
		others := make([]*user, 0, k-1)
		for _, p := range picked[1:] {
			others = append(others, p.u)
		}
		id, err := e.api.createConversation(ctx, picked[0].u, others, k > 2, fmt.Sprintf("bench room %d", r))
		if err != nil {
			return nil, fmt.Errorf("create a conversation: %w", err)
		}
		if run.rooms[id] != nil {
			continue
		}
		rm := &room{id: id, members: picked}
		run.rooms[id] = rm
		for _, p := range picked {
			p.rooms = append(p.rooms, rm)
		}
	}
	for _, m := range members {
		m.joined = make(chan int64, len(m.rooms)+1)
	}
	mem := e.memBefore()

	// Everyone online and joined before the first message, so that every
	// member is owed every message.
	var online, failedConn atomic.Int64
	e.progress.set(func() string {
		return fmt.Sprintf("connecting: %d/%d online, errors %d", online.Load(), cfg.users, failedConn.Load())
	})
	var wg sync.WaitGroup
	next := atomic.Int64{}
	var connErr firstError
	for range min(e.opt.concurrency, cfg.users) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.users {
					return
				}
				if err := members[i].connect(ctx, run, false); err != nil {
					failedConn.Add(1)
					connErr.set(sizeConnLimit(err, cfg.users, cfg.users))
					continue
				}
				online.Add(1)
			}
		})
	}
	wg.Wait()
	if failedConn.Load() > 0 || ctx.Err() != nil {
		for _, m := range members {
			if m.sock != nil {
				m.sock.close()
			}
		}
		run.readers.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%d of %d users could not connect and join; the first: %s",
			failedConn.Load(), cfg.users, connErr.String())
	}

	// Act.
	actStart := time.Now()
	actCtx, stopActing := context.WithTimeout(ctx, cfg.duration)
	defer stopActing()
	stop := make(chan struct{})
	e.progress.set(func() string {
		return fmt.Sprintf("acting %.0fs/%.0fs: acked %d, deliveries %d/%d, reconnects %d, errors %d",
			time.Since(actStart).Seconds(), cfg.duration.Seconds(), run.ackedN.Load(), run.deliveries.Load(),
			run.expected.Load(), run.reconnects.Load(), run.errs.total())
	})
	var actors, acting sync.WaitGroup
	acting.Add(len(members))
	for _, m := range members {
		actors.Go(func() { m.act(ctx, actCtx, &acting, stop, run) })
	}
	// The drain starts when every user has stopped acting: a send made
	// at the last moment is pending by then, and waited for.
	acting.Wait()
	actTook := time.Since(actStart)

	// Drain: wait for the deliveries and acks still on their way.
	e.progress.set(func() string {
		return fmt.Sprintf("draining: deliveries %d/%d, unacked %d", run.deliveries.Load(), run.expected.Load(), run.unacked(members))
	})
	deadline := time.Now().Add(cfg.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if run.deliveries.Load() >= run.expected.Load() && run.unacked(members) == 0 {
			if lost, _, _, _ := run.check(members); lost == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	actors.Wait()
	mem.after(e)
	for _, m := range members {
		m.mu.Lock()
		s := m.sock
		m.mu.Unlock()
		if s != nil {
			s.close()
		}
	}
	run.readers.Wait()

	r := &chatReport{Seed: cfg.seed, Users: cfg.users, Rooms: len(run.rooms), ActSeconds: seconds(actTook)}
	r.Lost, r.Unexpected, r.Excluded, r.Expected = run.check(members)
	for _, m := range members {
		r.Duplicated += m.dup
		r.OutOfOrder += m.ooo
	}
	r.Acked, r.Unacked = run.ackedN.Load(), int64(run.unacked(members))
	r.SentWS, r.SentREST, r.Resent = run.sentWS.Load(), run.sentREST.Load(), run.resent.Load()
	r.SendLatency, r.Latency, r.Deliveries = run.sendLat.summary(), run.lat.summary(), run.deliveries.Load()
	r.TypingSent, r.TypingGot = run.typingSent.Load(), run.typingGot.Load()
	r.ReceiptsSent, r.ReceiptsGot, r.Pings = run.receiptsSent.Load(), run.receiptsGot.Load(), run.pings.Load()
	r.Reconnects, r.Unrecovered, r.ServerCloses = run.reconnects.Load(), run.unrecovered.Load(), run.closes.snapshot()
	r.Unavailable = run.unavailable.Load()
	r.Errors, r.FirstError = run.errs.snapshot(), run.firstErr.String()
	r.header = e.header("chat")
	r.Server = mem
	r.finish(e)
	return r, ctx.Err()
}

func (run *chatRun) unacked(members []*member) int {
	n := 0
	for _, m := range members {
		m.mu.Lock()
		n += len(m.pending)
		m.mu.Unlock()
	}
	return n
}

// check counts, over every acknowledged message and every other member of
// its conversation that is still counted, the deliveries that are missing;
// and the deliveries of messages never acknowledged, the ones left out
// (members that did not recover), and the ones expected.
func (run *chatRun) check(members []*member) (lost, unexpected, excluded, expected int64) {
	run.ackMu.Lock()
	acked := slices.Clone(run.acked)
	run.ackMu.Unlock()
	matched := map[*member]int64{}
	for _, a := range acked {
		for _, m := range run.rooms[a.conv].members {
			if m == a.sender {
				continue
			}
			m.mu.Lock()
			switch {
			case m.gone || m.excluded[a.conv]:
				excluded++
			default:
				expected++
				if _, ok := slices.BinarySearch(m.got[a.conv], a.id); ok {
					matched[m]++
				} else {
					lost++
				}
			}
			m.mu.Unlock()
		}
	}
	for _, m := range members {
		m.mu.Lock()
		if !m.gone {
			var n int64
			for conv, ids := range m.got {
				if !m.excluded[conv] {
					n += int64(len(ids))
				}
			}
			unexpected += n - matched[m]
		}
		m.mu.Unlock()
	}
	return lost, unexpected, excluded, expected
}
