package systemtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/api"
)

// The fault tests put Postgres and Redis behind toxiproxy and break the
// way to them while nodes carry traffic: clients that behave as the
// contract tells them to (retry a 503 with the same client_id, reconnect
// and recover with last_message_id) must end with every acknowledged
// message stored once and received once, in one order.

// EnvFaultLong makes each fault of the bad-network test last 20 s instead
// of 3 s.
const EnvFaultLong = "CONFAB_FAULT_LONG"

// faultClient is a socket that stays joined to one conversation across
// closes: it reconnects every 200 ms and rejoins with last_message_id,
// recording every new_message of the conversation in arrival order.
type faultClient struct {
	p    *Proc
	u    mnUser
	conv int64
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	ids      []int64
	closes   map[int]int // close codes seen, 0 for a dial that failed
	problems []string
}

func startFaultClient(p *Proc, u mnUser, conv int64) *faultClient {
	c := &faultClient{p: p, u: u, conv: conv, stop: make(chan struct{}), done: make(chan struct{}), closes: map[int]int{}}
	go c.run()
	return c
}

func (c *faultClient) run() {
	defer close(c.done)
	for {
		c.session()
		select {
		case <-c.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// session is one socket: dial, join (recovering after the last message
// received), record until it closes.
func (c *faultClient) session() {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(c.p.URL, "http")+"/ws/chat/?token="+c.u.access, nil)
	if err != nil {
		c.closed(0)
		return
	}
	end := make(chan struct{})
	defer close(end)
	go func() {
		select {
		case <-c.stop:
		case <-end:
		}
		conn.Close()
	}()
	c.mu.Lock()
	last := int64(0)
	if len(c.ids) > 0 {
		last = c.ids[len(c.ids)-1]
	}
	c.mu.Unlock()
	if err := conn.WriteJSON(map[string]any{"type": "join_conversation", "conversation_id": c.conv, "last_message_id": last}); err != nil {
		return
	}
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closed(ce.Code)
			}
			return
		}
		var f struct {
			Type           string
			Code           string
			Recovered      *bool
			ConversationID int64 `json:"conversation_id"`
			Message        struct {
				ID             int64
				ConversationID int64 `json:"conversation_id"`
			}
		}
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "new_message":
			if f.Message.ConversationID == c.conv {
				c.mu.Lock()
				c.ids = append(c.ids, f.Message.ID)
				c.mu.Unlock()
			}
		case "joined":
			if f.Recovered != nil && !*f.Recovered {
				c.problem("joined without recovering: more than a join replays was missed")
			}
		case "error":
			// A join the database could not answer: try again on a
			// new socket.
			if f.Code != "unavailable" {
				c.problem("error frame " + string(b))
			}
			return
		}
	}
}

func (c *faultClient) closed(code int) {
	c.mu.Lock()
	c.closes[code]++
	c.mu.Unlock()
}

func (c *faultClient) problem(p string) {
	c.mu.Lock()
	c.problems = append(c.problems, p)
	c.mu.Unlock()
}

func (c *faultClient) received() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

func (c *faultClient) halt() {
	close(c.stop)
	<-c.done
}

// faultSender posts messages into one conversation through one node, one
// at a time, each with its own client_id, as a client should: a 503 is
// sent again with the same client_id until it is acknowledged, even after
// halt.
type faultSender struct {
	p      *Proc
	u      mnUser
	conv   int64
	prefix string
	every  time.Duration
	stop   chan struct{}
	done   chan struct{}

	mu        sync.Mutex
	acked     map[string]int64 // client_id → message id
	n503      int              // 503 unavailable answers
	slowest   time.Duration    // the longest a 503 took
	originals int              // 200: a retried send found stored (its commit had been unknown)
	problems  []string
}

func startFaultSender(p *Proc, u mnUser, conv int64, every time.Duration) *faultSender {
	s := &faultSender{p: p, u: u, conv: conv, prefix: u.name + "-", every: every,
		stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]int64{}}
	go s.run()
	return s
}

func (s *faultSender) run() {
	defer close(s.done)
	url := fmt.Sprintf("%s/api/conversations/%d/messages/", s.p.URL, s.conv)
	for i := 0; ; i++ {
		cid := s.prefix + strconv.Itoa(i)
		giveUp := time.Time{}
		for !s.send(url, cid) {
			select {
			case <-s.stop:
				if giveUp.IsZero() {
					giveUp = time.Now().Add(30 * time.Second)
				}
			default:
			}
			if !giveUp.IsZero() && time.Now().After(giveUp) {
				s.problem(cid + ": never acknowledged")
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(s.every):
		}
	}
}

// send makes one attempt; true when the message is acknowledged.
func (s *faultSender) send(url, cid string) bool {
	body := fmt.Sprintf(`{"content":%q,"client_id":%q}`, "from "+cid, cid)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.u.access)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.problem(cid + ": " + err.Error())
		return false
	}
	defer resp.Body.Close()
	took := time.Since(start)
	var m struct {
		ID   int64
		Code string
	}
	json.NewDecoder(resp.Body).Decode(&m)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		if resp.StatusCode == http.StatusOK {
			s.originals++
		}
		s.acked[cid] = m.ID
		return true
	case resp.StatusCode == http.StatusServiceUnavailable && m.Code == "unavailable" && resp.Header.Get("Retry-After") != "":
		s.n503++
		s.slowest = max(s.slowest, took)
	default:
		s.problems = append(s.problems, fmt.Sprintf("%s: %d %s (Retry-After %q)", cid, resp.StatusCode, m.Code, resp.Header.Get("Retry-After")))
	}
	return false
}

func (s *faultSender) problem(p string) {
	s.mu.Lock()
	s.problems = append(s.problems, p)
	s.mu.Unlock()
}

func (s *faultSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func (s *faultSender) halt() {
	close(s.stop)
	<-s.done
}

// faultRun is traffic on a cluster: a sender and a reader on every node,
// all in one conversation.
type faultRun struct {
	t       *testing.T
	c       *cluster
	users   []mnUser
	conv    int64
	senders []*faultSender
	readers []*faultClient
}

func startFaultRun(t *testing.T, c *cluster) *faultRun {
	t.Helper()
	r := &faultRun{t: t, c: c}
	var readers []mnUser
	for i := range c.nodes {
		r.users = append(r.users, c.register(fmt.Sprintf("send%d", i), i))
		readers = append(readers, c.register(fmt.Sprintf("read%d", i), i))
	}
	r.users = append(r.users, readers...)
	r.users = append(r.users, c.register("wsuser", 0))
	r.conv = c.group(r.users[0], r.users)
	for _, u := range readers {
		r.readers = append(r.readers, startFaultClient(c.nodes[u.node], u, r.conv))
	}
	t.Cleanup(func() {
		for _, rd := range r.readers {
			select {
			case <-rd.stop:
			default:
				rd.halt()
			}
		}
	})
	time.Sleep(300 * time.Millisecond) // the readers have joined
	for i := range c.nodes {
		r.senders = append(r.senders, startFaultSender(c.nodes[i], r.users[i], r.conv, 20*time.Millisecond))
	}
	return r
}

// acked returns how many messages have been acknowledged so far.
func (r *faultRun) acked() int {
	n := 0
	for _, s := range r.senders {
		n += s.count()
	}
	return n
}

// waitProgress waits until n more messages have been acknowledged.
func (r *faultRun) waitProgress(n int, within time.Duration) {
	r.t.Helper()
	from := r.acked()
	eventually(r.t, within, fmt.Sprintf("%d more messages acknowledged", n), func() bool { return r.acked() >= from+n })
}

// finish stops the senders (each first gets its last message
// acknowledged), then checks, with extra (client_id → id) acknowledged
// elsewhere: every acknowledged message is stored once, nothing else is
// stored, seq runs 1..N, each sender's messages are stored in the order
// it sent them, and every reader received exactly the stored order.
func (r *faultRun) finish(extra map[string]int64) {
	t := r.t
	t.Helper()
	acked := map[string]int64{}
	for cid, id := range extra {
		acked[cid] = id
	}
	var n503, originals int
	var slowest time.Duration
	for _, s := range r.senders {
		s.halt()
		for _, p := range s.problems {
			t.Errorf("%s: %s", s.u.name, p)
		}
		for cid, id := range s.acked {
			acked[cid] = id
		}
		n503 += s.n503
		originals += s.originals
		slowest = max(slowest, s.slowest)
	}
	if t.Failed() {
		return
	}
	stored := r.c.messages(0, r.users[0], r.conv)
	ids := make([]int64, 0, len(stored))
	seen := map[string]int64{}
	lastOf := map[string]int{} // sender prefix → last index stored
	for i, m := range stored {
		ids = append(ids, m.ID)
		if m.Seq != int64(i+1) {
			t.Fatalf("seq %d at position %d, want %d", m.Seq, i, i+1)
		}
		if m.ClientID == nil {
			t.Fatalf("message %d has no client_id", m.ID)
		}
		cid := *m.ClientID
		if prev, ok := seen[cid]; ok {
			t.Fatalf("client_id %s stored twice: %d and %d", cid, prev, m.ID)
		}
		seen[cid] = m.ID
		if want, ok := acked[cid]; !ok {
			t.Errorf("message %d (%s) is stored but was never acknowledged", m.ID, cid)
		} else if want != m.ID {
			t.Errorf("%s was acknowledged as %d but stored as %d", cid, want, m.ID)
		}
		if cut := strings.LastIndex(cid, "-"); cut > 0 && strings.HasPrefix(cid, "send") {
			k, _ := strconv.Atoi(cid[cut+1:])
			if prev, ok := lastOf[cid[:cut]]; ok && k <= prev {
				t.Errorf("%s stored after %s%d: not in the order it was sent", cid, cid[:cut+1], prev)
			}
			lastOf[cid[:cut]] = k
		}
	}
	for cid, id := range acked {
		if _, ok := seen[cid]; !ok {
			t.Errorf("acknowledged %s (%d) is not stored", cid, id)
		}
	}
	eventually(t, 30*time.Second, "every reader receives every stored message", func() bool {
		for _, rd := range r.readers {
			if len(rd.received()) < len(ids) {
				return false
			}
		}
		return true
	})
	for _, rd := range r.readers {
		rd.halt()
		if got := rd.received(); !slices.Equal(got, ids) {
			t.Errorf("%s (node %d) received\n%v\nwant the stored order\n%v", rd.u.name, rd.u.node, got, ids)
		}
		for _, p := range rd.problems {
			t.Errorf("%s: %s", rd.u.name, p)
		}
	}
	var closes []string
	for _, rd := range r.readers {
		closes = append(closes, fmt.Sprintf("%s %v", rd.u.name, rd.closes))
	}
	t.Logf("%d acknowledged, %d stored, each once and in order; %d answers 503 unavailable (slowest %v); "+
		"%d retries found their message stored; reader closes (code: count, 0 a failed dial): %s",
		len(acked), len(stored), n503, slowest.Round(time.Millisecond), originals, strings.Join(closes, "; "))
}

// metric reads one unlabelled series from p's /metrics.
func metric(t *testing.T, p *Proc, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("%s/metrics has no %s", p.URL, name)
	return 0
}

// readyzStatus returns /readyz's HTTP status (0 when it did not answer).
func readyzStatus(p *Proc) int {
	resp, err := http.Get(p.URL + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// goroutineSlack is how many more goroutines than before a fault a node
// may run during and after it: a few connection attempts and requests in
// flight, not one per failed request.
const goroutineSlack = 40

func TestFault_PostgresGoesAwayAndComesBack(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) { testPostgresGoesAway(t, n) })
	}
}

func testPostgresGoesAway(t *testing.T, nodes int) {
	x := startToxiproxy(t)
	c := startClusterVia(t, nodes, func(db, redis string) (string, string) { return x.proxyURL("pg", db), redis })
	run := startFaultRun(t, c)
	wsUser := run.users[len(run.users)-1]
	wsc := dialNode(t, c.nodes[0], wsUser)
	run.waitProgress(30, 20*time.Second)

	before := make([]float64, nodes)
	heapBefore := make([]float64, nodes)
	for i, p := range c.nodes {
		before[i] = metric(t, p, "go_goroutines")
		heapBefore[i] = metric(t, p, "go_memstats_heap_inuse_bytes")
	}

	x.setEnabled("pg", false) // every connection closed, new ones refused
	cut := time.Now()
	for _, p := range c.nodes {
		eventually(t, 5*time.Second, p.URL+"/readyz answers 503", func() bool { return readyzStatus(p) == http.StatusServiceUnavailable })
	}

	// A new_message frame is answered with an error frame, unavailable.
	start := time.Now()
	if err := wsc.conn.WriteJSON(map[string]any{"type": "new_message", "conversation_id": run.conv,
		"content": "sent on a socket while the database is away", "client_id": "ws-1", "request_id": "w1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-wsc.ctrl:
		if f["type"] != "error" || f["code"] != "unavailable" || f["request_id"] != "w1" {
			t.Fatalf("new_message while the database is away: %v, want an unavailable error for w1", f)
		}
	case <-time.After(api.RequestTimeout + 2*time.Second):
		t.Fatal("new_message while the database is away: no answer")
	}
	t.Logf("the socket's new_message was refused in %v", time.Since(start).Round(time.Millisecond))

	// A socket that opens now is told to come back later, not that its
	// token is bad.
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if conn, _, err := d.Dial("ws"+strings.TrimPrefix(c.nodes[0].URL, "http")+"/ws/chat/?token="+wsUser.access, nil); err == nil {
		_, _, err = conn.ReadMessage()
		conn.Close()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
			t.Errorf("a socket opened while the database is away: %v, want close 1013", err)
		}
	} else {
		t.Errorf("dial while the database is away: %v", err)
	}

	time.Sleep(time.Until(cut.Add(4 * time.Second))) // senders keep trying meanwhile
	for i, p := range c.nodes {
		g := metric(t, p, "go_goroutines")
		heap := metric(t, p, "go_memstats_heap_inuse_bytes")
		t.Logf("node %d while the database is away: %v goroutines (%v before), heap in use %.1f MiB (%.1f before)",
			i, g, before[i], heap/(1<<20), heapBefore[i]/(1<<20))
		if g > before[i]+goroutineSlack {
			t.Errorf("node %d: %v goroutines while the database is away, %v before", i, g, before[i])
		}
		if heap > 2*heapBefore[i]+32<<20 {
			t.Errorf("node %d: heap in use %v while the database is away, %v before", i, heap, heapBefore[i])
		}
	}
	for _, s := range run.senders {
		s.mu.Lock()
		n := s.n503
		s.mu.Unlock()
		if n == 0 {
			t.Errorf("%s got no 503 while the database was away", s.u.name)
		}
	}

	x.setEnabled("pg", true)
	back := time.Now()
	for _, p := range c.nodes {
		eventually(t, 15*time.Second, p.URL+"/readyz answers 200 again", func() bool { return readyzStatus(p) == http.StatusOK })
	}
	run.waitProgress(30, 20*time.Second)
	t.Logf("ready and acknowledging again %v after the database came back", time.Since(back).Round(time.Millisecond))

	// The socket's refused message, sent again with its client_id.
	if err := wsc.conn.WriteJSON(map[string]any{"type": "new_message", "conversation_id": run.conv,
		"content": "sent on a socket while the database is away", "client_id": "ws-1", "request_id": "w2"}); err != nil {
		t.Fatal(err)
	}
	f := wsc.next("message_ack")
	msg, _ := f["message"].(map[string]any)
	if msg == nil {
		t.Fatalf("message_ack without a message: %v", f)
	}
	run.finish(map[string]int64{"ws-1": int64(msg["id"].(float64))})

	for i, p := range c.nodes {
		g := metric(t, p, "go_goroutines")
		if g > before[i]+goroutineSlack {
			t.Errorf("node %d: %v goroutines after the outage, %v before", i, g, before[i])
		}
	}
}

func TestFault_BadNetworkToPostgresAndRedis(t *testing.T) {
	hold := 3 * time.Second
	if os.Getenv(EnvFaultLong) != "" {
		hold = 20 * time.Second
	}
	x := startToxiproxy(t)
	c := startClusterVia(t, 3, func(db, redis string) (string, string) {
		return x.proxyURL("pg", db), x.proxyURL("redis", redis)
	})
	run := startFaultRun(t, c)
	run.waitProgress(30, 20*time.Second)

	// Each fault in turn on both services, while the traffic goes on.
	faults := []struct {
		name   string
		toxics []toxic
	}{
		{"latency 200 ms each way", []toxic{
			{Name: "lat_down", Type: "latency", Stream: "downstream", Attributes: map[string]int{"latency": 200}},
			{Name: "lat_up", Type: "latency", Stream: "upstream", Attributes: map[string]int{"latency": 200}},
		}},
		{"bandwidth 32 KB/s", []toxic{
			{Name: "bw_down", Type: "bandwidth", Stream: "downstream", Attributes: map[string]int{"rate": 32}},
			{Name: "bw_up", Type: "bandwidth", Stream: "upstream", Attributes: map[string]int{"rate": 32}},
		}},
		{"timeout: data stops, connections close after 1 s", []toxic{
			{Name: "timeout", Type: "timeout", Stream: "upstream", Attributes: map[string]int{"timeout": 1000}},
		}},
		{"reset_peer: connections reset after 300 ms", []toxic{
			{Name: "reset", Type: "reset_peer", Stream: "upstream", Attributes: map[string]int{"timeout": 300}},
		}},
	}
	for _, f := range faults {
		for _, proxy := range []string{"pg", "redis"} {
			for _, tx := range f.toxics {
				x.addToxic(proxy, tx)
			}
		}
		from := run.acked()
		time.Sleep(hold)
		for _, proxy := range []string{"pg", "redis"} {
			for _, tx := range f.toxics {
				x.removeToxic(proxy, tx.Name)
			}
		}
		t.Logf("%s for %v: %d messages acknowledged meanwhile", f.name, hold, run.acked()-from)
	}
	healed := time.Now()
	for _, p := range c.nodes {
		c.waitReady(p, "ready", 20*time.Second)
	}
	run.waitProgress(30, 20*time.Second)
	t.Logf("every node ready and acknowledging %v after the last fault ended", time.Since(healed).Round(time.Millisecond))

	// Presence: a reader connected to node 2 throughout is online as
	// node 0 sees it, within presenceConverges of the faults' end.
	const presenceConverges = 10 * time.Second
	watcher, far := run.users[0], run.readers[2].u
	eventually(t, presenceConverges-time.Since(healed), fmt.Sprintf("%s (node 2) is online as seen from node 0", far.name), func() bool {
		return c.seesOnline(0, watcher, far)
	})
	run.finish(nil)
}
