// Package cluster joins Confab nodes through Redis, so that several
// identical nodes sharing one Postgres database serve one chat.
//
// A Cluster is the hub's Broker and Presence. Every event a node publishes
// goes to one Redis pub/sub channel; every node delivers what the others
// publish to its own sockets. Presence is a set of nodes per user, kept in
// Redis: a user is online while any live node holds a socket of theirs. A
// node announces itself every second; a node that stops (crashes) is swept
// by the others once its announcement expires, and its users go offline.
//
// Redis carries events, never data: messages are committed to the database
// before they are published, and each node's hub orders them by their
// per-conversation seq and fills any gap from the database. So losing
// Redis loses no message: nodes keep serving their own sockets, report
// "degraded", and when Redis answers again every node catches up from the
// database (and keeps doing so every few seconds while it does not).
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/hub"
)

// Options tune a Cluster; zero values take the defaults.
type Options struct {
	// Prefix starts every Redis key and the channel name ("confab:"), so
	// that deployments can share a Redis.
	Prefix string
	// Heartbeat is how often the node announces itself (1 s); NodeTTL is
	// how long an announcement lasts (5 s): a crashed node's users go
	// offline within NodeTTL plus a Heartbeat.
	Heartbeat, NodeTTL time.Duration
	// CatchUp is how often the node checks the database for messages that
	// no event brought (5 s; every Heartbeat while degraded).
	CatchUp time.Duration
	// PublishQueue bounds the events waiting for Redis (16384); past it
	// they are dropped and counted, and the database fills the gap.
	PublishQueue int
	// Log receives the link's warnings; nil discards them.
	Log *slog.Logger
	// ObserveHop, when set, is called with the time each event from
	// another node took from its publish to its arrival here (clocks of
	// nodes on one machine agree; across machines it is as good as NTP).
	// Nil: not observed.
	ObserveHop func(time.Duration)
}

// Cluster is one node's link to the others. Create it with New, attach the
// hub with Start, and Close it after the sockets have closed.
type Cluster struct {
	rdb    *redis.Client
	node   string
	prefix string
	opt    Options
	log    *slog.Logger

	channel  string
	nodesKey string

	hub *hub.Hub
	// announce tells the server that a user went "online" or "offline"
	// because of what happened to a node, not to a socket.
	announce func(userID int64, status string)

	pubq chan []byte

	// subUp: the subscription is live; beatOK: the last heartbeat
	// answered. Healthy when both.
	subUp, beatOK atomic.Bool
	catchUp       chan struct{} // wakes the catch-up loop

	published, received, dropped, publishErrors, swept atomic.Uint64

	quit chan struct{}
	wg   sync.WaitGroup
}

// New connects to Redis at url. Redis being unreachable is not an error:
// the node starts degraded and keeps trying.
func New(url string, opt Options) (*Cluster, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	ro.DialTimeout = 2 * time.Second
	ro.ReadTimeout = 2 * time.Second
	ro.WriteTimeout = 2 * time.Second
	ro.MaxRetries = 1
	if opt.Prefix == "" {
		opt.Prefix = "confab:"
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = time.Second
	}
	if opt.NodeTTL <= 0 {
		opt.NodeTTL = 5 * opt.Heartbeat
	}
	if opt.CatchUp <= 0 {
		opt.CatchUp = 5 * time.Second
	}
	if opt.PublishQueue <= 0 {
		opt.PublishQueue = 16384
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 8)
	rand.Read(id)
	c := &Cluster{
		rdb:      redis.NewClient(ro),
		node:     hex.EncodeToString(id),
		prefix:   opt.Prefix,
		opt:      opt,
		log:      opt.Log,
		channel:  opt.Prefix + "events",
		nodesKey: opt.Prefix + "nodes",
		pubq:     make(chan []byte, opt.PublishQueue),
		catchUp:  make(chan struct{}, 1),
		quit:     make(chan struct{}),
	}
	return c, nil
}

// Start attaches the hub that receives other nodes' events and starts the
// node's loops. announce is called with "offline" for each user who went
// offline because the node that held their sockets stopped (or this node
// lost track of them while Redis was away), and with "online" for each
// user this node registers again after Redis had lost it or the others
// had swept it, with no other node holding them: the server announces
// it, so that presence seen anywhere converges once Redis answers.
func (c *Cluster) Start(h *hub.Hub, announce func(userID int64, status string)) {
	c.hub, c.announce = h, announce
	c.wg.Add(4)
	go c.publisher()
	go c.subscriber()
	go c.heartbeat()
	go c.catchUpLoop()
}

// Close stops the loops, withdraws the node's presence (its sockets are
// closed by now) and disconnects.
func (c *Cluster) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if offline, _, err := c.sync(ctx, nil); err == nil {
		c.announcePresence(offline, "offline")
	}
	close(c.quit) // the publisher sends what is queued, then stops
	c.wg.Wait()
	c.rdb.ZRem(ctx, c.nodesKey, c.node)
	return c.rdb.Close()
}

// Healthy reports whether cross-node delivery works: the subscription is
// live and Redis answered the last heartbeat.
func (c *Cluster) Healthy() bool { return c.subUp.Load() && c.beatOK.Load() }

// Stats are counters since New, for metrics.
type Stats struct {
	Published, Received, Dropped, PublishErrors, Swept uint64
	Healthy                                            bool
}

// Stats returns the cluster's counters.
func (c *Cluster) Stats() Stats {
	return Stats{
		Published: c.published.Load(), Received: c.received.Load(), Dropped: c.dropped.Load(),
		PublishErrors: c.publishErrors.Load(), Swept: c.swept.Load(), Healthy: c.Healthy(),
	}
}

// Publish implements hub.Broker: it queues ev for the other nodes and
// never blocks. A full queue drops the event; the other nodes fill the
// gap of a dropped message from the database, at the next message of its
// conversation or at their next catch-up.
func (c *Cluster) Publish(t hub.Topic, ev *hub.Event) {
	c.enqueue(encodeEvent(c.node, t, nil, ev, time.Now()))
}

// PublishUsers implements hub.Broker: one event for many users' topics.
func (c *Cluster) PublishUsers(userIDs []int64, ev *hub.Event) {
	c.enqueue(encodeEvent(c.node, hub.UserTopic(0), userIDs, ev, time.Now()))
}

func (c *Cluster) enqueue(b []byte) {
	select {
	case c.pubq <- b:
	default:
		// The other nodes catch up from the database (CatchUp).
		c.dropped.Add(1)
	}
}

func (c *Cluster) wake() {
	select {
	case c.catchUp <- struct{}{}:
	default:
	}
}

// publisher sends queued events, pipelined, from one goroutine: one
// connection, so Redis keeps their order.
func (c *Cluster) publisher() {
	defer c.wg.Done()
	batch := make([][]byte, 0, 256)
	backoff := time.Duration(0)
	stopping := false
	for {
		select {
		case b := <-c.pubq:
			batch = append(batch, b)
		case <-c.quit:
			stopping = true
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case b := <-c.pubq:
				batch = append(batch, b)
			default:
				break more
			}
		}
		if len(batch) == 0 { // stopping, and nothing left
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, b := range batch {
				p.Publish(ctx, c.channel, b)
			}
			return nil
		})
		cancel()
		if err != nil {
			c.publishErrors.Add(1)
			c.dropped.Add(uint64(len(batch)))
			if c.beatOK.Swap(false) {
				c.log.Warn("redis publish failed: cross-node delivery degraded", "err", err)
			}
			if stopping {
				return
			}
			stopping = !c.pause(&backoff)
		} else {
			backoff = 0
			c.published.Add(uint64(len(batch)))
		}
		clear(batch)
		batch = batch[:0]
	}
}

// pause waits before a retry, twice as long as the last time (50 ms to
// 1 s); false when the cluster is closing.
func (c *Cluster) pause(backoff *time.Duration) bool {
	*backoff = min(max(*backoff*2, 50*time.Millisecond), time.Second)
	select {
	case <-time.After(*backoff):
		return true
	case <-c.quit:
		return false
	}
}

// subscriber receives other nodes' events and hands them to the hub.
func (c *Cluster) subscriber() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := c.rdb.Subscribe(ctx, c.channel)
	defer ps.Close()
	go func() {
		<-c.quit
		cancel()
		ps.Close() // ends a Receive that is waiting
	}()
	backoff := time.Duration(0)
	for {
		msg, err := ps.ReceiveTimeout(ctx, 3*time.Second)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet channel: check the connection is alive. The pong
				// (or the error) comes back through Receive.
				if perr := ps.Ping(ctx); perr == nil {
					continue
				}
			}
			if c.subUp.Swap(false) {
				c.log.Warn("redis subscription lost: cross-node delivery degraded", "err", err)
			}
			if !c.pause(&backoff) {
				return
			}
			continue
		}
		backoff = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if !c.subUp.Swap(true) {
					c.log.Info("redis subscription live", "node", c.node)
				}
				// Whatever was published while the subscription was
				// down is in the database: catch up now.
				c.wake()
			}
		case *redis.Message:
			c.receive(m.Payload)
		}
	}
}

func (c *Cluster) receive(payload string) {
	node, t, users, ev, sent, err := decodeEvent(payload)
	if err != nil {
		c.log.Warn("redis: undecodable event dropped", "err", err)
		return
	}
	if node == c.node {
		return
	}
	c.received.Add(1)
	if c.opt.ObserveHop != nil && !sent.IsZero() {
		c.opt.ObserveHop(time.Since(sent))
	}
	if users != nil {
		c.hub.ReceiveUsers(users, ev)
		return
	}
	c.hub.Receive(t, ev)
}

// heartbeat announces the node, sweeps nodes whose announcement expired,
// and re-registers this node's users when Redis has forgotten them (a
// Redis restart, or this node being swept after a long pause).
func (c *Cluster) heartbeat() {
	defer c.wg.Done()
	tick := time.NewTicker(c.opt.Heartbeat)
	defer tick.Stop()
	for {
		c.beat()
		select {
		case <-tick.C:
		case <-c.quit:
			return
		}
	}
}

func (c *Cluster) beat() {
	ctx, cancel := context.WithTimeout(context.Background(), c.opt.Heartbeat)
	defer cancel()
	now := time.Now()
	known, err := beatScript.Run(ctx, c.rdb, []string{c.nodesKey}, c.node,
		now.Add(c.opt.NodeTTL).UnixMilli()).Int()
	if err != nil {
		if c.beatOK.Swap(false) {
			c.log.Warn("redis heartbeat failed: cross-node delivery degraded", "err", err)
		}
		return
	}
	if known == 0 {
		// New here, or Redis lost this node: tell it who is online here.
		offline, online, err := c.sync(ctx, c.hub.LocalUsers())
		if err != nil {
			return
		}
		c.announcePresence(offline, "offline")
		// Those the others had swept (and said were offline) are
		// back: say so, or their "offline" would stand.
		c.announcePresence(online, "online")
		if len(online) > 0 {
			c.log.Info("presence registered", "node", c.node, "users", len(online))
		}
	}
	if !c.beatOK.Swap(true) {
		c.log.Info("redis reachable", "node", c.node)
		c.wake()
	}
	offline, err := sweepScript.Run(ctx, c.rdb, []string{c.nodesKey}, now.UnixMilli(), c.prefix).StringSlice()
	if err != nil {
		return
	}
	c.announcePresence(offline, "offline")
}

// announcePresence tells the server that users went offline or came
// back online, in a goroutine of its own: announcing reads the database,
// and a long sweep must not hold up this node's own heartbeat.
func (c *Cluster) announcePresence(users []string, status string) {
	if len(users) == 0 || c.announce == nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for _, u := range users {
			if id, err := strconv.ParseInt(u, 10, 64); err == nil {
				if status == "offline" {
					c.swept.Add(1)
				}
				c.announce(id, status)
			}
		}
	}()
}

// catchUpLoop asks the hub to catch up from the database when woken (Redis
// back, events dropped) and every CatchUp, or every Heartbeat while
// degraded.
func (c *Cluster) catchUpLoop() {
	defer c.wg.Done()
	for {
		every := c.opt.CatchUp
		if !c.Healthy() {
			every = c.opt.Heartbeat
		}
		select {
		case <-c.catchUp:
		case <-time.After(every):
		case <-c.quit:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.hub.CatchUp(ctx); err != nil {
			c.log.Warn("catch up from the database", "err", err)
		}
		cancel()
	}
}

func (c *Cluster) userKey(id int64) string {
	return c.prefix + "user:" + strconv.FormatInt(id, 10) + ":nodes"
}

func (c *Cluster) nodeUsersKey() string { return c.prefix + "node:" + c.node + ":users" }

// presenceTimeout bounds each presence call to Redis, whatever the
// caller's deadline: a socket opening or closing never waits longer.
const presenceTimeout = time.Second

// Connect implements hub.Presence.
func (c *Cluster) Connect(ctx context.Context, userID int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	n, err := connectScript.Run(ctx, c.rdb, []string{c.userKey(userID), c.nodeUsersKey()},
		c.node, userID).Int()
	return n == 1, err
}

// Disconnect implements hub.Presence.
func (c *Cluster) Disconnect(ctx context.Context, userID int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	n, err := disconnectScript.Run(ctx, c.rdb, []string{c.userKey(userID), c.nodeUsersKey()},
		c.node, userID).Int()
	return n == 0, err
}

// OnlineAmong implements hub.Presence: one pipeline of SCARDs, so one
// round trip to Redis for any number of users.
func (c *Cluster) OnlineAmong(ctx context.Context, userIDs []int64) ([]int64, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	cmds := make([]*redis.IntCmd, len(userIDs))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range userIDs {
			cmds[i] = p.SCard(ctx, c.userKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	var on []int64
	for i, cmd := range cmds {
		if cmd.Val() > 0 {
			on = append(on, userIDs[i])
		}
	}
	return on, nil
}

// sync makes Redis's set of this node's users exactly users; it returns
// the users who are now offline everywhere, and those who were on no node
// and now are on this one.
func (c *Cluster) sync(ctx context.Context, users []int64) (offline, online []string, err error) {
	args := make([]any, 0, len(users)+2)
	args = append(args, c.node, c.prefix)
	for _, u := range users {
		args = append(args, u)
	}
	res, err := syncScript.Run(ctx, c.rdb, []string{c.nodeUsersKey()}, args...).Slice()
	if err != nil {
		return nil, nil, err
	}
	if len(res) != 2 {
		return nil, nil, fmt.Errorf("presence sync: unexpected reply %v", res)
	}
	lists := [2]*[]string{&offline, &online}
	for i, l := range lists {
		vs, _ := res[i].([]any)
		for _, v := range vs {
			if s, ok := v.(string); ok {
				*l = append(*l, s)
			}
		}
	}
	return offline, online, nil
}

// The presence scripts: each runs atomically in Redis, so that exactly one
// node sees a user's first connection, last disconnection, or sweep.
var (
	// KEYS[1] the user's nodes, KEYS[2] this node's users; ARGV node, user.
	connectScript = redis.NewScript(`
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])`)
	disconnectScript = redis.NewScript(`
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])`)
	// KEYS[1] the nodes; ARGV node, expiry (ms). Returns 1 when the node
	// was known.
	beatScript = redis.NewScript(`
local had = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if had then return 1 end
return 0`)
	// KEYS[1] the nodes; ARGV now (ms), prefix. Removes expired nodes and
	// returns the users left with no node.
	sweepScript = redis.NewScript(`
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local offline = {}
for _, n in ipairs(dead) do
  local nk = ARGV[2] .. 'node:' .. n .. ':users'
  for _, u in ipairs(redis.call('SMEMBERS', nk)) do
    local uk = ARGV[2] .. 'user:' .. u .. ':nodes'
    redis.call('SREM', uk, n)
    if redis.call('SCARD', uk) == 0 then table.insert(offline, u) end
  end
  redis.call('DEL', nk)
  redis.call('ZREM', KEYS[1], n)
end
return offline`)
	// KEYS[1] this node's users; ARGV node, prefix, users... Makes the
	// node's users exactly those; returns {users now offline, users now
	// online that were on no node}.
	syncScript = redis.NewScript(`
local want = {}
for i = 3, #ARGV do want[ARGV[i]] = true end
local offline = {}
for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not want[u] then
    local uk = ARGV[2] .. 'user:' .. u .. ':nodes'
    redis.call('SREM', KEYS[1], u)
    redis.call('SREM', uk, ARGV[1])
    if redis.call('SCARD', uk) == 0 then table.insert(offline, u) end
  end
end
local online = {}
for i = 3, #ARGV do
  local uk = ARGV[2] .. 'user:' .. ARGV[i] .. ':nodes'
  if redis.call('SADD', uk, ARGV[1]) == 1 and redis.call('SCARD', uk) == 1 then
    table.insert(online, ARGV[i])
  end
  redis.call('SADD', KEYS[1], ARGV[i])
end
return {offline, online}`)
)

// PutTicket implements auth.TicketStore: tickets live in Redis, so that a
// client may redeem one at any node. The key is the ticket's hash.
func (c *Cluster) PutTicket(ctx context.Context, key string, t auth.Ticket) error {
	// The session's id is hex: it cannot hold the separator.
	v := strconv.FormatInt(t.UserID, 10) + ":" + strconv.FormatInt(t.ExpiresAt.UnixNano(), 10) +
		":" + strconv.FormatInt(t.AccessExp.UnixNano(), 10) + ":" + strconv.FormatInt(t.Session.Epoch, 10) + ":" + t.Session.SID
	return c.rdb.Set(ctx, c.ticketKey(key), v, auth.TicketTTL).Err()
}

// TakeTicket implements auth.TicketStore.
func (c *Cluster) TakeTicket(ctx context.Context, key string) (auth.Ticket, bool, error) {
	v, err := c.rdb.GetDel(ctx, c.ticketKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return auth.Ticket{}, false, nil
	}
	if err != nil {
		return auth.Ticket{}, false, err
	}
	// uid:expires:access_exp[:epoch:sid]; a ticket put by a node from
	// before sessions has no session.
	parts := strings.SplitN(v, ":", 5)
	var f [4]int64
	for i, s := range parts[:min(len(parts), 4)] {
		if f[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return auth.Ticket{}, false, nil
		}
	}
	t := auth.Ticket{UserID: f[0], ExpiresAt: time.Unix(0, f[1]), AccessExp: time.Unix(0, f[2])}
	if len(parts) == 5 {
		t.Session = auth.Session{Epoch: f[3], SID: parts[4]}
	}
	return t, true, nil
}

func (c *Cluster) ticketKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return c.prefix + "ticket:" + hex.EncodeToString(h[:])
}
