package cluster

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/cluster/redistest"
	"github.com/confab/confab/app/hub"
)

// node is one hub joined to Redis, with what it announced offline and
// online.
type node struct {
	c       *Cluster
	h       *hub.Hub
	mu      sync.Mutex
	off, on []int64
}

func (n *node) online() []int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int64(nil), n.on...)
}

func (n *node) offline() []int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int64(nil), n.off...)
}

func fast() Options {
	return Options{Heartbeat: 50 * time.Millisecond, NodeTTL: 250 * time.Millisecond, CatchUp: time.Hour}
}

func startNode(t *testing.T, r *redistest.Server, opt Options) *node {
	t.Helper()
	return startNodeHooked(t, r, opt, nil)
}

// startNodeHooked starts a node whose Redis client runs hook (if any)
// around every command it sends.
func startNodeHooked(t *testing.T, r *redistest.Server, opt Options, hook redis.Hook) *node {
	t.Helper()
	c, err := New(r.URL(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		c.rdb.AddHook(hook)
	}
	n := &node{c: c}
	n.h = hub.New(hub.Options{Broker: c, Presence: c})
	c.Start(n.h, func(id int64, status string) {
		n.mu.Lock()
		if status == "offline" {
			n.off = append(n.off, id)
		} else {
			n.on = append(n.on, id)
		}
		n.mu.Unlock()
	})
	t.Cleanup(func() {
		select {
		case <-c.quit: // crashed by the test
		default:
			c.Close()
		}
	})
	waitFor(t, 5*time.Second, "the node is healthy", c.Healthy)
	return n
}

// crash stops the node's loops without withdrawing anything from Redis.
func (n *node) crash() {
	close(n.c.quit)
	n.c.wg.Wait()
	n.c.rdb.Close()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type recorder struct {
	mu  sync.Mutex
	got []*hub.Event
}

func (r *recorder) Deliver(_ hub.Topic, ev *hub.Event) {
	r.mu.Lock()
	r.got = append(r.got, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []*hub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*hub.Event(nil), r.got...)
}

func TestEvent_RoundTrip(t *testing.T) {
	ev := &hub.Event{Type: "new_message", Data: []byte(`{"type":"new_message"}`), ConversationID: 7,
		MessageID: 1234567, Version: 42, Prev: 40, Sheddable: true, Origin: 99, Actor: 31}
	sent := time.Unix(1700000000, 123456789)
	node, tp, users, got, at, err := decodeEvent(string(encodeEvent("0123456789abcdef", hub.UserTopic(5), nil, ev, sent)))
	if err != nil || users != nil {
		t.Fatal(users, err)
	}
	if node != "0123456789abcdef" || tp != hub.UserTopic(5) || !at.Equal(sent) {
		t.Errorf("node %q topic %v sent %v", node, tp, at)
	}
	if got.Type != ev.Type || string(got.Data) != string(ev.Data) || got.ConversationID != 7 ||
		got.MessageID != 1234567 || got.Version != 42 || got.Prev != 40 || got.Actor != 31 || !got.Sheddable {
		t.Errorf("decoded %+v, want %+v", got, ev)
	}
	if got.Origin != 0 {
		t.Errorf("origin %d crossed nodes: connection ids are per node", got.Origin)
	}
	_, _, users, got, _, err = decodeEvent(string(encodeEvent("0123456789abcdef", hub.UserTopic(0), []int64{3, 1 << 40, 7}, ev, sent)))
	if err != nil || !slices.Equal(users, []int64{3, 1 << 40, 7}) || string(got.Data) != string(ev.Data) {
		t.Errorf("users event: %v %+v %v", users, got, err)
	}
	for _, bad := range []string{"", "\x02" + "0123456789abcdef\x00", "\x01short", "\x01" + "0123456789abcdef\x00\xff",
		"\x01" + "0123456789abcdef\x04\x00\x00\x00\x00\x00\xff\xff\xff\x7f"} {
		if _, _, _, _, _, err := decodeEvent(bad); err == nil {
			t.Errorf("decodeEvent(%q): no error", bad)
		}
	}
}

func TestEvents_CrossNodes(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, fast()), startNode(t, r, fast())
	var onA, onB recorder
	a.h.Subscribe(hub.ConversationTopic(1), &onA)
	b.h.Subscribe(hub.ConversationTopic(1), &onB)
	for i := range 100 {
		a.h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "typing", ConversationID: 1, Data: []byte{byte(i)}, Origin: 3})
	}
	waitFor(t, 5*time.Second, "b gets a's 100 events", func() bool { return len(onB.events()) == 100 })
	var user7, user8 recorder
	b.h.Subscribe(hub.UserTopic(7), &user7)
	b.h.Subscribe(hub.UserTopic(8), &user8)
	a.h.PublishUsers([]int64{7, 8, 9}, &hub.Event{Type: "notification", Data: []byte("n")})
	waitFor(t, 5*time.Second, "b's users 7 and 8 get a's notification", func() bool {
		return len(user7.events()) == 1 && len(user8.events()) == 1
	})
	for i, ev := range onB.events() {
		if ev.Data[0] != byte(i) {
			t.Fatalf("event %d arrived at position %d: one node's events keep their order", ev.Data[0], i)
		}
	}
	// Redis sends a the echo of its own events (if it delivered them)
	// before an event b publishes after receiving them: once b's arrives,
	// anything of a's coming back has.
	b.h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "typing", ConversationID: 1, Data: []byte("from b")})
	waitFor(t, 5*time.Second, "a gets b's event", func() bool { return len(onA.events()) > 100 })
	if n := len(onA.events()); n != 101 {
		t.Errorf("a delivered %d events, want its own 100 and b's one (and none of its own back from Redis)", n)
	}
}

func TestPresence_AnyNodeAndCrashSweep(t *testing.T) {
	ctx := t.Context()
	r := redistest.Start(t)
	a, b := startNode(t, r, fast()), startNode(t, r, fast())
	if !a.h.Connect(ctx, 10) {
		t.Error("user 10's first socket (on a) is not reported as first")
	}
	if b.h.Connect(ctx, 10) {
		t.Error("user 10's socket on b is reported as first, but a holds one")
	}
	if !b.h.Online(ctx, 11) == false || !a.h.Online(ctx, 10) {
		t.Error("online is wrong")
	}
	if a.h.Disconnect(ctx, 10) {
		t.Error("closing a's socket reported user 10 offline, but b holds one")
	}
	if !a.h.Online(ctx, 10) {
		t.Error("a does not see user 10, connected on b, online")
	}
	if !b.h.Disconnect(ctx, 10) {
		t.Error("closing the last socket anywhere did not report user 10 offline")
	}

	// A crashed node says nothing; the other sweeps it after NodeTTL.
	a.h.Connect(ctx, 20)
	b.h.Connect(ctx, 21)
	a.crash()
	waitFor(t, 5*time.Second, "b announces user 20 offline", func() bool {
		off := b.offline()
		return len(off) == 1 && off[0] == 20
	})
	if b.h.Online(ctx, 20) {
		t.Error("user 20 is still online after their node was swept")
	}
	if !b.h.Online(ctx, 21) {
		t.Error("b's own user went offline in the sweep")
	}
}

func TestPresence_RedisRestartReregisters(t *testing.T) {
	ctx := t.Context()
	r := redistest.Start(t)
	a, b := startNode(t, r, fast()), startNode(t, r, fast())
	a.h.Connect(ctx, 30)
	r.Restart()
	waitFor(t, 5*time.Second, "both nodes are healthy again", func() bool { return a.c.Healthy() && b.c.Healthy() })
	waitFor(t, 5*time.Second, "b sees a's user online again", func() bool { return b.h.Online(ctx, 30) })
}

// cutOff fails every command of one node's Redis client while set: that
// node alone has lost its way to Redis.
type cutOff struct{ on atomic.Bool }

var errCutOff = errors.New("cut off from Redis")

func (c *cutOff) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cutOff) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.on.Load() {
			cmd.SetErr(errCutOff)
			return errCutOff
		}
		return next(ctx, cmd)
	}
}

func (c *cutOff) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c.on.Load() {
			return errCutOff
		}
		return next(ctx, cmds)
	}
}

// TestPresence_SweptNodeAnnouncesItsUsersAgain: a node cut off from Redis
// longer than NodeTTL is swept by the others, which announce its users
// offline; when it reaches Redis again it registers them and announces
// them online, so that what clients were told converges.
func TestPresence_SweptNodeAnnouncesItsUsersAgain(t *testing.T) {
	ctx := t.Context()
	r := redistest.Start(t)
	var cut cutOff
	a, b := startNodeHooked(t, r, fast(), &cut), startNode(t, r, fast())
	a.h.Connect(ctx, 40)
	b.h.Connect(ctx, 41)
	cut.on.Store(true)
	waitFor(t, 5*time.Second, "b sweeps a and announces its user offline", func() bool {
		return slices.Contains(b.offline(), 40)
	})
	cut.on.Store(false)
	waitFor(t, 5*time.Second, "a announces its user online again", func() bool {
		return slices.Contains(a.online(), 40)
	})
	if !b.h.Online(ctx, 40) {
		t.Error("b does not see a's user online again")
	}
	if got := a.online(); slices.Contains(got, 41) {
		t.Errorf("a announced b's user, who never went offline: %v", got)
	}
}

func TestHealthy_FollowsRedis(t *testing.T) {
	r := redistest.Start(t)
	a := startNode(t, r, fast())
	r.Stop()
	waitFor(t, 5*time.Second, "degraded without Redis", func() bool { return !a.c.Healthy() })
	// Publishing without Redis neither blocks nor fails.
	for range 100 {
		a.h.Publish(hub.ConversationTopic(1), &hub.Event{Type: "typing"})
	}
	r.Resume()
	waitFor(t, 10*time.Second, "healthy once Redis is back", a.c.Healthy)
}

func TestTickets_RedeemedOnceOnAnyNode(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, fast()), startNode(t, r, fast())
	exp := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	tk := auth.Ticket{UserID: 5, ExpiresAt: exp, AccessExp: exp.Add(time.Hour), Session: auth.Session{SID: "0a1b2c", Epoch: 3}}
	if err := a.c.PutTicket(t.Context(), "secret-ticket", tk); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.c.TakeTicket(t.Context(), "secret-ticket")
	if err != nil || !ok || got.UserID != 5 || !got.ExpiresAt.Equal(exp) || !got.AccessExp.Equal(tk.AccessExp) || got.Session != tk.Session {
		t.Fatalf("take on b: %+v %v %v", got, ok, err)
	}
	if _, ok, _ := a.c.TakeTicket(t.Context(), "secret-ticket"); ok {
		t.Error("a ticket was redeemed twice")
	}
	keys, _ := a.c.rdb.Keys(t.Context(), "*secret-ticket*").Result()
	if len(keys) != 0 {
		t.Errorf("the ticket itself is a Redis key: %v", keys)
	}
}

// presenceTrips counts, at the client, the round trips to Redis that ask
// about presence (SCARD), and how many SCARDs they carried: one
// command sent alone is one round trip, and so is one pipeline.
type presenceTrips struct{ trips, scards atomic.Int64 }

func (p *presenceTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (p *presenceTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		p.count([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (p *presenceTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		p.count(cmds)
		return next(ctx, cmds)
	}
}

func (p *presenceTrips) count(cmds []redis.Cmder) {
	n := 0
	for _, c := range cmds {
		if c.Name() == "scard" {
			n++
		}
	}
	if n > 0 {
		p.trips.Add(1)
		p.scards.Add(int64(n))
	}
}

// scardCalls is how many SCARDs Redis itself has run (INFO commandstats):
// what the client-side count says was sent must have arrived.
func scardCalls(t *testing.T, n *node) int64 {
	t.Helper()
	info, err := n.c.rdb.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_scard:calls="); ok {
			calls, _, _ := strings.Cut(rest, ",")
			v, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func TestPresence_OnlineAmongIsOneRoundTrip(t *testing.T) {
	ctx := t.Context()
	r := redistest.Start(t)
	var trips presenceTrips
	a, b := startNodeHooked(t, r, fast(), &trips), startNode(t, r, fast())
	a.h.Connect(ctx, 1)
	a.h.Connect(ctx, 3)
	b.h.Connect(ctx, 2)
	b.h.Connect(ctx, 3)
	users := []int64{5, 3, 2, 4, 1, 6}
	want := []int64{3, 2, 1} // in the order asked

	// a holds 1 and 3 itself: it asks Redis about the other four, once.
	trips.trips.Store(0)
	trips.scards.Store(0)
	before := scardCalls(t, a)
	if got := a.h.OnlineAmong(ctx, users); !slices.Equal(got, want) {
		t.Errorf("a: online among %v = %v, want %v", users, got, want)
	}
	if n, s := trips.trips.Load(), trips.scards.Load(); n != 1 || s != 4 {
		t.Errorf("a asked Redis in %d round trips carrying %d SCARDs, want 1 carrying 4", n, s)
	}
	if d := scardCalls(t, a) - before; d != 4 {
		t.Errorf("Redis ran %d SCARDs, want 4", d)
	}
	if got := b.h.OnlineAmong(ctx, users); !slices.Equal(got, want) {
		t.Errorf("b: online among %v = %v, want %v", users, got, want)
	}

	// However many users are asked about, it is one round trip.
	many := make([]int64, 500)
	for i := range many {
		many[i] = int64(i + 1)
	}
	trips.trips.Store(0)
	got, err := a.c.OnlineAmong(ctx, many)
	if err != nil || !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("online among 1..500 = %v, %v; want [1 2 3]", got, err)
	}
	if n := trips.trips.Load(); n != 1 {
		t.Errorf("500 users took %d round trips, want 1", n)
	}

	// And the answer follows the sockets on every node.
	b.h.Disconnect(ctx, 2)
	b.h.Disconnect(ctx, 3)
	if got := a.h.OnlineAmong(ctx, users); !slices.Equal(got, []int64{3, 1}) {
		t.Errorf("after b's sockets closed: %v, want [3 1]", got)
	}
	if got := b.h.OnlineAmong(ctx, users); !slices.Equal(got, []int64{3, 1}) {
		t.Errorf("b, after its sockets closed: %v, want [3 1]", got)
	}
}
