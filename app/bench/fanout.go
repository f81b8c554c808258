package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxGroup is the server's largest group (a rule of app/chat).
const maxGroup = 1000

func fanoutScenario() *scenario {
	return &scenario{
		name: "fanout", args: "--subs N --msgs M [--publishers P] [--rate R]",
		multi:   true,
		summary: "N sockets in one conversation, M messages over REST: deliveries/s, latency, loss",
		help: `Registers P publishers and N subscribers; the first publisher creates a
group with all of them. Every subscriber opens a socket (/ws/chat/) and
joins the group; then the publishers post M messages in all (not each)
over REST, at R messages per second in all (0: as fast as the server
commits them), each publisher waiting for its previous POST.

Latency runs from just before a POST to a subscriber's receipt of that
message's new_message (the send time travels in the content, on this
process's monotonic clock). Deliveries per second are all deliveries over
the time from the first POST to the last delivery. Every subscriber must
receive every acknowledged message exactly once and in id order: lost,
duplicated and out-of-order counts must be zero, or the exit status is 1.
A subscriber the server closes (e.g. 4008, too slow) reconnects and
recovers with last_message_id, as a client should; the report counts it.

With several --url (the nodes of one cluster, sharing one database and
one Redis), subscriber i keeps its socket on node i modulo their number
and publisher p posts to node p modulo their number; the accounts and the
group are made on the first node. The latency is then also reported
apart for deliveries on the publisher's own node ("same node") and on
another ("other node"), and the difference of their p50 and p99 as the
time the hop through Redis adds.

A group holds at most 1000 people: N + P ≤ 1000.

  confab bench fanout --subs 500 --msgs 200 --publishers 1`,
		timeout: func() time.Duration { return 30 * time.Minute },
		flags: func(fs *flag.FlagSet) func(context.Context, *env) (report, error) {
			c := fanoutConfig{}
			fs.IntVar(&c.subs, "subs", 100, "subscribers (sockets joined to the conversation)")
			fs.IntVar(&c.msgs, "msgs", 1000, "messages to publish, in all")
			fs.IntVar(&c.pubs, "publishers", 1, "concurrent REST publishers")
			fs.Float64Var(&c.rate, "rate", 0, "messages per second, in all (0: as fast as they commit)")
			fs.IntVar(&c.size, "size", 64, "message content length in characters (at least 48, at most 4000)")
			fs.DurationVar(&c.drain, "drain", 15*time.Second, "after the last publish, how long to wait for the deliveries")
			return func(ctx context.Context, e *env) (report, error) {
				switch {
				case c.subs < 1 || c.msgs < 1 || c.pubs < 1:
					return nil, &usageError{"--subs, --msgs and --publishers must be at least 1"}
				case c.subs+c.pubs > maxGroup:
					return nil, &usageError{fmt.Sprintf("a group holds at most %d people (the server's rule), and "+
						"--subs %d + --publishers %d is %d: run several fanout benches side by side for more subscribers",
						maxGroup, c.subs, c.pubs, c.subs+c.pubs)}
				case c.size < minContent || c.size > 4000:
					return nil, &usageError{fmt.Sprintf("--size must be between %d and 4000", minContent)}
				case c.rate < 0:
					return nil, &usageError{"--rate must not be negative"}
				}
				return runFanout(ctx, e, c)
			}
		},
	}
}

type fanoutConfig struct {
	subs, msgs, pubs, size int
	rate                   float64
	drain                  time.Duration
}

type fanoutReport struct {
	header
	Subscribers    int     `json:"subscribers"`
	Publishers     int     `json:"publishers"`
	ConversationID int64   `json:"conversation_id"`
	RateLimit      float64 `json:"rate_limit"`
	Messages       int     `json:"messages"`
	Acked          int64   `json:"acked"`
	PublishErrors  int64   `json:"publish_errors"`
	FirstError     string  `json:"first_error,omitempty"`
	PublishSeconds float64 `json:"publish_seconds"`
	PublishRate    float64 `json:"publishes_per_second"`
	// PostLatency is the REST POST's round trip (the commit).
	PostLatency latency `json:"post_latency"`
	// Nodes is each server's share, with several --url.
	Nodes []nodeShare `json:"nodes,omitempty"`
	// Expected is Acked × Subscribers.
	Expected     int64   `json:"expected_deliveries"`
	Deliveries   int64   `json:"deliveries"`
	DeliverySecs float64 `json:"delivery_seconds"`
	DeliveryRate float64 `json:"deliveries_per_second"`
	Latency      latency `json:"latency"`
	// SameNode and OtherNode split Latency by whether the subscriber's
	// socket is on the node the message was posted to, with several
	// --url; RedisHop is what the other node adds.
	SameNode      *nodeLatency   `json:"same_node_latency,omitempty"`
	OtherNode     *nodeLatency   `json:"other_node_latency,omitempty"`
	RedisHop      *hop           `json:"redis_hop,omitempty"`
	Lost          int64          `json:"lost"`
	Duplicated    int64          `json:"duplicated"`
	OutOfOrder    int64          `json:"out_of_order"`
	Unexpected    int64          `json:"unexpected"`
	Reconnects    int64          `json:"reconnects"`
	CloseCodes    map[string]int `json:"close_codes,omitempty"`
	Unrecovered   int64          `json:"unrecovered"`
	ConnectErrors int64          `json:"connect_errors"`
}

func (r *fanoutReport) failed() bool {
	return r.Lost > 0 || r.Duplicated > 0 || r.OutOfOrder > 0 || r.PublishErrors > 0 ||
		r.ConnectErrors > 0 || r.Unrecovered > 0 || r.Acked != int64(r.Messages)
}

func (r *fanoutReport) rows() [][2]string {
	rl := "unlimited"
	if r.RateLimit > 0 {
		rl = fmt.Sprintf("%g msg/s", r.RateLimit)
	}
	rows := [][2]string{
		{"subscribers × publishers", fmt.Sprintf("%d × %d (conversation %d)", r.Subscribers, r.Publishers, r.ConversationID)},
		{"messages acked", fmt.Sprintf("%d of %d, errors %d, rate %s", r.Acked, r.Messages, r.PublishErrors, rl)},
	}
	if r.FirstError != "" {
		rows = append(rows, [2]string{"first error", r.FirstError})
	}
	rows = append(rows,
		[2]string{"publish rate", fmt.Sprintf("%.0f msg/s (%.2f s)", r.PublishRate, r.PublishSeconds)},
		[2]string{"POST latency", r.PostLatency.String()},
		[2]string{"deliveries", fmt.Sprintf("%d of %d", r.Deliveries, r.Expected)},
		[2]string{"deliveries/s", fmt.Sprintf("%.0f (first POST → last delivery %.2f s)", r.DeliveryRate, r.DeliverySecs)},
		[2]string{"publish→deliver latency", r.Latency.String()},
	)
	if len(r.Nodes) > 0 {
		parts := make([]string, len(r.Nodes))
		for i, n := range r.Nodes {
			parts[i] = fmt.Sprintf("%s %d subs, %d pubs", n.URL, n.Subscribers, n.Publishers)
		}
		rows = append(rows, [2]string{"nodes", strings.Join(parts, "; ")})
	}
	if r.SameNode != nil && r.OtherNode != nil {
		rows = append(rows,
			[2]string{"latency, same node", r.SameNode.String()},
			[2]string{"latency, other node", r.OtherNode.String()})
	}
	if r.RedisHop != nil {
		rows = append(rows, [2]string{"Redis hop (added)", r.RedisHop.String()})
	}
	return append(append(rows,
		[2]string{"lost", fmt.Sprint(r.Lost)},
		[2]string{"duplicated", fmt.Sprint(r.Duplicated)},
		[2]string{"out of order", fmt.Sprint(r.OutOfOrder)},
		[2]string{"unexpected (not acked)", fmt.Sprint(r.Unexpected)},
		[2]string{"closed by the server", fmtCodes(r.CloseCodes)},
		[2]string{"reconnects (recovered)", fmt.Sprintf("%d, unrecovered %d", r.Reconnects, r.Unrecovered)},
		[2]string{"socket connect errors", fmt.Sprint(r.ConnectErrors)},
	), append(r.serverRows(), cpuPer(r.Server, r.Deliveries, "delivery")...)...)
}

// minContent is the shortest content the bench's stamp fits in.
const minContent = 48

// stamp returns content of size characters that carries the send time at
// (on the run's clock) and an identifying tag.
func stamp(at time.Duration, tag string, size int) string {
	s := "bench t=" + strconv.FormatInt(int64(at), 10) + " " + tag + " "
	if len(s) < size {
		s += strings.Repeat("x", size-len(s))
	}
	return s
}

// stampTag reads the tag back from content.
func stampTag(content string) string {
	rest, ok := strings.CutPrefix(content, "bench t=")
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, " ")
	tag, _, _ := strings.Cut(rest, " ")
	return tag
}

// publisherOf reads which publisher posted a fanout message from its tag
// ("p<publisher>-<n>"), or returns -1.
func publisherOf(content string) int {
	num, ok := strings.CutPrefix(stampTag(content), "p")
	if !ok {
		return -1
	}
	num, _, _ = strings.Cut(num, "-")
	p, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return p
}

// nodeShare is one server's share of a fanout run.
type nodeShare struct {
	URL         string `json:"url"`
	Subscribers int    `json:"subscribers"`
	Publishers  int    `json:"publishers"`
}

// stampTime reads the send time back from content.
func stampTime(content string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(content, "bench t=")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(num, 10, 64)
	return time.Duration(n), err == nil
}

// subscriber is one fanout socket's view of the conversation.
type subscriber struct {
	u      *user
	i      int
	joined chan bool // recovered, on each joined reply

	mu   sync.Mutex
	seen map[int64]struct{}
	last int64
	dup  int64
	ooo  int64
	sock *sock
}

// tracker is what all subscribers of a fanout add to.
type tracker struct {
	// nodes is the number of servers; with more than one, each delivery
	// is also added to same or other, by whether the subscriber's node is
	// the one its publisher posted to.
	nodes       int
	lat         hist
	same, other hist
	deliveries  atomic.Int64
	lastAt      atomic.Int64 // the latest delivery, on the run's clock
	closes      codes
	reconnects  atomic.Int64
	failedSubs  atomic.Int64
}

func (t *tracker) delivered(at time.Duration, content string, subNode int) {
	t.deliveries.Add(1)
	if sent, ok := stampTime(content); ok {
		t.lat.add(at - sent)
		if p := publisherOf(content); t.nodes > 1 && p >= 0 {
			if p%t.nodes == subNode {
				t.same.add(at - sent)
			} else {
				t.other.add(at - sent)
			}
		}
	}
	for {
		l := t.lastAt.Load()
		if int64(at) <= l || t.lastAt.CompareAndSwap(l, int64(at)) {
			return
		}
	}
}

func (s *subscriber) handle(e *env, t *tracker, convID int64) func(*frame, time.Duration) {
	return func(f *frame, at time.Duration) {
		switch f.Type {
		case "new_message":
			if f.Message == nil || f.ConversationID != convID {
				return
			}
			id := f.Message.ID
			s.mu.Lock()
			_, dup := s.seen[id]
			switch {
			case dup:
				s.dup++
			case id < s.last:
				s.ooo++
			}
			if !dup {
				s.seen[id] = struct{}{}
				s.last = max(s.last, id)
			}
			s.mu.Unlock()
			if !dup {
				t.delivered(at, f.Message.Content, e.nodeOf(s.i))
			}
		case "joined":
			if f.ConversationID == convID {
				select {
				case s.joined <- f.Recovered:
				default:
				}
			}
		case "error":
			e.protocolErrors.Add(1)
		}
	}
}

// join joins the conversation on the subscriber's socket, recovering after
// last when it is not zero, and waits for the reply.
func (s *subscriber) join(ctx context.Context, sk *sock, convID, last int64) error {
	frame := map[string]any{"type": "join_conversation", "conversation_id": convID}
	if last > 0 {
		frame["last_message_id"] = last
	}
	if err := sk.send(frame); err != nil {
		return err
	}
	select {
	case rec := <-s.joined:
		if !rec {
			return errors.New("joined with recovered:false (more than the server replays were missed)")
		}
		return nil
	case <-sk.done:
		return fmt.Errorf("socket closed while joining: %v", sk.err)
	case <-time.After(handshakeWait):
		return errors.New("no joined reply")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve reads the subscriber's socket until the bench closes it; when the
// server closes it, it reconnects and recovers, a few times at most.
func (s *subscriber) serve(ctx context.Context, e *env, t *tracker, convID int64) {
	for attempt := 0; ; {
		s.sock.run(e, s.u, s.handle(e, t, convID))
		if !s.sock.failed() || ctx.Err() != nil {
			return
		}
		t.closes.add(s.sock.closeCode())
		for {
			attempt++
			if attempt > 5 {
				t.failedSubs.Add(1)
				return
			}
			select {
			case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
			ns, err := e.dial(ctx, s.i, "/ws/chat/", s.u)
			if err != nil {
				continue
			}
			// Under mu, so that closeSubs, which runs after ctx is
			// cancelled, either sees this socket or it is closed here.
			s.mu.Lock()
			if ctx.Err() != nil {
				s.mu.Unlock()
				ns.ws.Close()
				return
			}
			s.sock = ns
			last := s.last
			s.mu.Unlock()
			go func() {
				if err := s.join(ctx, ns, convID, last); err != nil {
					ns.ws.Close() // a failed recovery is a failed socket: try again
				}
			}()
			t.reconnects.Add(1)
			break
		}
	}
}

func runFanout(ctx context.Context, e *env, c fanoutConfig) (report, error) {
	if err := checkFiles(c.subs); err != nil {
		return nil, err
	}
	users, err := e.registerPhase(ctx, c.pubs+c.subs)
	if err != nil {
		return nil, err
	}
	pubs, subUsers := users[:c.pubs], users[c.pubs:]
	convID, err := e.api.createConversation(ctx, pubs[0], users[1:], true, "bench fanout")
	if err != nil {
		return nil, fmt.Errorf("create the group: %w", err)
	}
	r := &fanoutReport{Subscribers: c.subs, Publishers: c.pubs, ConversationID: convID, RateLimit: c.rate, Messages: c.msgs}
	mem := e.memBefore()

	// Open every socket first, then join: a join sends no presence, so the
	// setup does not flood every subscriber with N presence events.
	t := &tracker{nodes: len(e.nodes)}
	subs := make([]*subscriber, c.subs)
	var opened, joinedN, connErrs atomic.Int64
	var firstErr firstError
	e.progress.set(func() string {
		return fmt.Sprintf("sockets open %d/%d, joined %d, errors %d", opened.Load(), c.subs, joinedN.Load(), connErrs.Load())
	})
	var wg, readers sync.WaitGroup
	next := atomic.Int64{}
	subCtx, stopSubs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSubs()
	connCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	for range min(e.opt.concurrency, c.subs) {
		wg.Go(func() {
			for connCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= c.subs {
					return
				}
				s := &subscriber{u: subUsers[i], i: i, joined: make(chan bool, 1), seen: map[int64]struct{}{}}
				sk, err := e.dial(connCtx, i, "/ws/chat/", s.u)
				var limited *connLimitError
				if errors.As(err, &limited) {
					abort(sizeConnLimit(err, c.subs, c.subs))
					return
				}
				if err != nil {
					connErrs.Add(1)
					firstErr.set(err)
					continue
				}
				s.sock = sk
				subs[i] = s
				opened.Add(1)
				readers.Go(func() { s.serve(subCtx, e, t, convID) })
			}
		})
	}
	wg.Wait()
	if err := context.Cause(connCtx); err != nil && ctx.Err() == nil {
		stopSubs()
		closeSubs(subs, e.opt.concurrency)
		readers.Wait()
		return nil, err
	}
	next.Store(0)
	for range min(e.opt.concurrency, c.subs) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= c.subs {
					return
				}
				if s := subs[i]; s != nil {
					if err := s.join(ctx, s.current(), convID, 0); err != nil {
						connErrs.Add(1)
						firstErr.set(fmt.Errorf("join: %w", err))
						continue
					}
					joinedN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	r.ConnectErrors = connErrs.Load()
	if err := ctx.Err(); err != nil {
		stopSubs()
		closeSubs(subs, e.opt.concurrency)
		readers.Wait()
		return nil, err
	}

	// Publish.
	var (
		acked       []int64
		ackMu       sync.Mutex
		postLat     hist
		pubErrs     atomic.Int64
		pubErr      firstError
		sent        atomic.Int64
		firstSendAt = time.Duration(-1)
		firstOnce   sync.Once
	)
	var lim *rate.Limiter
	if c.rate > 0 {
		lim = rate.NewLimiter(rate.Limit(c.rate), 1)
	}
	pubStart := time.Now()
	e.progress.set(func() string {
		d := t.deliveries.Load()
		return fmt.Sprintf("published %d/%d, delivered %d/%d (%.0f/s), errors %d", sent.Load(), c.msgs,
			d, int64(c.msgs)*int64(c.subs), perSec(d, time.Since(pubStart)), pubErrs.Load())
	})
	seq := atomic.Int64{}
	for p := range c.pubs {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := seq.Add(1)
				if n > int64(c.msgs) {
					return
				}
				if lim != nil && lim.Wait(ctx) != nil {
					return
				}
				at := e.since()
				firstOnce.Do(func() { firstSendAt = at })
				tag := fmt.Sprintf("p%d-%d", p, n)
				m, err := e.apiOf(p).post(ctx, pubs[p], convID, stamp(at, tag, c.size), "fan-"+tag)
				sent.Add(1)
				if err != nil {
					if ctx.Err() == nil {
						pubErrs.Add(1)
						pubErr.set(err)
					}
					continue
				}
				postLat.add(e.since() - at)
				ackMu.Lock()
				acked = append(acked, m.ID)
				ackMu.Unlock()
			}
		})
	}
	wg.Wait()
	pubTook := time.Since(pubStart)
	r.Acked, r.PublishErrors, r.FirstError = int64(len(acked)), pubErrs.Load(), firstErr.String()
	if r.FirstError == "" {
		r.FirstError = pubErr.String()
	}
	r.PublishSeconds, r.PublishRate = seconds(pubTook), perSec(r.Acked, pubTook)
	r.PostLatency = postLat.summary()

	// Drain: wait for every subscriber to hold every acknowledged message.
	live := int64(0)
	for _, s := range subs {
		if s != nil {
			live++
		}
	}
	r.Expected = r.Acked * live
	deadline := time.Now().Add(c.drain)
	for t.deliveries.Load() < r.Expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	r.Deliveries = t.deliveries.Load()
	if firstSendAt >= 0 {
		d := time.Duration(t.lastAt.Load()) - firstSendAt
		r.DeliverySecs, r.DeliveryRate = seconds(d), perSec(r.Deliveries, d)
	}
	r.Latency = t.lat.summary()
	if len(e.nodes) > 1 {
		for k, n := range e.nodes {
			r.Nodes = append(r.Nodes, nodeShare{URL: n.t.base, Subscribers: countOn(e, k, c.subs), Publishers: countOn(e, k, c.pubs)})
		}
		same, other := t.same.nodeSummary(), t.other.nodeSummary()
		r.SameNode, r.OtherNode = &same, &other
		if same.Count > 0 && other.Count > 0 {
			r.RedisHop = &hop{P50: round3(other.P50 - same.P50), P99: round3(other.P99 - same.P99)}
		}
	}
	mem.after(e)

	stopSubs()
	closeSubs(subs, e.opt.concurrency)
	readers.Wait()

	ackSet := make(map[int64]struct{}, len(acked))
	for _, id := range acked {
		ackSet[id] = struct{}{}
	}
	for _, s := range subs {
		if s == nil {
			continue
		}
		s.mu.Lock()
		got := 0
		for id := range ackSet {
			if _, ok := s.seen[id]; ok {
				got++
			}
		}
		r.Lost += int64(len(ackSet) - got)
		r.Unexpected += int64(len(s.seen) - got)
		r.Duplicated += s.dup
		r.OutOfOrder += s.ooo
		s.mu.Unlock()
	}
	r.Reconnects, r.CloseCodes, r.Unrecovered = t.reconnects.Load(), t.closes.snapshot(), t.failedSubs.Load()
	r.header = e.header("fanout")
	r.Server = mem
	r.finish(e)
	return r, nil
}

// current returns the subscriber's socket, which serve may replace.
func (s *subscriber) current() *sock {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sock
}

// closeSubs closes every subscriber's socket.
func closeSubs(subs []*subscriber, conc int) {
	socks := make([]*sock, 0, len(subs))
	for _, s := range subs {
		if s != nil {
			socks = append(socks, s.current())
		}
	}
	closeAll(socks, conc)
}
