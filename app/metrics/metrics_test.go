package metrics_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

type countingSub struct{ n atomic.Int64 }

func (s *countingSub) Deliver(hub.Topic, *hub.Event) { s.n.Add(1) }

func TestMetrics_SeriesMoveWithTraffic(t *testing.T) {
	srv := servertest.Start(t)
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := srv.Conversation(t, alice, bob)
	sub := &countingSub{}
	srv.Hub.Subscribe(hub.ConversationTopic(conv), sub) // a listener, like a joined socket

	before := srv.Metrics(t, "")
	const sends = 5
	for i := range sends {
		srv.Send(t, alice, conv, fmt.Sprintf("hello %d", i))
	}
	srv.Do(t, http.MethodGet, fmt.Sprintf("/api/conversations/%d/messages/?limit=10", conv), bob.Access, nil)
	srv.Do(t, http.MethodGet, "/api/conversations/999999/", bob.Access, nil) // 404
	after := srv.Metrics(t, "")

	const sendRoute = `route="/api/conversations/:id/messages/"`
	moved := []struct {
		series  string
		atLeast float64
	}{
		{`confab_http_requests_total{method="POST",` + sendRoute + `,status="201"}`, sends},
		{`confab_http_requests_total{method="GET",` + sendRoute + `,status="200"}`, 1},
		{`confab_http_requests_total{method="GET",route="/api/conversations/:id/",status="404"}`, 1},
		{`confab_http_request_duration_seconds_count{method="POST",` + sendRoute + `}`, sends},
		{`confab_message_send_duration_seconds_count`, sends},
		{`confab_db_query_duration_seconds_count{op="insert_messages"}`, 1},
		{`confab_db_query_duration_seconds_count{op="messages"}`, 1},
		{`confab_db_query_duration_seconds_count{op="user_by_id"}`, sends},
		{`confab_hub_publishes_total`, sends},
		{`confab_hub_deliveries_total`, sends},
	}
	for _, m := range moved {
		if d := after[m.series] - before[m.series]; d < m.atLeast {
			t.Errorf("%s moved by %v, want ≥ %v", m.series, d, m.atLeast)
		}
	}
	if got := sub.n.Load(); got != sends {
		t.Errorf("subscriber got %d events, want %d", got, sends)
	}
	for _, name := range []string{
		`confab_ws_connections`, `confab_ws_dropped_total{reason="slow"}`, `confab_ws_dropped_total{reason="rate_limited"}`,
		`go_goroutines`, `process_open_fds`, `process_resident_memory_bytes`,
	} {
		if _, ok := after[name]; !ok {
			t.Errorf("series %s missing", name)
		}
	}
	for s := range after {
		if strings.Contains(s, fmt.Sprintf("/%d/", conv)) {
			t.Errorf("series %s is labelled with a raw URL, not the route", s)
		}
	}
}

func TestMetrics_Token(t *testing.T) {
	const token = "metrics-token-0123456789"
	srv := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.MetricsToken = token }))
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "metrics-token-9876543210", http.StatusUnauthorized},
		{"prefix", token[:10], http.StatusUnauthorized},
		{"right", token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := srv.Do(t, http.MethodGet, "/metrics", tc.token, nil)
			if resp.Status != tc.want {
				t.Fatalf("status %d, want %d", resp.Status, tc.want)
			}
			if tc.want == http.StatusUnauthorized && resp.Map(t)["code"] != "not_authenticated" {
				t.Errorf("401 body %s", resp.Body)
			}
		})
	}
	if strings.Contains(srv.Logs.String(), token) {
		t.Error("the metrics token reached the log")
	}
}

// Without METRICS_TOKEN, /metrics answers a scraper that connects
// straight from this host or a private network, and no one else: not a
// public address, and not a request that came through a proxy, even a
// local one, whatever its X-Forwarded-For says.
func TestMetrics_PrivateNetworksOnlyWithoutAToken(t *testing.T) {
	srv := servertest.Start(t)
	trusting := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TrustProxy = true }))

	t.Run("over loopback", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			srv    *servertest.Server
			header http.Header
			want   int
		}{
			{"direct", srv, nil, http.StatusOK},
			{"direct, TRUST_PROXY", trusting, nil, http.StatusOK},
			{"through a proxy", srv, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, http.StatusForbidden},
			{"through a proxy that claims loopback", srv, http.Header{"X-Forwarded-For": {"127.0.0.1"}}, http.StatusForbidden},
			{"through a proxy, TRUST_PROXY", trusting, http.Header{"X-Forwarded-For": {"10.0.0.5"}}, http.StatusForbidden},
			{"Forwarded", srv, http.Header{"Forwarded": {"for=192.0.2.60"}}, http.StatusForbidden},
			{"X-Real-IP", srv, http.Header{"X-Real-Ip": {"203.0.113.9"}}, http.StatusForbidden},
			{"Via", srv, http.Header{"Via": {"1.1 fly.io"}}, http.StatusForbidden},
			{"Fly-Client-IP", srv, http.Header{"Fly-Client-Ip": {"203.0.113.9"}}, http.StatusForbidden},
		} {
			req, err := http.NewRequest(http.MethodGet, tc.srv.URL+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			wantMetricsAnswer(t, tc.name, req, tc.want)
		}
	})

	// The handler sees the peer address the listener reports; these are
	// the addresses no loopback test can come from.
	t.Run("peer addresses", func(t *testing.T) {
		tokened := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.MetricsToken = "metrics-token-0123456789" }))
		for _, tc := range []struct {
			peer string
			srv  *servertest.Server
			want int
		}{
			{"127.0.0.1:40000", srv, http.StatusOK},
			{"[::1]:40000", srv, http.StatusOK},
			{"10.1.2.3:40000", srv, http.StatusOK},
			{"172.16.0.9:40000", srv, http.StatusOK},
			{"172.31.255.1:40000", srv, http.StatusOK},
			{"192.168.1.2:40000", srv, http.StatusOK},
			{"[fdaa:0:1::3]:40000", srv, http.StatusOK}, // Fly's private network (6PN)
			{"[::ffff:10.0.0.1]:40000", srv, http.StatusOK},
			{"203.0.113.7:40000", srv, http.StatusForbidden},
			{"172.32.0.1:40000", srv, http.StatusForbidden},  // past 172.16/12
			{"100.64.0.1:40000", srv, http.StatusForbidden},  // carrier-grade NAT is shared, not private
			{"169.254.1.1:40000", srv, http.StatusForbidden}, // link-local
			{"[2001:db8::1]:40000", srv, http.StatusForbidden},
			{"not an address", srv, http.StatusForbidden},
			{"10.1.2.3:40000", tokened, http.StatusUnauthorized}, // a token, once set, is asked of everyone
		} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.RemoteAddr = tc.peer
			rec := httptest.NewRecorder()
			tc.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("from %s: %d, want %d; %s", tc.peer, rec.Code, tc.want, rec.Body)
			}
			if tc.want == http.StatusForbidden && !strings.Contains(rec.Body.String(), `"code":"forbidden"`) {
				t.Errorf("from %s: 403 body %s", tc.peer, rec.Body)
			}
		}
	})

	// Real connections to this machine's own other addresses: a private
	// one is let in, any other (a public or documentation address) is not.
	t.Run("over this machine's addresses", func(t *testing.T) {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Skip(err)
		}
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Skip(err)
		}
		hs := httptest.NewUnstartedServer(srv.Handler())
		hs.Listener.Close()
		hs.Listener = ln
		hs.Start()
		defer hs.Close()
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		tried := 0
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
				continue
			}
			want := http.StatusForbidden
			if n.IP.IsPrivate() {
				want = http.StatusOK
			}
			req, err := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(n.IP.String(), port)+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			wantMetricsAnswer(t, n.IP.String(), req, want)
			tried++
		}
		if tried == 0 {
			t.Skip("this machine has no address besides loopback")
		}
	})
}

// wantMetricsAnswer sends req and checks its status, and the contract's
// error body on a 403.
func wantMetricsAnswer(t *testing.T, name string, req *http.Request, want int) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("%s: %d, want %d; %s", name, resp.StatusCode, want, body)
		return
	}
	if want == http.StatusForbidden && (!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !bytes.Contains(body, []byte(`"code":"forbidden"`))) {
		t.Errorf("%s: 403 %q %s, want the contract's JSON error", name, resp.Header.Get("Content-Type"), body)
	}
	if want != http.StatusOK && bytes.Contains(body, []byte("confab_")) {
		t.Errorf("%s: the refusal carries metrics", name)
	}
}

// readUntil reads frames until one of type typ.
func readUntil(t *testing.T, conn *websocket.Conn, typ string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f struct{ Type string }
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type == typ {
			return
		}
	}
}

// eventually scrapes until cond holds, for counts that move after the
// client has seen what it waited for.
func eventually(t *testing.T, srv *servertest.Server, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := srv.Metrics(t, "")
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetrics_WebSocketSeriesMove(t *testing.T) {
	srv := servertest.Start(t)
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := srv.Conversation(t, alice, bob)
	before := srv.Metrics(t, "")

	conn, _, err := websocket.DefaultDialer.Dial(srv.WSURL(fmt.Sprintf("/ws/conversations/%d/?token=%s", conv, bob.Access)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readUntil(t, conn, "joined")
	conn.WriteJSON(map[string]any{"type": "ping", "timestamp": 1})
	readUntil(t, conn, "pong")
	srv.Send(t, alice, conv, "to the socket")
	readUntil(t, conn, "new_message")

	open := eventually(t, srv, "frames counted", func(m map[string]float64) bool {
		return m[`confab_ws_frames_sent_total{type="new_message"}`] > before[`confab_ws_frames_sent_total{type="new_message"}`]
	})
	for _, s := range []string{
		`confab_ws_frames_received_total{type="ping"}`,
		`confab_ws_frames_sent_total{type="pong"}`,
		`confab_ws_frames_sent_total{type="connection_established"}`,
		`confab_ws_frames_sent_total{type="joined"}`,
		`confab_http_requests_total{method="GET",route="/ws/conversations/:id/",status="101"}`,
	} {
		if open[s]-before[s] < 1 {
			t.Errorf("%s did not move", s)
		}
	}
	if got := open["confab_ws_connections"]; got != 1 {
		t.Errorf("confab_ws_connections = %v with one socket open", got)
	}
	if _, ok := open[`confab_http_request_duration_seconds_count{method="GET",route="/ws/conversations/:id/"}`]; ok {
		t.Error("a socket's lifetime was timed as a request")
	}

	conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	eventually(t, srv, "socket closed", func(m map[string]float64) bool {
		return m["confab_ws_connections"] == 0 &&
			m[`confab_ws_connections_closed_total{code="1000"}`] > before[`confab_ws_connections_closed_total{code="1000"}`]
	})
}

func TestMetrics_RateLimitedDropIsCounted(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WSFramesPerSecond, c.WSFrameBurst = 1, 5
	}))
	alice := srv.Register(t, "alice")
	conn, _, err := websocket.DefaultDialer.Dial(srv.WSURL("/ws/chat/?token="+alice.Access), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readUntil(t, conn, "connection_established")
	for range 200 {
		if conn.WriteJSON(map[string]string{"type": "ping"}) != nil {
			break // closed on us
		}
	}
	eventually(t, srv, "rate-limited drop", func(m map[string]float64) bool {
		return m[`confab_ws_dropped_total{reason="rate_limited"}`] >= 1 &&
			m[`confab_ws_connections_closed_total{code="4029"}`] >= 1
	})
}
