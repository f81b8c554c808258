package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// benchClient keeps a connection per sender goroutine: the default
// client keeps only two idle connections per host, and 16 senders would
// spend the benchmark dialing.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}

// benchDo makes one request and checks its status. It returns its error
// rather than failing the benchmark: RunParallel calls it on goroutines
// of its own, which may only report with b.Error.
func benchDo(method, url, token string, body []byte, want int) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := benchClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d", method, url, resp.StatusCode)
	}
	return nil
}

// BenchmarkSend_HTTP16 is the send path end to end: 16 concurrent HTTP
// senders (8 goroutines per CPU on this 2-CPU machine), each POSTing to
// the real server on a real SQLite file with synchronous=FULL. One op is
// one acknowledged (committed) message; msgs/s is the rate of 201s.
func BenchmarkSend_HTTP16(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := "own-conversation"
		if shared {
			name = "shared-conversation"
		}
		b.Run(name, func(b *testing.B) {
			s := servertest.Start(b)
			hub := s.Register(b, "hub")
			users := make([]servertest.User, 16)
			convs := make([]int64, 16)
			for i := range users {
				users[i] = s.Register(b, "sender")
			}
			if shared {
				g := s.Conversation(b, hub, users...)
				for i := range convs {
					convs[i] = g
				}
			} else {
				for i, u := range users {
					convs[i] = s.Conversation(b, u, hub)
				}
			}
			body := []byte(`{"content":"a benchmark message of ordinary length, about sixty bytes"}`)
			var next atomic.Int64
			before := count(b, s, `SELECT count(*) FROM messages`)
			commits := groupCommits(b, s)
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)-1) % len(users)
				url := fmt.Sprintf("%s/api/conversations/%d/messages/", s.URL, convs[i])
				for pb.Next() {
					if err := benchDo(http.MethodPost, url, users[i].Access, body, http.StatusCreated); err != nil {
						b.Error(err)
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if n := count(b, s, `SELECT count(*) FROM messages`) - before; n != b.N {
				b.Errorf("%d messages stored, want %d", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			if after := groupCommits(b, s); after > commits {
				b.ReportMetric(float64(b.N)/float64(after-commits), "msgs/commit")
			}
		})
	}
}

// BenchmarkHistory_HTTP is the list path: 16 concurrent readers each
// GETting the newest page of 50 from a conversation of 1000 messages.
func BenchmarkHistory_HTTP(b *testing.B) {
	s := servertest.Start(b)
	a, c := s.Register(b, "writer"), s.Register(b, "reader")
	conv := s.Conversation(b, a, c)
	body := []byte(`{"content":"history"}`)
	url := fmt.Sprintf("%s/api/conversations/%d/messages/", s.URL, conv)
	for range 1000 {
		if err := benchDo(http.MethodPost, url, a.Access, body, http.StatusCreated); err != nil {
			b.Error(err)
		}
	}
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := benchDo(http.MethodGet, url+"?limit=50", c.Access, nil, http.StatusOK); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pages/s")
}

// groupCommits reads how many group commits the server has made from its
// own /metrics (the count of insert_messages transactions); -1 when the
// metric is not there.
func groupCommits(b *testing.B, s *servertest.Server) int64 {
	resp, err := benchClient.Get(s.URL + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "confab_db_query_duration_seconds_count{") && strings.Contains(line, `op="insert_messages"`) {
			n, _ := strconv.ParseInt(line[strings.LastIndexByte(line, ' ')+1:], 10, 64)
			return n
		}
	}
	b.Log("no insert_messages count in /metrics: msgs/commit not reported")
	return -1
}
