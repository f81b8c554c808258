package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The accounts confab bench seed writes (package seed says the same: the
// bench imports none of the server's packages).
const (
	seedPassword = "confab-seed-password"
	seedUsers    = "seed_1,seed_100" // seed_1 is in 10,000 conversations at the default scale
)

// The reads the scale figure promises, which reads reports against.
const (
	targetStart = 200 * time.Millisecond
	targetPage  = 5.0 // ms, p99 of a conversation page and of a history page
)

func readsScenario() *scenario {
	return &scenario{
		name: "reads", args: "[--clients C --requests R --pid PID] | --start-db PATH --binary BIN --starts N",
		summary: "reads of a seeded database: conversation and history pages, or start time",
		help: `Measures the reads a large database must keep fast, on a file written by
'confab bench seed'. Against a running server (--url) it logs in as each of
--users (seed_1, in 10,000 conversations at the default scale, and an
ordinary user) and reads, C clients at once, R requests in all, taken in
turn: the first page of conversations (GET /api/conversations/?limit=50),
a later one (page --page, reached by following next beforehand), and
the newest and an older page of the history of the busiest conversation
on the first page (GET …/messages/?limit=50, then ?before=<its first id>).
It reports p50/p99 per read and user, and with --pid the server's CPU per
request, against the targets: a conversation or history page p99 ≤ 5 ms.

With --start-db it starts --binary --starts times on that file instead
(DATABASE_PATH=PATH, a free port, LOG_LEVEL=warn; nothing is copied),
measures the time from exec to /readyz answering 200, stops it with
SIGTERM, and reports p50/max against the target: a start ≤ 200 ms.

  confab bench seed --db /tmp/confab-10m.db
  confab bench reads --start-db /tmp/confab-10m.db --binary ./confab --starts 5
  confab bench reads --clients 4 --requests 1000 --pid $(pgrep -n confab)`,
		timeout: func() time.Duration { return 30 * time.Minute },
		flags: func(fs *flag.FlagSet) func(context.Context, *env) (report, error) {
			clients := fs.Int("clients", 1, "concurrent readers")
			requests := fs.Int("requests", 1000, "requests, in all")
			users := fs.String("users", seedUsers, "the accounts that read, comma-separated")
			password := fs.String("password", seedPassword, "their password")
			page := fs.Int("page", 10, "the later page of conversations measured (page 1 is the first)")
			startDB := fs.String("start-db", "", "measure starts on this SQLite file instead of reads (with --binary)")
			binary := fs.String("binary", "", "the confab binary to start, with --start-db")
			starts := fs.Int("starts", 5, "starts to measure, with --start-db")
			return func(ctx context.Context, e *env) (report, error) {
				if *startDB != "" || *binary != "" {
					switch {
					case *startDB == "" || *binary == "":
						return nil, &usageError{"--start-db and --binary go together"}
					case *starts < 1:
						return nil, &usageError{"--starts must be at least 1"}
					}
					return runStarts(ctx, e, *startDB, *binary, *starts)
				}
				names := strings.FieldsFunc(*users, func(r rune) bool { return r == ',' })
				switch {
				case *clients < 1 || *requests < 1:
					return nil, &usageError{"--clients and --requests must be at least 1"}
				case len(names) == 0:
					return nil, &usageError{"--users names no account"}
				case *page < 2:
					return nil, &usageError{"--page must be at least 2"}
				}
				return runReads(ctx, e, *clients, *requests, names, *password, *page)
			}
		},
	}
}

// Kinds of read.
const (
	readFirstPage = iota
	readLaterPage
	readNewest
	readOlder
	readKinds
)

// reader is one account's reads, prepared before the measured part.
type reader struct {
	name          string
	token         string
	conversations int    // how many it saw, up to the later page
	later         string // the cursor of the later page; "" when there is none
	laterPage     int
	conv          int64 // the conversation whose history is read
	convSeq       int64 // its last seq: how many messages it holds
	older         int64 // the before of the older history page; 0 when none
}

// path returns the request of kind k, or "" when this reader has none.
func (r *reader) path(k int) string {
	conv := "/api/conversations/" + strconv.FormatInt(r.conv, 10) + "/messages/?limit=50"
	switch k {
	case readFirstPage:
		return "/api/conversations/?limit=50"
	case readLaterPage:
		if r.later == "" {
			return ""
		}
		return "/api/conversations/?limit=50&before=" + url.QueryEscape(r.later)
	case readNewest:
		if r.conv == 0 {
			return ""
		}
		return conv
	case readOlder:
		if r.older == 0 {
			return ""
		}
		return conv + "&before=" + strconv.FormatInt(r.older, 10)
	}
	return ""
}

func readName(k int, r *reader) string {
	switch k {
	case readFirstPage:
		return "conversations, first page"
	case readLaterPage:
		return fmt.Sprintf("conversations, page %d", r.laterPage)
	case readNewest:
		return "history, newest page"
	}
	return "history, older page"
}

type readsReport struct {
	header
	Clients  int         `json:"clients"`
	Requests int64       `json:"requests"`
	Errors   int64       `json:"errors"`
	First    string      `json:"first_error,omitempty"`
	Secs     float64     `json:"read_seconds"`
	Rate     float64     `json:"requests_per_second"`
	Users    []readsUser `json:"users"`
	// Met says, per target, whether every user's p99 was within it.
	Met map[string]bool `json:"targets_met"`
}

// readsUser is what one account's reads took.
type readsUser struct {
	Username      string           `json:"username"`
	Conversations int              `json:"conversations_seen"`
	HistorySeq    int64            `json:"history_messages"`
	Reads         map[string]reads `json:"reads"`
}

type reads struct {
	Path string `json:"path"`
	latency
}

func (r *readsReport) failed() bool { return r.Errors > 0 }

func (r *readsReport) rows() [][2]string {
	rows := [][2]string{
		{"clients", fmt.Sprint(r.Clients)},
		{"requests", fmt.Sprintf("%d (%.0f/s over %.2f s)", r.Requests, r.Rate, r.Secs)},
		{"errors", fmt.Sprint(r.Errors)},
	}
	if r.First != "" {
		rows = append(rows, [2]string{"first error", r.First})
	}
	for _, u := range r.Users {
		rows = append(rows, [2]string{u.Username, fmt.Sprintf("%d conversations on the pages before the later one; history of %d messages",
			u.Conversations, u.HistorySeq)})
		names := make([]string, 0, len(u.Reads))
		for k := range u.Reads {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			rows = append(rows, [2]string{"  " + k, u.Reads[k].latency.String()})
		}
	}
	rows = append(rows,
		[2]string{"target: conversation page p99", metText(r.Met["conversation_page_p99_5ms"], fmt.Sprintf("≤ %.0f ms", targetPage))},
		[2]string{"target: history page p99", metText(r.Met["history_page_p99_5ms"], fmt.Sprintf("≤ %.0f ms", targetPage))})
	return append(rows, append(r.serverRows(), cpuPer(r.Server, r.Requests, "request")...)...)
}

func metText(met bool, target string) string {
	if met {
		return target + ": met"
	}
	return target + ": MISSED"
}

func runReads(ctx context.Context, e *env, clients, requests int, names []string, password string, page int) (report, error) {
	e.progress.set(func() string { return "waiting for the server, logging in and finding the pages" })
	if err := awaitReady(ctx, e.api); err != nil {
		return nil, err
	}
	readers := make([]*reader, len(names))
	for i, n := range names {
		r, err := prepareReader(ctx, e.api, n, password, page)
		if err != nil {
			return nil, err
		}
		readers[i] = r
	}
	// The requests, taken in turn: every user's every kind of read.
	type job struct {
		r    *reader
		k    int
		path string
		h    *hist
	}
	var jobs []job
	hists := make(map[*reader]map[int]*hist)
	for _, r := range readers {
		hists[r] = map[int]*hist{}
		for k := range readKinds {
			if p := r.path(k); p != "" {
				h := &hist{}
				hists[r][k] = h
				jobs = append(jobs, job{r, k, p, h})
			}
		}
	}
	rep := &readsReport{header: e.header("reads"), Clients: clients}
	rep.Server = e.memBefore()
	var next, done, errs atomic.Int64
	var first firstError
	start := time.Now()
	e.progress.set(func() string {
		return fmt.Sprintf("%d/%d requests (%.0f/s), %d errors", done.Load(), requests, perSec(done.Load(), time.Since(start)), errs.Load())
	})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(requests) {
					return
				}
				j := jobs[i%int64(len(jobs))]
				t0 := time.Now()
				_, err := e.api.do(ctx, http.MethodGet, j.path, j.r.token, nil, nil)
				if err != nil {
					errs.Add(1)
					first.set(err)
				} else {
					j.h.add(time.Since(t0))
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	rep.Server.after(e)
	rep.Requests, rep.Errors, rep.First = done.Load(), errs.Load(), first.String()
	rep.Secs, rep.Rate = seconds(took), perSec(done.Load(), took)
	rep.Met = map[string]bool{"conversation_page_p99_5ms": true, "history_page_p99_5ms": true}
	for _, r := range readers {
		u := readsUser{Username: r.name, Conversations: r.conversations, HistorySeq: r.convSeq, Reads: map[string]reads{}}
		for k, h := range hists[r] {
			s := h.summary()
			u.Reads[readName(k, r)] = reads{Path: r.path(k), latency: s}
			key := "history_page_p99_5ms"
			if k == readFirstPage || k == readLaterPage {
				key = "conversation_page_p99_5ms"
			}
			if s.Count == 0 || s.P99 > targetPage {
				rep.Met[key] = false
			}
		}
		rep.Users = append(rep.Users, u)
	}
	rep.finish(e)
	return rep, ctx.Err()
}

// awaitReady waits up to 60 s for the server to answer /readyz: a server
// started a moment before the bench may still be opening its file.
func awaitReady(ctx context.Context, a *api) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := a.do(ctx, http.MethodGet, "/readyz", "", nil, nil)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prepareReader logs name in and finds its pages: the cursor of the
// later page, and the busiest conversation of the first page with the
// cursor of its older history page.
func prepareReader(ctx context.Context, a *api, name, password string, page int) (*reader, error) {
	var login struct{ Access string }
	if _, err := a.do(ctx, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": name, "password": password}, &login); err != nil {
		return nil, fmt.Errorf("log in as %s (a database written by confab bench seed?): %w", name, err)
	}
	r := &reader{name: name, token: login.Access}
	type list struct {
		Results []struct {
			ID          int64
			LastMessage *struct{ Seq int64 } `json:"last_message"`
		}
		Next *string
	}
	cursor := ""
	for p := 1; p < page; p++ {
		path := "/api/conversations/?limit=50"
		if cursor != "" {
			path += "&before=" + url.QueryEscape(cursor)
		}
		var l list
		if _, err := a.do(ctx, http.MethodGet, path, r.token, nil, &l); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		r.conversations += len(l.Results)
		if p == 1 {
			for _, c := range l.Results {
				if c.LastMessage != nil && c.LastMessage.Seq > r.convSeq {
					r.conv, r.convSeq = c.ID, c.LastMessage.Seq
				}
			}
		}
		if l.Next == nil {
			break
		}
		cursor = *l.Next
		if p == page-1 {
			r.later, r.laterPage = cursor, page
		}
	}
	if r.conv != 0 {
		var h struct {
			Results []struct{ ID int64 }
			HasMore bool `json:"has_more"`
		}
		path := "/api/conversations/" + strconv.FormatInt(r.conv, 10) + "/messages/?limit=50"
		if _, err := a.do(ctx, http.MethodGet, path, r.token, nil, &h); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if h.HasMore && len(h.Results) > 0 {
			r.older = h.Results[0].ID
		}
	}
	return r, nil
}

// startsReport is what starting the server on a file took.
type startsReport struct {
	Scenario string  `json:"scenario"`
	DB       string  `json:"database"`
	DBBytes  int64   `json:"database_bytes"`
	Binary   string  `json:"binary"`
	Seconds  float64 `json:"seconds"`
	// StartsMS is each start: exec to /readyz answering 200.
	StartsMS []float64 `json:"starts_ms"`
	P50      float64   `json:"p50_ms"`
	Max      float64   `json:"max_ms"`
	Met      bool      `json:"target_met"`
}

func (r *startsReport) failed() bool { return false }

// title replaces the table's "against URL": no server was given.
func (r *startsReport) title() string {
	return fmt.Sprintf("%d starts of %s on %s", len(r.StartsMS), r.Binary, r.DB)
}

func (r *startsReport) rows() [][2]string {
	each := make([]string, len(r.StartsMS))
	for i, v := range r.StartsMS {
		each[i] = fmtMS(v)
	}
	return [][2]string{
		{"database", fmt.Sprintf("%s (%.2f GB)", r.DB, float64(r.DBBytes)/1e9)},
		{"starts (exec → /readyz 200)", strings.Join(each, ", ") + " ms"},
		{"p50 / max", fmt.Sprintf("%s / %s ms", fmtMS(r.P50), fmtMS(r.Max))},
		{"target: start", metText(r.Met, fmt.Sprintf("≤ %d ms", targetStart.Milliseconds()))},
	}
}

func runStarts(ctx context.Context, e *env, dbPath, binary string, n int) (report, error) {
	fi, err := os.Stat(dbPath)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("--start-db: %v", err)}
	}
	if _, err := os.Stat(binary); err != nil {
		return nil, &usageError{fmt.Sprintf("--binary: %v", err)}
	}
	rep := &startsReport{Scenario: "reads", DB: dbPath, DBBytes: fi.Size(), Binary: binary}
	var durs []time.Duration
	for i := range n {
		e.progress.set(func() string { return fmt.Sprintf("start %d/%d", i+1, n) })
		d, err := startOnce(ctx, dbPath, binary)
		if err != nil {
			return nil, fmt.Errorf("start %d: %w", i+1, err)
		}
		durs = append(durs, d)
		rep.StartsMS = append(rep.StartsMS, float64(d.Microseconds())/1000)
	}
	sorted := slices.Clone(durs)
	slices.Sort(sorted)
	p50, top := sorted[(len(sorted)-1)/2], sorted[len(sorted)-1]
	rep.P50, rep.Max = float64(p50.Microseconds())/1000, float64(top.Microseconds())/1000
	rep.Met = top <= targetStart
	rep.Seconds = seconds(time.Since(e.start))
	return rep, nil
}

// startOnce starts binary on dbPath on a free loopback port, waits for
// /readyz to answer 200 and stops it with SIGTERM. It returns the time
// from exec to that answer.
func startOnce(ctx context.Context, dbPath, binary string) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	var logs strings.Builder
	var mu sync.Mutex
	cmd := exec.Command(binary, "serve")
	// Only these: an inherited DATABASE_URL would start it on another
	// database.
	cmd.Env = []string{"HOST=127.0.0.1", "PORT=" + port, "DATABASE_PATH=" + dbPath, "LOG_LEVEL=warn"}
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if logs.Len() < 64<<10 {
			logs.Write(p)
		}
		return len(p), nil
	})
	cmd.Stdout, cmd.Stderr = w, w
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	readyz := "http://127.0.0.1:" + port + "/readyz"
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			return errors.New("still running 30 s after SIGTERM: killed")
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := hc.Get(readyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				took := time.Since(start)
				if err := stop(); err != nil {
					return 0, fmt.Errorf("stop: %w\n%s", err, logsOf(&mu, &logs))
				}
				return took, nil
			}
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the server exited before answering (%v):\n%s", err, logsOf(&mu, &logs))
		case <-ctx.Done():
			stop()
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return 0, fmt.Errorf("/readyz did not answer 200 within 2 minutes:\n%s", logsOf(&mu, &logs))
		}
	}
}

func logsOf(mu *sync.Mutex, b *strings.Builder) string {
	mu.Lock()
	defer mu.Unlock()
	return b.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}
