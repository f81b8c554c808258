package systemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/cluster/redistest"
	"github.com/confab/confab/db/postgres/pgtest"
)

// The multi-node tests run real server processes, one Postgres database
// and one real redis-server, and check what users on different nodes
// would notice: the same messages, once each, in one order; presence
// across nodes; nothing lost when a node dies or Redis restarts.

// cluster is a set of nodes sharing one database and one Redis.
type cluster struct {
	t     *testing.T
	bin   string
	redis *redistest.Server
	env   []string
	nodes []*Proc
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return startClusterVia(t, n, nil)
}

// startClusterVia starts n nodes whose database and Redis URLs have first
// gone through via (nil: unchanged), which may point them at proxies.
func startClusterVia(t *testing.T, n int, via func(dbURL, redisURL string) (string, string)) *cluster {
	t.Helper()
	return startClusterEnv(t, n, via)
}

// startClusterEnv is startClusterVia with more settings for every node.
func startClusterEnv(t *testing.T, n int, via func(dbURL, redisURL string) (string, string), env ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts several confab processes, Postgres and Redis")
	}
	dbURL := pgtest.URL(t)
	c := &cluster{t: t, bin: BuildBinary(t, "multinode"), redis: redistest.Start(t)}
	redisURL := c.redis.URL()
	if via != nil {
		dbURL, redisURL = via(dbURL, redisURL)
	}
	c.env = []string{
		"DATABASE_URL=" + dbURL, "REDIS_URL=" + redisURL, "LOG_LEVEL=warn",
		"REGISTRATIONS_PER_MINUTE=100000", "LOGIN_ATTEMPTS_PER_MINUTE=100000", "REQUESTS_PER_SECOND=0",
		"WS_FRAMES_PER_SECOND=100000", "WS_FRAME_BURST=100000",
		"WS_MAX_CONNS_PER_IP=100000", "WS_MAX_CONNS_PER_USER=1000",
	}
	c.env = append(c.env, env...)
	for range n {
		c.nodes = append(c.nodes, Start(t, c.bin, c.env, "serve"))
	}
	for _, p := range c.nodes {
		c.waitReady(p, "ready", 10*time.Second)
	}
	return c
}

// readyz returns /readyz's status ("ready", "degraded") or the error.
func readyz(p *Proc) string {
	resp, err := http.Get(p.URL + "/readyz")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var m struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&m)
	return m.Status
}

func (c *cluster) waitReady(p *Proc, want string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := readyz(p)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s/readyz says %q after %v, want %q:\n%s", p.URL, got, within, want, p.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type mnUser struct {
	id     int64
	name   string
	access string
	node   int
}

func (c *cluster) register(name string, node int) mnUser {
	c.t.Helper()
	p := c.nodes[node]
	id, access, _ := p.Register(c.t, name)
	return mnUser{id: id, name: name, access: access, node: node}
}

func (c *cluster) group(owner mnUser, members []mnUser) int64 {
	c.t.Helper()
	var ids []int64
	for _, m := range members {
		if m.id != owner.id {
			ids = append(ids, m.id)
		}
	}
	code, m := c.nodes[owner.node].Call(c.t, http.MethodPost, "/api/conversations/", owner.access,
		map[string]any{"participant_ids": ids, "is_group": true, "title": "shared"})
	if code != http.StatusCreated {
		c.t.Fatalf("create group: %d %v", code, m)
	}
	return int64(m["id"].(float64))
}

// history reads a conversation's whole history over REST, newest page
// first then older ones: ids and seqs in id order.
func (c *cluster) history(node int, u mnUser, conv int64) (ids, seqs []int64) {
	c.t.Helper()
	for _, m := range c.messages(node, u, conv) {
		ids, seqs = append(ids, m.ID), append(seqs, m.Seq)
	}
	return ids, seqs
}

// storedMessage is what the tests read of a stored message.
type storedMessage struct {
	ID        int64   `json:"id"`
	Seq       int64   `json:"seq"`
	ClientID  *string `json:"client_id"`
	Content   string  `json:"content"`
	IsDeleted bool    `json:"is_deleted"`
}

// messages reads a conversation's whole history over REST, newest page
// first then older ones, in id order.
func (c *cluster) messages(node int, u mnUser, conv int64) []storedMessage {
	c.t.Helper()
	var all []storedMessage
	before := int64(0)
	for {
		q := "limit=100"
		if before > 0 {
			q += "&before=" + strconv.FormatInt(before, 10)
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/conversations/%d/messages/?%s",
			c.nodes[node].URL, conv, q), nil)
		req.Header.Set("Authorization", "Bearer "+u.access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		var page struct {
			Results []storedMessage `json:"results"`
			HasMore bool            `json:"has_more"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		all = append(page.Results, all...)
		if !page.HasMore || len(page.Results) == 0 {
			return all
		}
		before = page.Results[0].ID
	}
}

// wsClosed is how a watched socket ended: the server's close code and
// reason, zero when the connection dropped without a close frame.
type wsClosed struct {
	code   int
	reason string
}

// watchClose opens a /ws/chat/ socket on the node at base with token,
// waits until its setup is over (a ping answered), and returns the
// channel that tells how the server closed it.
func watchClose(t *testing.T, base, token string) <-chan wsClosed {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	sock, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/chat/?token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	done := make(chan wsClosed, 1)
	pong := make(chan struct{}, 1)
	go func() {
		for {
			_, b, err := sock.ReadMessage()
			if err == nil && strings.Contains(string(b), `"type":"pong"`) {
				select {
				case pong <- struct{}{}:
				default:
				}
			}
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					done <- wsClosed{ce.Code, ce.Text}
				} else {
					done <- wsClosed{}
				}
				return
			}
		}
	}()
	if err := sock.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pong:
	case got := <-done:
		t.Fatalf("the socket closed before its setup was over: %d %q", got.code, got.reason)
	case <-time.After(10 * time.Second):
		t.Fatal("no pong in 10 s")
	}
	return done
}

// mnSend posts a message over REST; it returns the message's id.
func mnSend(base string, u mnUser, conv int64, content string) (int64, error) {
	return Send(fmt.Sprintf("%s/api/conversations/%d/messages/", base, conv), u.access, content)
}

// mnClient is a socket that records every new_message and presence frame
// it receives.
type mnClient struct {
	t    *testing.T
	u    mnUser
	conn *websocket.Conn
	ctrl chan map[string]any // every other frame

	mu       sync.Mutex
	msgs     map[int64][]int64 // conversation → message ids, in arrival order
	presence []string          // "<user_id>:<status>", in arrival order
	events   []map[string]any  // typing, read_receipt, notification, conversation_updated
	closed   chan struct{}
}

func dialNode(t *testing.T, p *Proc, u mnUser) *mnClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws/chat/?token="+u.access, nil)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", p.URL, u.name, err)
	}
	c := &mnClient{t: t, u: u, conn: conn, ctrl: make(chan map[string]any, 1024),
		msgs: map[int64][]int64{}, closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { conn.Close() })
	if f := c.next("connection_established"); f == nil {
		t.Fatalf("%s: no greeting", u.name)
	}
	return c
}

func (c *mnClient) read() {
	defer close(c.closed)
	for {
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var f map[string]any
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f["type"] {
		case "new_message":
			m := f["message"].(map[string]any)
			conv, id := int64(m["conversation_id"].(float64)), int64(m["id"].(float64))
			c.mu.Lock()
			c.msgs[conv] = append(c.msgs[conv], id)
			c.mu.Unlock()
		case "presence":
			c.mu.Lock()
			c.presence = append(c.presence, fmt.Sprintf("%d:%s", int64(f["user_id"].(float64)), f["status"]))
			c.mu.Unlock()
		case "typing", "notification", "read_receipt", "conversation_updated", "message_updated", "message_deleted", "reaction_updated":
			c.mu.Lock()
			c.events = append(c.events, f)
			c.mu.Unlock()
		case "token_expiring":
		default:
			select {
			case c.ctrl <- f:
			default:
			}
		}
	}
}

// next waits for a control frame of type typ (joined, errors…).
func (c *mnClient) next(typ string) map[string]any {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f := <-c.ctrl:
			if f["type"] == typ {
				return f
			}
			if f["type"] == "error" {
				c.t.Fatalf("%s: error frame while waiting for %s: %v", c.u.name, typ, f)
			}
		case <-c.closed:
			c.t.Fatalf("%s: socket closed while waiting for %s", c.u.name, typ)
		case <-timeout:
			c.t.Fatalf("%s: no %s frame within 10 s", c.u.name, typ)
		}
	}
}

func (c *mnClient) join(conv int64, last *int64) map[string]any {
	c.t.Helper()
	f := map[string]any{"type": "join_conversation", "conversation_id": conv}
	if last != nil {
		f["last_message_id"] = *last
	}
	if err := c.conn.WriteJSON(f); err != nil {
		c.t.Fatal(err)
	}
	return c.next("joined")
}

func (c *mnClient) received(conv int64) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs[conv])
}

func (c *mnClient) sawPresence(userID int64, status string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.presence, fmt.Sprintf("%d:%s", userID, status))
}

// sawEvent reports whether an event of type typ matching match arrived.
func (c *mnClient) sawEvent(typ string, match func(map[string]any) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.events {
		if f["type"] == typ && match(f) {
			return true
		}
	}
	return false
}

// traffic is senders posting into one conversation, each through its own
// node, until halted.
type traffic struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	ids  []int64 // acknowledged
}

// startTraffic starts one sender per user, each pausing every between
// sends; a failed send fails the test and stops that sender.
func (c *cluster) startTraffic(t *testing.T, conv int64, every time.Duration, senders ...mnUser) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for _, u := range senders {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				id, err := mnSend(c.nodes[u.node].URL, u, conv, fmt.Sprintf("%s #%d", u.name, i))
				if err != nil {
					t.Error(err)
					return
				}
				tr.mu.Lock()
				tr.ids = append(tr.ids, id)
				tr.mu.Unlock()
				time.Sleep(every)
			}
		}()
	}
	return tr
}

// acked returns the ids acknowledged so far.
func (tr *traffic) acked() []int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.ids)
}

// halt stops the senders and returns every acknowledged id.
func (tr *traffic) halt() []int64 {
	close(tr.stop)
	tr.wg.Wait()
	return tr.acked()
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOneOrder requires the stored history of conv to be numbered 1..N
// in id order, and every client to have received exactly that list.
func checkOneOrder(t *testing.T, c *cluster, reader mnUser, conv int64, clients []*mnClient, acked []int64) {
	t.Helper()
	ids, seqs := c.history(0, reader, conv)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("conversation %d: seq %v at position %d, want %d (seqs %v)", conv, s, i, i+1, seqs)
		}
	}
	for _, id := range acked {
		if !slices.Contains(ids, id) {
			t.Fatalf("conversation %d: acknowledged message %d is not in the history", conv, id)
		}
	}
	eventually(t, 20*time.Second, "every client receives every message", func() bool {
		for _, cl := range clients {
			if len(cl.received(conv)) < len(ids) {
				return false
			}
		}
		return true
	})
	for _, cl := range clients {
		if got := cl.received(conv); !slices.Equal(got, ids) {
			t.Fatalf("%s (node %d) received conversation %d as\n%v\nwant (the stored order)\n%v",
				cl.u.name, cl.u.node, conv, got, ids)
		}
	}
}

func TestMultiNode_ThirtyClientsSeeOneOrder(t *testing.T) {
	const nodes, users, convs, perSender = 3, 30, 3, 25
	c := startCluster(t, nodes)
	var us []mnUser
	for i := range users {
		us = append(us, c.register(fmt.Sprintf("mn%d", i), i%nodes))
	}
	var conversations []int64
	for range convs {
		conversations = append(conversations, c.group(us[0], us))
	}
	var clients []*mnClient
	for _, u := range us {
		cl := dialNode(t, c.nodes[u.node], u)
		for _, conv := range conversations {
			cl.join(conv, nil)
		}
		clients = append(clients, cl)
	}

	// Two senders per node, each into every conversation in turn, all at
	// once: commits on different nodes interleave in every conversation.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[int64][]int64{}
		fail  atomic.Value
	)
	for s := range 2 * nodes {
		u := us[s]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				conv := conversations[(i+s)%convs]
				id, err := mnSend(c.nodes[u.node].URL, u, conv, fmt.Sprintf("%s #%d", u.name, i))
				if err != nil {
					fail.Store(err)
					return
				}
				mu.Lock()
				acked[conv] = append(acked[conv], id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		t.Fatal(err)
	}
	for _, conv := range conversations {
		checkOneOrder(t, c, us[0], conv, clients, acked[conv])
	}
}

func TestMultiNode_KilledNodesClientsRecoverElsewhere(t *testing.T) {
	c := startCluster(t, 3)
	observer := c.register("watcher", 0)
	sender0, sender1 := c.register("talker0", 0), c.register("talker1", 1)
	var victims []mnUser
	for i := range 5 {
		victims = append(victims, c.register(fmt.Sprintf("victim%d", i), 2))
	}
	everyone := append([]mnUser{observer, sender0, sender1}, victims...)
	conv := c.group(observer, everyone)

	obs := dialNode(t, c.nodes[0], observer)
	obs.join(conv, nil)
	var vcs []*mnClient
	for _, v := range victims {
		vc := dialNode(t, c.nodes[2], v)
		vc.join(conv, nil)
		vcs = append(vcs, vc)
	}

	// Traffic from nodes 0 and 1 throughout; the pause keeps the victims'
	// gap under the 1,000 messages a join replays.
	tr := c.startTraffic(t, conv, 40*time.Millisecond, sender0, sender1)
	eventually(t, 10*time.Second, "victims receive traffic", func() bool { return len(vcs[0].received(conv)) >= 20 })

	p := c.nodes[2]
	p.Cmd.Process.Kill()
	<-p.Done()

	// Nobody said goodbye: the other nodes sweep the dead node's users
	// once its announcement expires.
	for _, v := range victims {
		eventually(t, 20*time.Second, fmt.Sprintf("the observer sees %s offline", v.name), func() bool {
			return obs.sawPresence(v.id, "offline")
		})
	}

	// Each victim reconnects to node 1 and recovers from its last message.
	var again []*mnClient
	for i, v := range victims {
		got := vcs[i].received(conv)
		last := int64(0)
		if len(got) > 0 {
			last = got[len(got)-1]
		}
		v.node = 1
		vc := dialNode(t, c.nodes[1], v)
		if f := vc.join(conv, &last); f["recovered"] != true {
			t.Fatalf("%s: join after the crash did not recover: %v", v.name, f)
		}
		again = append(again, vc)
	}
	for _, v := range victims {
		eventually(t, 10*time.Second, fmt.Sprintf("the observer sees %s online again", v.name), func() bool {
			return obs.sawPresence(v.id, "online")
		})
	}
	time.Sleep(200 * time.Millisecond)
	sent := tr.halt()

	ids, _ := c.history(0, observer, conv)
	if len(ids) != len(sent) {
		t.Fatalf("%d messages stored, %d acknowledged", len(ids), len(sent))
	}
	for i := range victims {
		eventually(t, 20*time.Second, "recovered clients catch up", func() bool {
			return len(vcs[i].received(conv))+len(again[i].received(conv)) >= len(ids)
		})
		got := append(vcs[i].received(conv), again[i].received(conv)...)
		if !slices.Equal(got, ids) {
			t.Fatalf("%s saw, across the crash,\n%v\nwant\n%v", victims[i].name, got, ids)
		}
	}
	eventually(t, 10*time.Second, "the observer gets everything", func() bool { return len(obs.received(conv)) >= len(ids) })
	if got := obs.received(conv); !slices.Equal(got, ids) {
		t.Fatalf("the observer saw\n%v\nwant\n%v", got, ids)
	}
}

func TestMultiNode_RedisRestartLosesNothing(t *testing.T) {
	c := startCluster(t, 3)
	var us []mnUser
	for i := range 6 {
		us = append(us, c.register(fmt.Sprintf("rr%d", i), i%3))
	}
	conv := c.group(us[0], us)
	var clients []*mnClient
	for _, u := range us {
		cl := dialNode(t, c.nodes[u.node], u)
		cl.join(conv, nil)
		clients = append(clients, cl)
	}

	toEdit, err := mnSend(c.nodes[0].URL, us[0], conv, "to be edited while Redis is away")
	if err != nil {
		t.Fatal(err)
	}
	toDelete, err := mnSend(c.nodes[0].URL, us[0], conv, "to be deleted while Redis is away")
	if err != nil {
		t.Fatal(err)
	}
	tr := c.startTraffic(t, conv, 5*time.Millisecond, us[:3]...) // one sender per node
	time.Sleep(500 * time.Millisecond)

	c.redis.Stop()
	for _, p := range c.nodes {
		c.waitReady(p, "degraded", 10*time.Second)
	}
	// An edit and a deletion on node 0, whose events reach no other node.
	if code, m := c.nodes[0].Call(t, http.MethodPatch, fmt.Sprintf("/api/messages/%d/", toEdit), us[0].access,
		map[string]any{"content": "edited while Redis was away"}); code != http.StatusOK {
		t.Fatalf("edit: %d %v", code, m)
	}
	if code, m := c.nodes[0].Call(t, http.MethodDelete, fmt.Sprintf("/api/messages/%d/", toDelete), us[0].access, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, m)
	}
	before := len(tr.acked())
	time.Sleep(time.Second) // nodes keep taking messages without Redis
	if len(tr.acked()) == before {
		t.Fatal("no message was acknowledged while Redis was down")
	}
	if resp, err := http.Get(c.nodes[0].URL + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "confab_cluster_degraded 1") {
			t.Errorf("/metrics does not say degraded while Redis is down")
		}
	}

	c.redis.Resume()
	for _, p := range c.nodes {
		c.waitReady(p, "ready", 15*time.Second)
	}
	time.Sleep(500 * time.Millisecond) // delivery resumes through Redis
	acked := tr.halt()
	if t.Failed() {
		return
	}
	checkOneOrder(t, c, us[0], conv, clients, acked)
	// The nodes caught up on the edit and the deletion too, from the
	// database: every client saw both.
	for i, cl := range clients {
		msgID := func(id int64) func(map[string]any) bool {
			return func(f map[string]any) bool {
				m, _ := f["message"].(map[string]any)
				return m != nil && int64(m["id"].(float64)) == id
			}
		}
		eventually(t, 10*time.Second, fmt.Sprintf("client %d (node %d) saw the edit and the deletion", i, us[i].node), func() bool {
			return cl.sawEvent("message_updated", msgID(toEdit)) && cl.sawEvent("message_deleted", msgID(toDelete))
		})
	}

	// Redis came back empty: each node told it again who is online.
	eventually(t, 10*time.Second, "a user connected on node 2 is online as seen from node 0 after the restart", func() bool {
		return c.seesOnline(0, us[0], us[2])
	})
}

// seesOnline reports whether asker, asking node, finds u online (the
// user search's is_online).
func (c *cluster) seesOnline(node int, asker, u mnUser) bool {
	req, _ := http.NewRequest(http.MethodGet, c.nodes[node].URL+"/api/users/?search="+u.name, nil)
	req.Header.Set("Authorization", "Bearer "+asker.access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var found struct {
		Results []struct {
			ID       int64 `json:"id"`
			IsOnline bool  `json:"is_online"`
		} `json:"results"`
	}
	json.NewDecoder(resp.Body).Decode(&found)
	return len(found.Results) == 1 && found.Results[0].ID == u.id && found.Results[0].IsOnline
}

func TestMultiNode_LiveEventsCrossNodes(t *testing.T) {
	c := startCluster(t, 2)
	alice, bob := c.register("alice_x", 0), c.register("bob_x", 1)
	carol, dave := c.register("carol_x", 1), c.register("dave_x", 1)
	conv := c.group(alice, []mnUser{alice, bob, carol})

	// Bob connects on node 1 with a ticket that node 0 issued.
	code, m := c.nodes[0].Call(t, http.MethodPost, "/api/auth/ws-ticket/", bob.access, nil)
	if code != http.StatusOK {
		t.Fatalf("ticket: %d %v", code, m)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(c.nodes[1].URL, "http")+"/ws/chat/?ticket="+m["ticket"].(string), nil)
	if err != nil {
		t.Fatalf("a ticket from node 0 does not open a socket on node 1: %v", err)
	}
	conn.Close()

	a := dialNode(t, c.nodes[0], alice)
	b := dialNode(t, c.nodes[1], bob)
	cc := dialNode(t, c.nodes[1], carol) // not joined: notifications
	a.join(conv, nil)
	if f := b.join(conv, nil); !slices.Contains(f["online_user_ids"].([]any), any(float64(alice.id))) {
		t.Errorf("bob's joined frame on node 1 does not list alice (online on node 0): %v", f)
	}

	a.conn.WriteJSON(map[string]any{"type": "typing", "conversation_id": conv, "is_typing": true})
	eventually(t, 5*time.Second, "bob (node 1) sees alice (node 0) typing", func() bool {
		return b.sawEvent("typing", func(f map[string]any) bool { return f["user_id"] == float64(alice.id) && f["is_typing"] == true })
	})

	id, err := mnSend(c.nodes[0].URL, alice, conv, "hello across")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "carol (node 1, not joined) is notified of alice's message", func() bool {
		return cc.sawEvent("notification", func(f map[string]any) bool {
			msg, _ := f["message"].(map[string]any)
			return msg != nil && msg["id"] == float64(id)
		})
	})

	b.conn.WriteJSON(map[string]any{"type": "read_receipt", "conversation_id": conv, "message_id": id})
	eventually(t, 5*time.Second, "alice (node 0) gets bob's read receipt (node 1)", func() bool {
		return a.sawEvent("read_receipt", func(f map[string]any) bool { return f["user_id"] == float64(bob.id) && f["message_id"] == float64(id) })
	})

	code, m = c.nodes[0].Call(t, http.MethodPost, fmt.Sprintf("/api/conversations/%d/participants/", conv), alice.access,
		map[string]any{"user_id": dave.id})
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("add participant: %d %v", code, m)
	}
	eventually(t, 5*time.Second, "bob (node 1) gets conversation_updated for a change made on node 0", func() bool {
		return b.sawEvent("conversation_updated", func(f map[string]any) bool {
			cv, _ := f["conversation"].(map[string]any)
			ps, _ := cv["participants"].([]any)
			return len(ps) == 4
		})
	})

	// Removed on node 0: bob's socket on node 1 stops getting the conversation.
	code, _ = c.nodes[0].Call(t, http.MethodDelete, fmt.Sprintf("/api/conversations/%d/participants/%d/", conv, bob.id), alice.access, nil)
	if code != http.StatusNoContent {
		t.Fatalf("remove bob: %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	before := len(b.received(conv))
	if _, err := mnSend(c.nodes[0].URL, alice, conv, "bob is gone"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := len(b.received(conv)); got != before {
		t.Errorf("bob, removed on node 0, still got a message on node 1")
	}
}

// A password changed on one node closes the other sessions' sockets on
// every node with 4001 (the revocation crosses through Redis), and their
// tokens are refused everywhere; the changing session's socket, on the
// other node, stays open.
func TestMultiNode_PasswordChangeEndsSessionsOnEveryNode(t *testing.T) {
	c := startCluster(t, 2)
	phone := c.register("pat_x", 0)
	code, m := c.nodes[1].Call(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": phone.name, "password": "correct horse battery"})
	if code != http.StatusOK {
		t.Fatalf("login on node 1: %d %v", code, m)
	}
	laptop := mnUser{id: phone.id, name: phone.name, access: m["access"].(string), node: 1}

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	phoneSock, _, err := d.Dial("ws"+strings.TrimPrefix(c.nodes[1].URL, "http")+"/ws/chat/?token="+phone.access, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phoneSock.Close()
	closed := make(chan int, 1)
	go func() {
		for {
			if _, _, err := phoneSock.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					closed <- ce.Code
				} else {
					closed <- 0
				}
				return
			}
		}
	}()
	laptopSock := dialNode(t, c.nodes[0], laptop)

	if code, m := c.nodes[0].Call(t, http.MethodPatch, "/api/users/me/", laptop.access, map[string]string{"password": "a brand new password"}); code != http.StatusOK {
		t.Fatalf("change on node 0: %d %v", code, m)
	}
	select {
	case code := <-closed:
		if code != 4001 {
			t.Errorf("the phone's socket on node 1 closed with %d, want 4001", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the phone's socket on node 1 is still open 10 s after the change on node 0")
	}
	for i, p := range c.nodes {
		if code, _ := p.Call(t, http.MethodGet, "/api/users/me/", phone.access, nil); code != http.StatusUnauthorized {
			t.Errorf("the phone's access token on node %d: %d, want 401", i, code)
		}
		if code, _ := p.Call(t, http.MethodGet, "/api/users/me/", laptop.access, nil); code != http.StatusOK {
			t.Errorf("the laptop's access token on node %d: %d, want 200", i, code)
		}
	}
	if err := laptopSock.conn.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	laptopSock.next("pong")
}

// An account deleted through one node has its socket on the other node
// closed with 4001 "account deleted" (through Redis), its tokens refused
// everywhere, and its messages shown as tombstones on both.
func TestMultiNode_DeletedAccountClosedOnEveryNode(t *testing.T) {
	c := startCluster(t, 2)
	gone := c.register("leaving_x", 0)
	stays := c.register("staying_x", 1)
	conv := c.group(stays, []mnUser{gone})
	said, err := mnSend(c.nodes[0].URL, gone, conv, "a secret")
	if err != nil {
		t.Fatal(err)
	}

	done := watchClose(t, c.nodes[1].URL, gone.access)
	if code, m := c.nodes[0].Call(t, http.MethodDelete, "/api/users/me/", gone.access, map[string]string{"password": "correct horse battery"}); code != http.StatusNoContent {
		t.Fatalf("delete on node 0: %d %v", code, m)
	}
	select {
	case got := <-done:
		if got.code != 4001 || got.reason != "account deleted" {
			t.Errorf("the socket on node 1 closed %d %q, want 4001 \"account deleted\"", got.code, got.reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the socket on node 1 is still open 10 s after the deletion on node 0")
	}
	for i, p := range c.nodes {
		if code, _ := p.Call(t, http.MethodGet, "/api/users/me/", gone.access, nil); code != http.StatusUnauthorized {
			t.Errorf("the deleted account's token on node %d: %d, want 401", i, code)
		}
		for _, m := range c.messages(i, stays, conv) {
			if m.ID == said && (!m.IsDeleted || m.Content != "") {
				t.Errorf("node %d shows the deleted account's message as %+v", i, m)
			}
		}
	}
}
