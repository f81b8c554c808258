package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/bench"
	"github.com/confab/confab/app/cluster/redistest"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/db/postgres/pgtest"
)

// runAny runs confab bench with args and decodes its JSON report into out,
// whatever the exit status (0 or 1), which it returns.
func runAny(t *testing.T, out any, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := bench.Run(ctx, args, &stdout, &stderr)
	if code != 0 && code != 1 {
		t.Fatalf("confab bench %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("report is not JSON (%v):\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return code
}

// startPair starts two servers on one database: accounts made on either
// work on both, but they are no cluster (each delivers only what is
// posted to it), unless the environment joins them through Redis.
func startPair(t *testing.T) (*servertest.Server, *servertest.Server) {
	t.Helper()
	a := servertest.Start(t)
	b := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.DatabasePath, c.DatabaseURL = a.Config.DatabasePath, a.Config.DatabaseURL
	}))
	return a, b
}

type nodeLatency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

type fanoutNodes struct {
	Targets    []string `json:"targets"`
	Acked      int64    `json:"acked"`
	Deliveries int64    `json:"deliveries"`
	Lost       int64    `json:"lost"`
	Duplicated int64    `json:"duplicated"`
	OutOfOrder int64    `json:"out_of_order"`
	Nodes      []struct {
		URL         string `json:"url"`
		Subscribers int    `json:"subscribers"`
		Publishers  int    `json:"publishers"`
	} `json:"nodes"`
	Latency   latency      `json:"latency"`
	SameNode  *nodeLatency `json:"same_node_latency"`
	OtherNode *nodeLatency `json:"other_node_latency"`
	RedisHop  *struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"redis_hop"`
}

func TestFanout_SpreadsSocketsAndPublishersOverURLs(t *testing.T) {
	a, b := startPair(t)
	var r fanoutNodes
	// Publisher 0 and subscribers 0, 2, 4 on a; publisher 1 and
	// subscribers 1, 3, 5 on b. The two servers share accounts but not
	// events: every subscriber gets its own node's messages, and the
	// other node's only when the environment makes them a cluster.
	runAny(t, &r, "fanout", "--url", a.URL+", "+b.URL, "--subs", "6", "--msgs", "20", "--publishers", "2",
		"--drain", "500ms", "--json", "--progress", "0")
	if len(r.Targets) != 2 || r.Targets[0] != a.URL || r.Targets[1] != b.URL {
		t.Errorf("targets %v, want [%s %s]", r.Targets, a.URL, b.URL)
	}
	if len(r.Nodes) != 2 || r.Nodes[0].URL != a.URL || r.Nodes[0].Subscribers != 3 || r.Nodes[0].Publishers != 1 ||
		r.Nodes[1].URL != b.URL || r.Nodes[1].Subscribers != 3 || r.Nodes[1].Publishers != 1 {
		t.Errorf("nodes %+v, want 3 subscribers and 1 publisher on each", r.Nodes)
	}
	if r.Acked != 20 {
		t.Fatalf("acked %d of 20", r.Acked)
	}
	if r.SameNode == nil || r.OtherNode == nil {
		t.Fatalf("no same/other node split in the report: %+v", r)
	}
	// Each message reaches the 3 subscribers of its publisher's node.
	if r.SameNode.Count != 3*r.Acked {
		t.Errorf("same-node deliveries %d, want %d", r.SameNode.Count, 3*r.Acked)
	}
	if r.SameNode.Count+r.OtherNode.Count != r.Deliveries || r.Latency.Count != r.Deliveries {
		t.Errorf("same %d + other %d deliveries, latency samples %d; want both to make the %d deliveries",
			r.SameNode.Count, r.OtherNode.Count, r.Latency.Count, r.Deliveries)
	}
	if l := r.SameNode; !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("same node: want 0 < p50 ≤ p90 ≤ p99 ≤ max, got %+v", l)
	}
	if r.Duplicated != 0 || r.OutOfOrder != 0 {
		t.Errorf("duplicated %d, out of order %d; want 0", r.Duplicated, r.OutOfOrder)
	}
	if (r.RedisHop != nil) != (r.OtherNode.Count > 0) {
		t.Errorf("Redis hop %+v with %d other-node deliveries: want it exactly when there are some", r.RedisHop, r.OtherNode.Count)
	}
}

func TestSend_SpreadsSendersOverURLs(t *testing.T) {
	a, b := startPair(t)
	var r struct {
		Committed int64    `json:"committed"`
		Errors    int64    `json:"errors"`
		Targets   []string `json:"targets"`
		PerNode   []struct {
			URL       string `json:"url"`
			Senders   int    `json:"senders"`
			Committed int64  `json:"committed"`
		} `json:"per_node"`
	}
	if code := runAny(t, &r, "send", "--url", a.URL+","+b.URL, "--clients", "3", "--msgs", "90", "--json", "--progress", "0"); code != 0 {
		t.Errorf("exit %d", code)
	}
	if r.Committed != 90 || r.Errors != 0 || len(r.Targets) != 2 {
		t.Errorf("committed %d, errors %d, targets %v; want 90, 0, both", r.Committed, r.Errors, r.Targets)
	}
	if len(r.PerNode) != 2 || r.PerNode[0].Senders != 2 || r.PerNode[1].Senders != 1 ||
		r.PerNode[0].Committed == 0 || r.PerNode[1].Committed == 0 || r.PerNode[0].Committed+r.PerNode[1].Committed != 90 {
		t.Errorf("per node %+v; want 2 and 1 senders, each committing, 90 in all", r.PerNode)
	}
}

func TestFanout_OneURLReportsNoSplit(t *testing.T) {
	s := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := bench.Run(ctx, []string{"fanout", "--url", s.URL, "--subs", "3", "--msgs", "5", "--progress", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, not := range []string{"same node", "other node", "Redis hop", "nodes"} {
		if strings.Contains(stdout.String(), not) {
			t.Errorf("a one-server table has %q:\n%s", not, stdout.String())
		}
	}
	var r map[string]any
	mustRun(t, 0, &r, "fanout", "--url", s.URL, "--subs", "3", "--msgs", "5", "--json", "--progress", "0")
	for _, key := range []string{"targets", "nodes", "same_node_latency", "other_node_latency", "redis_hop"} {
		if _, ok := r[key]; ok {
			t.Errorf("a one-server report has %q", key)
		}
	}
}

func TestRun_RefusesBadURLLists(t *testing.T) {
	for _, tc := range []struct{ scenario, url, want string }{
		{"send", "http://127.0.0.1:8101,http://127.0.0.1:8101", "twice"},
		{"send", "http://127.0.0.1:8101,http://localhost:8101", "twice"},
		{"fanout", "http://127.0.0.1:8101,", "empty"},
		{"fanout", "http://127.0.0.1:8101,http://192.0.2.1:8000", "not a loopback address"},
		{"chat", "http://127.0.0.1:8101,127.0.0.1:8102", "--url"},
		{"idle", "http://127.0.0.1:8101,http://127.0.0.1:8102", "give one URL"},
	} {
		t.Run(tc.scenario+" "+tc.url, func(t *testing.T) {
			stderr := mustRun(t, 2, nil, tc.scenario, "--url", tc.url)
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}

// TestFanout_AcrossACluster runs fanout over two nodes joined through a
// real Redis on one Postgres database (CONFAB_TEST_DATABASE_URL;
// skipped without it or redis-server, except under CI=true).
func TestFanout_AcrossACluster(t *testing.T) {
	dbURL := pgtest.URL(t)
	rds := redistest.Start(t)
	prefix := "benchtest" + strings.ReplaceAll(t.Name(), "/", "_") + time.Now().Format("150405.000000") + ":"
	join := func(c *config.Config, o *server.Options) {
		c.DatabaseURL, c.RedisURL = dbURL, rds.URL()
		o.Cluster.Prefix = prefix
	}
	a := servertest.Start(t, join)
	b := servertest.Start(t, join)
	var r fanoutNodes
	if code := runAny(t, &r, "fanout", "--url", a.URL+","+b.URL, "--subs", "6", "--msgs", "30", "--publishers", "1",
		"--json", "--progress", "0"); code != 0 {
		t.Errorf("exit %d: %+v", code, r)
	}
	if r.Acked != 30 || r.Deliveries != 30*6 || r.Lost != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 {
		t.Errorf("acked %d, delivered %d, lost %d, duplicated %d, out of order %d; want 30, 180, 0, 0, 0",
			r.Acked, r.Deliveries, r.Lost, r.Duplicated, r.OutOfOrder)
	}
	// The one publisher is on a, with subscribers 0, 2, 4; 1, 3, 5 are on b.
	if r.SameNode == nil || r.OtherNode == nil || r.SameNode.Count != 30*3 || r.OtherNode.Count != 30*3 {
		t.Fatalf("same %+v, other %+v; want 90 deliveries each", r.SameNode, r.OtherNode)
	}
	if r.RedisHop == nil {
		t.Errorf("no Redis hop in the report")
	}
}
