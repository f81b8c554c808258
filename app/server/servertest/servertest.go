// Package servertest starts real Confab servers for tests: the real
// handler on a real temporary SQLite file, behind a real loopback
// listener, like net/http/httptest does for plain handlers.
//
// With CONFAB_TEST_STORE=postgres, every server gets a fresh schema in
// the Postgres database at CONFAB_TEST_DATABASE_URL instead (see pgtest):
// the same suites then run against the Postgres store. With
// CONFAB_TEST_REDIS_URL also set, every server joins that Redis too
// (under keys of its own), as a node of a cluster does.
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for DB
	_ "modernc.org/sqlite"             // the "sqlite" driver, for DB

	"github.com/confab/confab/app/blob/s3test"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/db/postgres/pgtest"
)

// Server is a running test server.
type Server struct {
	*server.Server
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL    string
	HTTP   *httptest.Server
	Config config.Config
	Opts   server.Options
	Logs   *LogBuffer
	t      testing.TB
	addr   string
	closed bool
	dbMu   sync.Mutex
	db     *sql.DB // see DB
}

// Option changes the configuration of a test server.
type Option func(*config.Config, *server.Options)

// WithConfig lets a test change the configuration.
func WithConfig(f func(*config.Config)) Option {
	return func(c *config.Config, _ *server.Options) { f(c) }
}

// OnSQLite keeps the server on its SQLite file even under
// CONFAB_TEST_STORE=postgres, for tests of what only SQLite has (the file
// that backup, migrate and createuser open by DATABASE_PATH), its files
// in the folder beside it.
func OnSQLite() Option {
	return func(c *config.Config, _ *server.Options) {
		c.DatabaseURL, c.RedisURL = "", ""
		c.S3Endpoint, c.S3Bucket, c.S3AccessKey, c.S3SecretKey, c.S3Region, c.S3Prefix = "", "", "", "", "", ""
	}
}

// WithStore has the services use the store as wrap wraps it: a fault
// injected for one test (server.Options.WrapStore).
func WithStore(wrap func(chat.Store) chat.Store) Option {
	return func(_ *config.Config, o *server.Options) { o.WrapStore = wrap }
}

// Clock is a controllable clock for WithNow: it stands still until a test
// moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock standing at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// WithNow sets the server's clock.
func WithNow(now func() time.Time) Option {
	return func(_ *config.Config, o *server.Options) { o.Now = now }
}

// Config returns the configuration tests start from: the defaults, a
// fresh database in t's temp dir, the cheapest password hash, and rate
// limits high enough not to get in a test's way.
func Config(t testing.TB) config.Config {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.DatabasePath = filepath.Join(t.TempDir(), "confab.db")
	if os.Getenv("CONFAB_TEST_STORE") == "postgres" {
		cfg.DatabaseURL = pgtest.URL(t)
		if u := os.Getenv("CONFAB_TEST_REDIS_URL"); u != "" {
			cfg.RedisURL = u
		}
		// Several nodes keep files in an object store: a real S3
		// server, shared by the test process, each server under a
		// prefix of its own.
		s3 := s3test.Shared(t)
		cfg.S3Endpoint, cfg.S3Bucket, cfg.S3AccessKey, cfg.S3SecretKey = s3.Endpoint, s3.Bucket, s3.AccessKey, s3.SecretKey
		cfg.S3Region, cfg.S3Prefix = s3.Region, s3.Prefix
	}
	cfg.RegistrationsPerMinute = 1 << 20
	cfg.LoginAttemptsPerMinute = 1 << 20
	cfg.RequestsPerSecond = 1 << 20
	cfg.RequestBurst = 1 << 20
	cfg.PasswordHashQueue = 1 << 20
	cfg.WSFramesPerSecond = 1 << 20
	cfg.WSFrameBurst = 1 << 20
	cfg.WSUserFramesPerSecond = 1 << 20
	cfg.WSUserFrameBurst = 1 << 20
	cfg.WSMaxConnsPerIP = 1 << 20
	cfg.WSMaxConnsPerUser = 1 << 20
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := Config(t)
	// Under the race detector CPU-bound work (a password hash made
	// elsewhere at the default cost, verified here) takes several times
	// its usual time, which on a loaded machine can pass the REST
	// deadline meant for a database that stops answering.
	o := server.Options{PasswordCost: 4, RequestTimeout: time.Minute}
	// Each test server's Redis keys and channel are its own.
	o.Cluster.Prefix = "test" + strconvItoa(prefixSeq.Add(1)) + "." + strconvItoa(int64(os.Getpid())) + ":"
	for _, f := range opts {
		f(&cfg, &o)
	}
	s := &Server{Config: cfg, Opts: o, t: t, Logs: &LogBuffer{}}
	s.start("127.0.0.1:0")
	t.Cleanup(s.Close)
	return s
}

func (s *Server) start(addr string) {
	s.t.Helper()
	log := slog.New(slog.NewTextHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), s.Config, log, s.Opts)
	if err != nil {
		s.t.Fatalf("start server: %v", err)
	}
	var ln net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		srv.Close()
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Config = srv.HTTPServer() // the timeouts the real server runs with
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	s.Server, s.HTTP, s.URL, s.addr, s.closed = srv, hs, hs.URL, ln.Addr().String(), false
}

// OnPostgres reports whether the server stores in Postgres.
func (s *Server) OnPostgres() bool { return s.Config.DatabaseURL != "" }

// DB returns a connection pool to the server's database, opened on first
// use and closed when the test that started the server ends, for tests
// that look at rows directly. Write queries with ? placeholders and pass
// them through Q.
func (s *Server) DB(t testing.TB) *sql.DB {
	t.Helper()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if s.db != nil {
		return s.db
	}
	var err error
	if s.OnPostgres() {
		s.db, err = sql.Open("pgx", s.Config.DatabaseURL)
	} else {
		s.db, err = sql.Open("sqlite", "file:"+s.Config.DatabasePath+"?_pragma=busy_timeout(5000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	d := s.db
	s.t.Cleanup(func() { d.Close() })
	return d
}

// Q rewrites a query's ? placeholders for the server's database.
func (s *Server) Q(query string) string {
	if !s.OnPostgres() {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Close stops the server and closes its database. It is safe to call twice.
func (s *Server) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.HTTP.CloseClientConnections()
	s.HTTP.Close()
	if err := s.Server.Close(); err != nil {
		s.t.Errorf("close server: %v", err)
	}
}

// Restart stops the server and starts it again on the same database file
// and the same address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Close()
	s.start(s.addr)
}

// WSURL returns the WebSocket URL of path (e.g. "/ws/chat/").
func (s *Server) WSURL(path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// Response is a decoded HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not JSON (%v): %s", r.Status, err, r.Body)
	}
}

// Map decodes the body as a JSON object.
func (r Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// BlockMany makes n accounts straight in the database (a registration
// each would cost a password hash) and has u block them all.
func (s *Server) BlockMany(t testing.TB, u User, n int) {
	t.Helper()
	tx, err := s.DB(t).Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		name := fmt.Sprintf("blocked%d_by%d", i, u.ID)
		var id int64
		if err := tx.QueryRow(s.Q(`INSERT INTO users (username, username_key, display_name, password_hash, created_at) VALUES (?, ?, '', 'x', 0) RETURNING id`),
			name, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(s.Q(`INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, 0)`), u.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Metrics scrapes /metrics (with token, when /metrics asks for one)
// into "name{labels}" → value. A status other than 200, a content type
// other than Prometheus's text or a line it cannot read fails the test.
func (s *Server) Metrics(t testing.TB, token string) map[string]float64 {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/metrics", token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q", ct)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("GET /metrics: bad line %q", line)
		}
		series[line[:i]] = v
	}
	return series
}

// Do sends a request. body may be nil, a string or []byte (sent as is), or
// any other value (sent as JSON). token, when not empty, is sent as a
// Bearer token. A request that cannot be made fails the test: call Do on
// the test's goroutine only (other goroutines use Request).
func (s *Server) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	r, err := s.Request(method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Request is Do for any goroutine: it returns the error that Do fails the
// test with.
func (s *Server) Request(method, path, token string, body any) (Response, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return Response{}, fmt.Errorf("encode body: %w", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		return Response{}, fmt.Errorf("new request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("read body: %w", err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// User is a registered test user with its tokens.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Access   string `json:"-"`
	Refresh  string `json:"-"`
}

// Password is the password of every user Register makes.
const Password = "correct horse battery"

var userSeq, prefixSeq atomic.Int64

// Register creates a user named after name (made unique) and returns it
// with its tokens.
func (s *Server) Register(t testing.TB, name string) User {
	t.Helper()
	username := name + "_" + strconvItoa(userSeq.Add(1))
	resp := s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": username, "password": Password})
	if resp.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", username, resp.Status, resp.Body)
	}
	var out struct {
		User    User   `json:"user"`
		Access  string `json:"access"`
		Refresh string `json:"refresh"`
	}
	resp.JSON(t, &out)
	out.User.Access, out.User.Refresh = out.Access, out.Refresh
	return out.User
}

// Staff registers a user named after name, as Register does, and makes
// it staff, as `confab staff grant` does.
func (s *Server) Staff(t testing.TB, name string) User {
	t.Helper()
	u := s.Register(t, name)
	if _, _, err := s.Moderate.SetStaff(context.Background(), u.Username, true); err != nil {
		t.Fatalf("make %s staff: %v", u.Username, err)
	}
	return u
}

// Conversation creates a conversation of owner with others (a group when
// there are two or more others) and returns its id.
func (s *Server) Conversation(t testing.TB, owner User, others ...User) int64 {
	t.Helper()
	ids := make([]int64, len(others))
	for i, o := range others {
		ids[i] = o.ID
	}
	resp := s.Do(t, http.MethodPost, "/api/conversations/", owner.Access,
		map[string]any{"participant_ids": ids, "is_group": len(others) > 1, "title": "test"})
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Fatalf("create conversation: %d %s", resp.Status, resp.Body)
	}
	var c struct {
		ID int64 `json:"id"`
	}
	resp.JSON(t, &c)
	return c.ID
}

// Send posts a message over REST and returns its id.
func (s *Server) Send(t testing.TB, from User, convID int64, content string) int64 {
	t.Helper()
	resp := s.Do(t, http.MethodPost, "/api/conversations/"+strconvItoa(convID)+"/messages/", from.Access,
		map[string]string{"content": content})
	if resp.Status != http.StatusCreated {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	var m struct {
		ID int64 `json:"id"`
	}
	resp.JSON(t, &m)
	return m.ID
}

// Upload uploads data as a file named name (the raw body, ?name=) for u
// and returns its id.
func (s *Server) Upload(t testing.TB, u User, name string, data []byte) int64 {
	t.Helper()
	resp := s.Do(t, http.MethodPost, "/api/uploads/?name="+url.QueryEscape(name), u.Access, data)
	if resp.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s\n%s", resp.Status, resp.Body, s.Logs.String())
	}
	var up struct {
		ID int64 `json:"id"`
	}
	resp.JSON(t, &up)
	return up.ID
}

// SendAttached posts a message carrying uploads over REST and returns
// its id.
func (s *Server) SendAttached(t testing.TB, from User, convID int64, content string, uploads ...int64) int64 {
	t.Helper()
	resp := s.Do(t, http.MethodPost, "/api/conversations/"+strconvItoa(convID)+"/messages/", from.Access,
		map[string]any{"content": content, "attachment_ids": uploads})
	if resp.Status != http.StatusCreated {
		t.Fatalf("send with attachments: %d %s", resp.Status, resp.Body)
	}
	var m struct {
		ID int64 `json:"id"`
	}
	resp.JSON(t, &m)
	return m.ID
}

// LogBuffer collects the server's log lines for assertions.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Reset discards everything logged so far and the memory that held it,
// for tests that measure the server's heap.
func (l *LogBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = bytes.Buffer{}
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func strconvItoa(n int64) string { return strconv.FormatInt(n, 10) }
