// Package metrics is Confab's Prometheus instrumentation: one registry per
// server (a field, never the global default), the handler that serves it,
// and the series the rest of Confab reports into: HTTP requests, the
// WebSocket edge's counters, send and store latencies, and the hub's and
// the cluster's counts, read through funcs given at construction.
//
// metrics is a leaf: it imports only the standard library and Prometheus,
// and knows nothing of Confab's other packages, HTTP framework or errors.
// Who reports what is wired in app/server. Every label takes its values
// from a closed set (routes as registered, known frame types, known close
// codes), so that no client can grow the number of series by sending odd
// paths, methods or frame types. metrics observes; it never changes what
// it observes.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configures Metrics.
type Options struct {
	// HubStats reports the hub's publish and delivery counts since start
	// (hub.Hub.Stats). Nil: the hub series are not exported.
	HubStats func() (publishes, deliveries uint64)
	// OrderStats reports the hub's ordered delivery (hub.Hub.OrderStats);
	// ClusterStats the Redis link. Nil: not exported (a single node).
	OrderStats   func() (repeats, fills, resyncs uint64)
	ClusterStats func() ClusterStats
	// QueuedSends reports how many sends wait for the group commit
	// (chat.Service.Queued). Nil: not exported.
	QueuedSends func() int
	// PendingDeliveries counts the outbox's pending deliveries by
	// provider (Outbox.PendingDeliveries); it is called at each scrape
	// with a deadline of PendingTimeout. Nil: confab_deliveries_pending
	// is not exported.
	PendingDeliveries func(ctx context.Context) (map[string]int, error)
}

// PendingTimeout bounds the outbox count of one scrape: past it, or on
// an error, the scrape leaves confab_deliveries_pending out rather than
// wait or fail.
const PendingTimeout = time.Second

// Providers are the values of the provider label of the delivery
// series: the push platforms and webhooks. Any other is counted as
// "other".
func Providers() []string { return []string{"webpush", "fcm", "apns", "webhook"} }

// Delivery results passed to Delivery.
const (
	DeliveryQueued  = "queued"   // a delivery made (or a newer message coalesced into a pending one)
	DeliverySent    = "sent"     // the provider accepted it
	DeliveryFailed  = "failed"   // the send failed and will be retried
	DeliveryGivenUp = "given_up" // refused for good, no provider, or still failing at the maximum age
	DeliveryGone    = "gone"     // the provider said the device (token, subscription) is gone: deleted
)

func deliveryResults() []string {
	return []string{DeliveryQueued, DeliverySent, DeliveryFailed, DeliveryGivenUp, DeliveryGone}
}

// ClusterStats are the Redis link's counters since start, and whether it
// works now.
type ClusterStats struct {
	Published, Received, Dropped, PublishErrors, Swept uint64
	Healthy                                            bool
}

// Metrics holds the registry and every series Confab exports. Its methods
// are safe for concurrent use and allocate nothing on the hot paths
// (frames, sends, store calls).
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	wsOpen    prometheus.Gauge
	wsClosed  map[int]prometheus.Counter // by close code; otherCode for the rest
	framesIn  map[string]prometheus.Counter
	framesOut map[string]prometheus.Counter
	dropped   map[string]prometheus.Counter

	sendDuration prometheus.Histogram
	refused      map[string]prometheus.Counter // by reason
	hopDuration  prometheus.Histogram
	dbDuration   *prometheus.HistogramVec

	deliveries map[string]map[string]prometheus.Counter // by provider, then result
}

// otherCode and otherType stand for any value outside the known sets.
const (
	otherCode = -1
	otherType = "other"
)

// frameTypes are every frame type of the wire contract, in either
// direction; any other type is counted as "other".
func frameTypes() []string {
	return []string{
		// client → server
		"authenticate", "ping", "join_conversation", "leave_conversation",
		"new_message", "typing", "read_receipt",
		// server → client (new_message, typing, read_receipt above too)
		"connection_established", "authenticated", "token_expiring", "pong",
		"joined", "left", "message_ack", "message_updated", "message_deleted",
		"reaction_updated", "presence", "notification", "conversation_updated", "error",
		// what the WebSocket edge counts a frame that is not JSON as
		"invalid",
	}
}

// closeCodes are the WebSocket close codes Confab sends or expects.
func closeCodes() []int {
	return []int{1000, 1001, 1005, 1006, 1008, 1009, 1011, 4001, 4004, 4008, 4029}
}

// Drop reasons passed to Dropped.
const (
	DropSlow        = "slow"         // send queue overflowed: closed with 4008
	DropRateLimited = "rate_limited" // too many frames: closed with 4029
	DropResync      = "resync"       // the node could not fill a gap: closed with 4008 to recover
)

// Reasons passed to SendRefused: the service's own (chat.Refused*), of
// which this leaf package keeps a copy.
const (
	RefusedQueueFull    = "queue_full"    // the queue in front of the group commit was full
	RefusedQueueTimeout = "queue_timeout" // the writer did not take it in time (a stalled commit)
	RefusedStorageFull  = "storage_full"  // its commit failed for a full disk
)

// New builds the registry with Confab's series and the Go runtime and
// process collectors.
func New(opt Options) *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		httpRequests: f.counterVec("confab_http_requests_total",
			"HTTP requests by route (as registered), method and status.", "route", "method", "status"),
		httpDuration: f.histogramVec("confab_http_request_duration_seconds",
			"HTTP request latency by route and method; WebSocket upgrades are not timed.",
			prometheus.DefBuckets, "route", "method"),
		wsOpen: f.gauge("confab_ws_connections", "Open WebSocket connections."),
		sendDuration: f.histogram("confab_message_send_duration_seconds",
			"Message send latency: from the service taking the send to its commit (the ack).",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
		hopDuration: f.histogram("confab_cluster_hop_duration_seconds",
			"Time from another node publishing an event to its arrival here through Redis.",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}),
		dbDuration: f.histogramVec("confab_db_query_duration_seconds",
			"Store call latency by operation (one call may run several statements in one transaction).",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}, "op"),
	}

	closed := f.counterVec("confab_ws_connections_closed_total",
		"Closed WebSocket connections by close code.", "code")
	m.wsClosed = map[int]prometheus.Counter{otherCode: closed.WithLabelValues(otherType)}
	for _, c := range closeCodes() {
		m.wsClosed[c] = closed.WithLabelValues(strconv.Itoa(c))
	}
	in := f.counterVec("confab_ws_frames_received_total", "WebSocket frames received by type.", "type")
	out := f.counterVec("confab_ws_frames_sent_total", "WebSocket frames sent by type.", "type")
	m.framesIn = map[string]prometheus.Counter{otherType: in.WithLabelValues(otherType)}
	m.framesOut = map[string]prometheus.Counter{otherType: out.WithLabelValues(otherType)}
	for _, t := range frameTypes() {
		m.framesIn[t] = in.WithLabelValues(t)
		m.framesOut[t] = out.WithLabelValues(t)
	}
	dropped := f.counterVec("confab_ws_dropped_total",
		"WebSocket connections closed by the server for being too slow (4008) or sending too fast (4029).", "reason")
	m.dropped = map[string]prometheus.Counter{}
	for _, r := range []string{DropSlow, DropRateLimited, DropResync, otherType} {
		m.dropped[r] = dropped.WithLabelValues(r)
	}

	refused := f.counterVec("confab_sends_refused_total",
		"Sends answered with an error that says they were not stored, by reason: queue_full and queue_timeout (503 overloaded), storage_full (507).", "reason")
	m.refused = map[string]prometheus.Counter{}
	for _, r := range []string{RefusedQueueFull, RefusedQueueTimeout, RefusedStorageFull, otherType} {
		m.refused[r] = refused.WithLabelValues(r)
	}

	delivered := f.counterVec("confab_deliveries_total",
		"Push deliveries by provider (webpush, fcm, apns, webhook) and result: queued, sent, failed (will retry), given_up, gone (device removed).",
		"provider", "result")
	m.deliveries = map[string]map[string]prometheus.Counter{}
	for _, p := range append(Providers(), otherType) {
		m.deliveries[p] = map[string]prometheus.Counter{}
		for _, r := range append(deliveryResults(), otherType) {
			m.deliveries[p][r] = delivered.WithLabelValues(p, r)
		}
	}
	if opt.PendingDeliveries != nil {
		reg.MustRegister(pendingCollector{count: opt.PendingDeliveries, desc: prometheus.NewDesc("confab_deliveries_pending",
			"Deliveries waiting to be sent (due or not, or in flight), by provider; read from the outbox at each scrape.",
			[]string{"provider"}, nil)})
	}

	if opt.OrderStats != nil {
		stats := opt.OrderStats
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "confab_hub_repeats_total",
				Help: "Message events dropped because this node had delivered them already (they arrive from the writer and from Redis)."},
				func() float64 { r, _, _ := stats(); return float64(r) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "confab_hub_gap_fills_total",
				Help: "Gaps in a conversation's seq filled from the database before delivering."},
				func() float64 { _, f, _ := stats(); return float64(f) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "confab_hub_resyncs_total",
				Help: "Gaps too long (or unreadable) to fill: the conversation's sockets were closed with 4008 to recover."},
				func() float64 { _, _, r := stats(); return float64(r) }),
		)
	}
	if opt.ClusterStats != nil {
		stats := opt.ClusterStats
		counter := func(name, help string, v func(ClusterStats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(v(stats())) })
		}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "confab_cluster_degraded",
				Help: "1 while Redis does not answer: cross-node delivery is degraded and nodes catch up from the database."},
				func() float64 {
					if stats().Healthy {
						return 0
					}
					return 1
				}),
			counter("confab_cluster_published_total", "Events sent to the other nodes through Redis.",
				func(s ClusterStats) uint64 { return s.Published }),
			counter("confab_cluster_received_total", "Events received from the other nodes through Redis.",
				func(s ClusterStats) uint64 { return s.Received }),
			counter("confab_cluster_dropped_total", "Events not sent to the other nodes (Redis failing or too slow); messages among them are filled from the database.",
				func(s ClusterStats) uint64 { return s.Dropped }),
			counter("confab_cluster_publish_errors_total", "Failed publishes to Redis (each a pipeline of events).",
				func(s ClusterStats) uint64 { return s.PublishErrors }),
			counter("confab_cluster_swept_users_total", "Users announced offline because the node holding their sockets stopped.",
				func(s ClusterStats) uint64 { return s.Swept }),
		)
	}
	if opt.QueuedSends != nil {
		queued := opt.QueuedSends
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "confab_sends_queued",
			Help: "Sends waiting for the group commit to take them; at COMMIT_QUEUE further sends are refused (503 overloaded)."},
			func() float64 { return float64(queued()) }))
	}
	if opt.HubStats != nil {
		stats := opt.HubStats
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "confab_hub_publishes_total",
				Help: "Events published to the hub (one per topic)."},
				func() float64 { p, _ := stats(); return float64(p) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "confab_hub_deliveries_total",
				Help: "Events handed to hub subscribers (one per subscriber per publish)."},
				func() float64 { _, d := stats(); return float64(d) }),
		)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus text format. It checks
// no credentials: the route that mounts it does.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest counts one HTTP request by its route pattern (as
// registered, so /api/messages/7/ and /api/messages/8/ are one series;
// "unmatched" for none), method and status, and records its latency. A
// WebSocket upgrade is counted but not timed: a socket's lifetime is not
// a request's latency.
func (m *Metrics) ObserveRequest(route, method string, status int, upgrade bool, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	method = boundMethod(method)
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	if !upgrade {
		m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
	}
}

func boundMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// ObserveSend records one message's send latency; chat.Service calls it
// after each commit (chat.Service.ObserveSend).
func (m *Metrics) ObserveSend(d time.Duration) { m.sendDuration.Observe(d.Seconds()) }

// SendRefused counts one send that was not stored, by reason
// (RefusedQueueFull, RefusedQueueTimeout, RefusedStorageFull; "other"
// for any other); chat.Service calls it (chat.Options.Refused).
func (m *Metrics) SendRefused(reason string) { count(m.refused, reason) }

// Delivery counts one delivery of provider (Providers; "other" for any
// other) with result (DeliveryQueued, …; "other" for any other). The
// push dispatcher reports into it (notify.DispatchOptions.Delivery), and
// so may any other sender of the outbox.
func (m *Metrics) Delivery(provider, result string) {
	by, ok := m.deliveries[provider]
	if !ok {
		by = m.deliveries[otherType]
	}
	count(by, result)
}

// pendingCollector reads the pending deliveries at each scrape.
type pendingCollector struct {
	count func(context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect exports every known provider, zero when it has none pending,
// and leaves the series out when the outbox does not answer in time.
func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), PendingTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		return
	}
	other := 0
	for p, n := range counts {
		if !known(p) {
			other += n
		}
	}
	for _, p := range Providers() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[p]), p)
	}
	if other > 0 {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(other), otherType)
	}
}

func known(provider string) bool {
	for _, p := range Providers() {
		if p == provider {
			return true
		}
	}
	return false
}

// ObserveHop records the Redis hop of one event from another node.
func (m *Metrics) ObserveHop(d time.Duration) { m.hopDuration.Observe(d.Seconds()) }

// StoreObserver returns the func that records one store call of op in
// confab_db_query_duration_seconds{op}. Call it once per op at
// construction: the func it returns allocates nothing.
func (m *Metrics) StoreObserver(op string) func(time.Duration) {
	o := m.dbDuration.WithLabelValues(op)
	return func(d time.Duration) { o.Observe(d.Seconds()) }
}

// The WebSocket edge's Metrics interface:
//
//	ConnOpened(); ConnClosed(code int); FrameIn(typ string); FrameOut(typ string); Dropped(reason string)

// ConnOpened counts a WebSocket connection that completed its upgrade.
func (m *Metrics) ConnOpened() { m.wsOpen.Inc() }

// ConnClosed counts a connection's close with its close code.
func (m *Metrics) ConnClosed(code int) {
	m.wsOpen.Dec()
	c, ok := m.wsClosed[code]
	if !ok {
		c = m.wsClosed[otherCode]
	}
	c.Inc()
}

// FrameIn counts a frame received, by its type.
func (m *Metrics) FrameIn(typ string) { count(m.framesIn, typ) }

// FrameOut counts a frame sent, by its type.
func (m *Metrics) FrameOut(typ string) { count(m.framesOut, typ) }

// Dropped counts a connection the server closed for cause: DropSlow
// (4008) or DropRateLimited (4029).
func (m *Metrics) Dropped(reason string) { count(m.dropped, reason) }

// count increments the counter of key, or of "other". The maps are only
// read after New, so concurrent use needs no lock.
func count(by map[string]prometheus.Counter, key string) {
	c, ok := by[key]
	if !ok {
		c = by[otherType]
	}
	c.Inc()
}

// factory registers each series as it makes it.
type factory struct{ reg *prometheus.Registry }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}
