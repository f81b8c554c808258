package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/bench"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// mustRun runs confab bench with args against s and decodes its JSON
// report into out; it fails the test unless the exit status is want.
func mustRun(t *testing.T, want int, out any, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := bench.Run(ctx, args, &stdout, &stderr)
	if code != want {
		t.Fatalf("confab bench %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), code, want, stdout.String(), stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("report is not JSON (%v):\n%s", err, stdout.String())
		}
	}
	return stderr.String()
}

type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// checkLatency wants n samples, positive and ordered.
func checkLatency(t *testing.T, name string, l latency, n int64) {
	t.Helper()
	if l.Count != n {
		t.Errorf("%s: %d samples, want %d", name, l.Count, n)
	}
	if !(l.P50 > 0 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("%s: want 0 < p50 ≤ p95 ≤ p99 ≤ max, got %+v", name, l)
	}
}

func TestFanout_DeliversEveryMessageOnceInOrder(t *testing.T) {
	s := servertest.Start(t)
	var r struct {
		Subscribers  int     `json:"subscribers"`
		Acked        int64   `json:"acked"`
		Expected     int64   `json:"expected_deliveries"`
		Deliveries   int64   `json:"deliveries"`
		DeliveryRate float64 `json:"deliveries_per_second"`
		Latency      latency `json:"latency"`
		PostLatency  latency `json:"post_latency"`
		Lost         int64   `json:"lost"`
		Duplicated   int64   `json:"duplicated"`
		OutOfOrder   int64   `json:"out_of_order"`
		Unexpected   int64   `json:"unexpected"`
	}
	mustRun(t, 0, &r, "fanout", "--url", s.URL, "--subs", "20", "--msgs", "50", "--publishers", "2", "--json", "--progress", "0")
	if r.Acked != 50 || r.Expected != 50*20 || r.Deliveries != 50*20 {
		t.Errorf("acked %d, expected %d, delivered %d; want 50, 1000, 1000", r.Acked, r.Expected, r.Deliveries)
	}
	if r.Lost != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 || r.Unexpected != 0 {
		t.Errorf("lost %d, duplicated %d, out of order %d, unexpected %d; want all 0", r.Lost, r.Duplicated, r.OutOfOrder, r.Unexpected)
	}
	if r.DeliveryRate <= 0 {
		t.Errorf("deliveries per second %v, want > 0", r.DeliveryRate)
	}
	checkLatency(t, "latency", r.Latency, 50*20)
	checkLatency(t, "post latency", r.PostLatency, 50)
}

func TestFanout_RateLimitsThePublishers(t *testing.T) {
	s := servertest.Start(t)
	var r struct {
		Acked          int64   `json:"acked"`
		PublishSeconds float64 `json:"publish_seconds"`
		Lost           int64   `json:"lost"`
	}
	mustRun(t, 0, &r, "fanout", "--url", s.URL, "--subs", "3", "--msgs", "10", "--rate", "20", "--json", "--progress", "0")
	// 10 messages at 20/s: the first goes at once, the last 0.45 s later.
	if r.Acked != 10 || r.Lost != 0 || r.PublishSeconds < 0.4 {
		t.Errorf("acked %d, lost %d in %.2f s; want 10, 0, at least 0.4 s", r.Acked, r.Lost, r.PublishSeconds)
	}
}

func TestSend_CommitsEveryMessage(t *testing.T) {
	s := servertest.Start(t)
	var r struct {
		Clients   int     `json:"clients"`
		Committed int64   `json:"committed"`
		Errors    int64   `json:"errors"`
		Rate      float64 `json:"committed_per_second"`
		Latency   latency `json:"latency"`
		Server    *struct {
			PID        int     `json:"pid"`
			RSSBefore  int64   `json:"rss_before_bytes"`
			RSSAfter   int64   `json:"rss_after_bytes"`
			CPUSeconds float64 `json:"cpu_seconds"`
		} `json:"server"`
	}
	// The test server runs in this process: --pid reads its /proc.
	pid := strconv.Itoa(os.Getpid())
	mustRun(t, 0, &r, "send", "--url", s.URL, "--clients", "4", "--msgs", "400", "--pid", pid, "--json", "--progress", "0")
	if r.Clients != 4 || r.Committed != 400 || r.Errors != 0 || r.Rate <= 0 {
		t.Errorf("got %+v; want 4 clients, 400 committed, no errors, a rate", r)
	}
	checkLatency(t, "latency", r.Latency, 400)
	if sv := r.Server; sv == nil || sv.PID != os.Getpid() || sv.RSSBefore <= 0 || sv.RSSAfter <= 0 || sv.CPUSeconds <= 0 {
		t.Errorf("server figures from /proc missing: %+v", sv)
	}
}

// TestSend_PushReachesTheBenchPushService: with --push, the recipient's
// Web Push device is on the bench's push service, which the server's
// dispatcher reaches with at least one push per conversation.
func TestSend_PushReachesTheBenchPushService(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the bench listens there
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WebPushAllowed = []string{"http://" + addr + "/push/"}
	}))
	var r struct {
		Committed int64 `json:"committed"`
		Push      bool  `json:"push"`
		Pushes    int64 `json:"pushes"`
		Refused   int64 `json:"pushes_refused"`
	}
	mustRun(t, 0, &r, "send", "--url", s.URL, "--clients", "2", "--msgs", "50", "--push", addr, "--json", "--progress", "0")
	if r.Committed != 50 || !r.Push || r.Pushes < 2 || r.Refused != 0 {
		t.Errorf("got %+v; want 50 committed and a push per conversation, none refused", r)
	}
	var sent int
	if err := s.DB(t).QueryRow(`SELECT count(*) FROM deliveries WHERE state = 'sent'`).Scan(&sent); err != nil || sent < 2 {
		t.Errorf("%d deliveries sent (%v), want at least 2", sent, err)
	}
}

func TestIdle_HoldsEverySocket(t *testing.T) {
	s := servertest.Start(t)
	var r struct {
		Conns          int     `json:"conns"`
		Users          int     `json:"users"`
		Connected      int     `json:"connected"`
		ConnectErrors  int     `json:"connect_errors"`
		ConnectRate    float64 `json:"connects_per_second"`
		ConnectLatency latency `json:"connect_latency"`
		Dropped        int     `json:"dropped"`
		PerConn        *struct {
			FromMetrics bool    `json:"from_metrics"`
			Goroutines  float64 `json:"goroutines"`
		} `json:"per_conn"`
	}
	mustRun(t, 0, &r, "idle", "--url", s.URL, "--conns", "50", "--users", "10", "--hold", "200ms", "--settle", "100ms",
		"--json", "--progress", "0")
	if r.Conns != 50 || r.Users != 10 || r.Connected != 50 || r.ConnectErrors != 0 || r.Dropped != 0 || r.ConnectRate <= 0 {
		t.Errorf("got %+v; want 50 of 50 connected over 10 users, none dropped", r)
	}
	checkLatency(t, "connect latency", r.ConnectLatency, 50)
	// /metrics is open on the test server: each socket costs goroutines.
	if r.PerConn == nil || !r.PerConn.FromMetrics || r.PerConn.Goroutines <= 0 {
		t.Errorf("per-connection figures from /metrics missing: %+v", r.PerConn)
	}
}

func TestChat_EveryAckedMessageArrivesOnce(t *testing.T) {
	s := servertest.Start(t)
	var r struct {
		Users      int     `json:"users"`
		Rooms      int     `json:"rooms"`
		Acked      int64   `json:"acked"`
		Unacked    int64   `json:"unacked"`
		Expected   int64   `json:"expected_deliveries"`
		Deliveries int64   `json:"deliveries"`
		Latency    latency `json:"latency"`
		Lost       int64   `json:"lost"`
		Duplicated int64   `json:"duplicated"`
		OutOfOrder int64   `json:"out_of_order"`
		Reconnects int64   `json:"reconnects"`
		Resent     int64   `json:"resent"`
		Errors     map[string]int
	}
	mustRun(t, 0, &r, "chat", "--url", s.URL, "--users", "10", "--rooms", "3", "--duration", "2s",
		"--think", "100ms", "--reconnect", "0.1", "--seed", "7", "--json", "--progress", "0")
	if r.Users != 10 || r.Rooms < 1 || r.Acked == 0 || r.Unacked != 0 {
		t.Errorf("users %d, rooms %d, acked %d, unacked %d; want 10, ≥ 1, > 0, 0", r.Users, r.Rooms, r.Acked, r.Unacked)
	}
	if r.Lost != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 || r.Deliveries < r.Expected {
		t.Errorf("lost %d, duplicated %d, out of order %d, delivered %d of %d", r.Lost, r.Duplicated, r.OutOfOrder, r.Deliveries, r.Expected)
	}
	if r.Reconnects == 0 || r.Resent == 0 {
		t.Errorf("%d reconnects, %d sends sent again: the mix did not exercise recovery", r.Reconnects, r.Resent)
	}
	if r.Latency.Count == 0 || r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
		t.Errorf("latency %+v: want samples, 0 < p50 ≤ p99 ≤ max", r.Latency)
	}
}

func TestChat_SurvivesTokenExpiry(t *testing.T) {
	// A token that lives 61 s is "expiring" 1 s after it is made: every
	// socket must renew it in flight and keep working.
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.AccessTokenTTL = 61 * time.Second }))
	var r struct {
		Acked          int64 `json:"acked"`
		Lost           int64 `json:"lost"`
		ProtocolErrors int64 `json:"protocol_errors"`
		Renewals       int64 `json:"token_renewals"`
	}
	mustRun(t, 0, &r, "chat", "--url", s.URL, "--users", "4", "--rooms", "2", "--duration", "2500ms",
		"--think", "100ms", "--reconnect", "0", "--json", "--progress", "0")
	if r.Acked == 0 || r.Lost != 0 || r.ProtocolErrors != 0 || r.Renewals < 4 {
		t.Errorf("got %+v; want messages, none lost, a renewal per socket at least, none failed", r)
	}
}

func TestRun_RefusesNonLoopbackTargets(t *testing.T) {
	for _, url := range []string{
		"http://192.0.2.1:8000",
		"http://10.0.0.1",
		"https://example.com",
		"http://0.0.0.0:8000",
		"http://[2001:db8::1]:8000",
	} {
		t.Run(url, func(t *testing.T) {
			stderr := mustRun(t, 2, nil, "idle", "--url", url, "--conns", "1")
			if !strings.Contains(stderr, "not a loopback address") || !strings.Contains(stderr, "--allow-remote") {
				t.Errorf("stderr does not explain the refusal:\n%s", stderr)
			}
		})
	}
}

func TestRun_RefusesAPIDItCannotRead(t *testing.T) {
	stderr := mustRun(t, 2, nil, "send", "--pid", "999999999")
	if !strings.Contains(stderr, "--pid") {
		t.Errorf("stderr does not name --pid:\n%s", stderr)
	}
}

func TestRun_RefusesBadURLs(t *testing.T) {
	for _, url := range []string{"ftp://127.0.0.1", "127.0.0.1:8000", "http://127.0.0.1:8000/api/", "http://u:p@127.0.0.1"} {
		t.Run(url, func(t *testing.T) {
			mustRun(t, 2, nil, "send", "--url", url)
		})
	}
}

func TestRun_SaysWhichSettingToRaiseOn429(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.RegistrationsPerMinute = 3 }))
	stderr := mustRun(t, 1, nil, "send", "--url", s.URL, "--clients", "8", "--msgs", "8", "--progress", "0")
	if !strings.Contains(stderr, "429") || !strings.Contains(stderr, "REGISTRATIONS_PER_MINUTE=") {
		t.Errorf("stderr does not name the setting to raise:\n%s", stderr)
	}
}

func TestIdle_SaysWhichSettingToRaiseOn4029(t *testing.T) {
	for _, tc := range []struct {
		name, users, want string
		limit             func(*config.Config)
	}{
		{"per address", "10", "WS_MAX_CONNS_PER_IP=", func(c *config.Config) { c.WSMaxConnsPerIP = 5 }},
		{"per user", "2", "WS_MAX_CONNS_PER_USER=", func(c *config.Config) { c.WSMaxConnsPerUser = 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.WithConfig(tc.limit))
			stderr := mustRun(t, 1, nil, "idle", "--url", s.URL, "--conns", "10", "--users", tc.users,
				"--concurrency", "1", "--progress", "0")
			if !strings.Contains(stderr, "4029") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not name %s:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestRun_RefusesTooLargeAGroup(t *testing.T) {
	stderr := mustRun(t, 2, nil, "fanout", "--subs", "1000", "--publishers", "1")
	if !strings.Contains(stderr, "at most 1000") {
		t.Errorf("stderr does not explain the group limit:\n%s", stderr)
	}
}

func TestRun_Help(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"idle", "--help"}, {"fanout", "-h"}, {"send", "--help"}, {"chat", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := bench.Run(context.Background(), args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Usage: confab bench") {
			t.Errorf("%v: exit %d, stdout:\n%s", args, code, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := bench.Run(context.Background(), []string{"nosuch"}, &stdout, &stderr); code != 2 {
		t.Errorf("unknown scenario: exit %d, want 2", code)
	}
}

func TestRun_PrintsATableAndProgress(t *testing.T) {
	s := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := bench.Run(ctx, []string{"send", "--url", s.URL, "--clients", "2", "--msgs", "300", "--progress", "10ms"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"confab bench send against", "committed/s", "POST latency"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "bench send ") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
}
