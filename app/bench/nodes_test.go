package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPublisherOf_ReadsTheStampsTag(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    int
	}{
		{stamp(5*time.Millisecond, "p0-1", 64), 0},
		{stamp(time.Second, "p12-345", 48), 12},
		{stamp(time.Second, "s3-4", 48), -1}, // a send's tag
		{"hello", -1},
		{"bench t=12 pX-1 xxx", -1},
	} {
		if got := publisherOf(tc.content); got != tc.want {
			t.Errorf("publisherOf(%q) = %d, want %d", tc.content, got, tc.want)
		}
	}
}

func TestTracker_SplitsDeliveriesBySubscribersNode(t *testing.T) {
	tr := &tracker{nodes: 3}
	// Publisher 4 posts to node 1 (4 mod 3).
	content := stamp(10*time.Millisecond, "p4-1", 64)
	tr.delivered(12*time.Millisecond, content, 1) // same node: 2 ms
	tr.delivered(15*time.Millisecond, content, 0) // other: 5 ms
	tr.delivered(16*time.Millisecond, content, 2) // other: 6 ms
	same, other := tr.same.nodeSummary(), tr.other.nodeSummary()
	if same.Count != 1 || other.Count != 2 || tr.lat.n.Load() != 3 {
		t.Fatalf("same %d, other %d, all %d; want 1, 2, 3", same.Count, other.Count, tr.lat.n.Load())
	}
	if same.P50 != 2 || other.Max != 6 {
		t.Errorf("same p50 %v ms, other max %v ms; want 2, 6", same.P50, other.Max)
	}

	one := &tracker{nodes: 1}
	one.delivered(12*time.Millisecond, content, 0)
	if one.same.n.Load() != 0 || one.other.n.Load() != 0 {
		t.Errorf("one node split its deliveries")
	}
}

func TestFanoutReport_RowsSplitByNodeOnlyWithSeveral(t *testing.T) {
	r := &fanoutReport{Acked: 1, Messages: 1}
	for _, row := range r.rows() {
		if strings.Contains(row[0], "node") || strings.Contains(row[0], "Redis") {
			t.Errorf("a one-server report has the row %q", row[0])
		}
	}
	r.Nodes = []nodeShare{{URL: "http://127.0.0.1:1", Subscribers: 2, Publishers: 1}, {URL: "http://127.0.0.1:2", Subscribers: 1}}
	r.SameNode = &nodeLatency{Count: 2, P50: 1, P90: 1.5, P99: 2, Max: 3}
	r.OtherNode = &nodeLatency{Count: 1, P50: 1.25, P90: 2, P99: 2.5, Max: 4}
	r.RedisHop = &hop{P50: 0.25, P99: 0.5}
	got := map[string]string{}
	for _, row := range r.rows() {
		got[row[0]] = row[1]
	}
	for key, want := range map[string]string{
		"nodes":               "http://127.0.0.1:1 2 subs, 1 pubs; http://127.0.0.1:2 1 subs, 0 pubs",
		"latency, same node":  "p50 1.00  p90 1.50  p99 2.00  max 3.00 ms (2 deliveries)",
		"latency, other node": "p50 1.25  p90 2.00  p99 2.50  max 4.00 ms (1 deliveries)",
		"Redis hop (added)":   "p50 +0.25 ms, p99 +0.50 ms (other node − same node)",
	} {
		if got[key] != want {
			t.Errorf("row %q = %q, want %q", key, got[key], want)
		}
	}
}
