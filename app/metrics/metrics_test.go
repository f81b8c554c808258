package metrics_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server/servertest"
)

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, srv *servertest.Server, token string) map[string]float64 {
	t.Helper()
	resp := srv.Do(t, http.MethodGet, "/metrics", token, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		series[line[:i]] = v
	}
	return series
}

type countingSub struct{ n atomic.Int64 }

func (s *countingSub) Deliver(hub.Topic, *hub.Event) { s.n.Add(1) }

func TestMetrics_SeriesMoveWithTraffic(t *testing.T) {
	srv := servertest.Start(t)
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := srv.Conversation(t, alice, bob)
	sub := &countingSub{}
	srv.Hub.Subscribe(hub.ConversationTopic(conv), sub) // a listener, like a joined socket

	before := scrape(t, srv, "")
	const sends = 5
	for i := range sends {
		srv.Send(t, alice, conv, fmt.Sprintf("hello %d", i))
	}
	srv.Do(t, http.MethodGet, fmt.Sprintf("/api/conversations/%d/messages/?limit=10", conv), bob.Access, nil)
	srv.Do(t, http.MethodGet, "/api/conversations/999999/", bob.Access, nil) // 404
	after := scrape(t, srv, "")

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
