package seed_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/confab/confab/app/bench"
	"github.com/confab/confab/app/bench/seed"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/systemtest"
)

// small is the scale of these tests.
func small(path string) seed.Config {
	return seed.Config{Path: path, Users: 200, Conversations: 100, Messages: 5000, Seed: 1, PasswordCost: 4}
}

// mustSeed writes cfg and returns its path.
func mustSeed(t *testing.T, cfg seed.Config) string {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "seed.db")
	}
	res, err := seed.Write(context.Background(), cfg)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if res.Users != int64(cfg.Users) || res.Messages != int64(cfg.Messages) {
		t.Fatalf("seed wrote %+v, want %d users and %d messages", res, cfg.Users, cfg.Messages)
	}
	return cfg.Path
}

// mustOpen opens a seeded file read-only, for the expected values.
func mustOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// startOn starts a server on the seeded file at path.
func startOn(t *testing.T, path string) *servertest.Server {
	t.Helper()
	return servertest.Start(t, servertest.OnSQLite(), servertest.WithConfig(func(c *config.Config) { c.DatabasePath = path }))
}

// mustLogin logs a seeded user in with the seed password.
func mustLogin(t *testing.T, s *servertest.Server, n int) string {
	t.Helper()
	resp := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": seed.Username(n), "password": seed.Password})
	if resp.Status != http.StatusOK {
		t.Fatalf("log in as %s: %d %s", seed.Username(n), resp.Status, resp.Body)
	}
	var out struct{ Access string }
	resp.JSON(t, &out)
	return out.Access
}

// wantConv is a conversation as the raw rows say a viewer should see it,
// counted from the messages themselves, not from the columns the seed
// keeps beside them.
type wantConv struct {
	members, unread int
	lastID          int64
	lastAt          int64
}

func expected(t *testing.T, d *sql.DB, user int) map[int64]wantConv {
	t.Helper()
	rows, err := d.Query(`
		SELECT p.conversation_id,
			(SELECT count(*) FROM participants q WHERE q.conversation_id = p.conversation_id),
			(SELECT count(*) FROM messages m WHERE m.conversation_id = p.conversation_id
				AND m.id > p.last_read_message_id
				AND m.id > coalesce((SELECT max(o.id) FROM messages o WHERE o.conversation_id = p.conversation_id AND o.sender_id = p.user_id), 0)),
			coalesce((SELECT max(m.id) FROM messages m WHERE m.conversation_id = p.conversation_id), 0),
			coalesce((SELECT max(m.created_at) FROM messages m WHERE m.conversation_id = p.conversation_id),
				(SELECT c.created_at FROM conversations c WHERE c.id = p.conversation_id))
		FROM participants p WHERE p.user_id = ?`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]wantConv{}
	for rows.Next() {
		var id int64
		var w wantConv
		if err := rows.Scan(&id, &w.members, &w.unread, &w.lastID, &w.lastAt); err != nil {
			t.Fatal(err)
		}
		out[id] = w
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type apiConv struct {
	ID          int64     `json:"id"`
	MemberCount int       `json:"member_count"`
	UnreadCount int       `json:"unread_count"`
	UpdatedAt   time.Time `json:"updated_at"`
	IsGroup     bool      `json:"is_group"`
	LastMessage *struct {
		ID  int64 `json:"id"`
		Seq int64 `json:"seq"`
	} `json:"last_message"`
	Participants []struct {
		User struct{ ID int64 } `json:"user"`
	} `json:"participants"`
}

// allConversations pages through GET /api/conversations/ with limit.
func allConversations(t *testing.T, s *servertest.Server, token string, limit int) []apiConv {
	t.Helper()
	var all []apiConv
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("more than 1000 pages")
		}
		path := "/api/conversations/?limit=" + strconv.Itoa(limit)
		if cursor != "" {
			path += "&before=" + url.QueryEscape(cursor)
		}
		resp := s.Do(t, http.MethodGet, path, token, nil)
		if resp.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.Status, resp.Body)
		}
		var l struct {
			Results []apiConv `json:"results"`
			Next    *string   `json:"next"`
		}
		resp.JSON(t, &l)
		all = append(all, l.Results...)
		if l.Next == nil {
			return all
		}
		cursor = *l.Next
	}
}

func TestWrite_ServerReadsItAsIfSentThroughTheAPI(t *testing.T) {
	path := mustSeed(t, small(""))
	d := mustOpen(t, path)
	for _, check := range []string{`PRAGMA integrity_check`, `PRAGMA foreign_key_check`} {
		var got []string
		rows, err := d.Query(check)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s sql.NullString
			cols, _ := rows.Columns()
			dst := make([]any, len(cols))
			dst[0] = &s
			for i := 1; i < len(dst); i++ {
				dst[i] = new(any)
			}
			rows.Scan(dst...)
			got = append(got, s.String)
		}
		rows.Close()
		if want := map[string][]string{`PRAGMA integrity_check`: {"ok"}}[check]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %q, want %q", check, got, want)
		}
	}
	want1 := expected(t, d, 1)
	// 100 conversations are a 500th of the default 50,000: seed_1 is in
	// a 500th of 10,000.
	if len(want1) != 20 {
		t.Errorf("seed_1 is in %d conversations, want 20", len(want1))
	}

	s := startOn(t, path)
	token := mustLogin(t, s, 1)

	t.Run("every conversation once, with its counts", func(t *testing.T) {
		got := allConversations(t, s, token, 7)
		seen := map[int64]bool{}
		unread := 0
		for i, c := range got {
			if seen[c.ID] {
				t.Errorf("conversation %d listed twice", c.ID)
			}
			seen[c.ID] = true
			w, ok := want1[c.ID]
			if !ok {
				t.Errorf("conversation %d listed, and seed_1 is not in it", c.ID)
				continue
			}
			if c.MemberCount != w.members || c.UnreadCount != w.unread {
				t.Errorf("conversation %d: member_count %d, unread_count %d; want %d, %d", c.ID, c.MemberCount, c.UnreadCount, w.members, w.unread)
			}
			if w.lastID == 0 && c.LastMessage != nil || w.lastID != 0 && (c.LastMessage == nil || c.LastMessage.ID != w.lastID) {
				t.Errorf("conversation %d: last message %+v, want id %d", c.ID, c.LastMessage, w.lastID)
			}
			if c.UpdatedAt.UnixMilli() != w.lastAt {
				t.Errorf("conversation %d: updated_at %v, want %v", c.ID, c.UpdatedAt, time.UnixMilli(w.lastAt).UTC())
			}
			if len(c.Participants) != min(c.MemberCount, 10) {
				t.Errorf("conversation %d: %d participants inline, want %d", c.ID, len(c.Participants), min(c.MemberCount, 10))
			}
			if i > 0 && c.UpdatedAt.After(got[i-1].UpdatedAt) {
				t.Errorf("conversation %d is more recent than the one before it", c.ID)
			}
			unread += c.UnreadCount
		}
		if len(seen) != len(want1) {
			t.Errorf("%d conversations listed, want %d", len(seen), len(want1))
		}
		if unread == 0 {
			t.Error("nothing unread anywhere: the read marks are all at the end")
		}
	})

	// The busiest conversation of seed_1.
	var conv int64
	var count int
	if err := d.QueryRow(`SELECT m.conversation_id, count(*) FROM messages m JOIN participants p
		ON p.conversation_id = m.conversation_id AND p.user_id = 1
		GROUP BY m.conversation_id ORDER BY count(*) DESC LIMIT 1`).Scan(&conv, &count); err != nil {
		t.Fatal(err)
	}
	if count <= 50 {
		t.Fatalf("seed_1's busiest conversation has %d messages: too few for pages", count)
	}
	base := "/api/conversations/" + strconv.FormatInt(conv, 10)

	t.Run("history pages in order", func(t *testing.T) {
		var ids, seqs []int64
		before := int64(0)
		for {
			path := base + "/messages/?limit=50"
			if before != 0 {
				path += "&before=" + strconv.FormatInt(before, 10)
			}
			resp := s.Do(t, http.MethodGet, path, token, nil)
			if resp.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, resp.Status, resp.Body)
			}
			var p struct {
				Results []struct{ ID, Seq int64 } `json:"results"`
				HasMore bool                      `json:"has_more"`
			}
			resp.JSON(t, &p)
			var page []int64
			var pageSeqs []int64
			for _, m := range p.Results {
				page, pageSeqs = append(page, m.ID), append(pageSeqs, m.Seq)
			}
			ids, seqs = append(page, ids...), append(pageSeqs, seqs...)
			if !p.HasMore {
				break
			}
			before = p.Results[0].ID
		}
		if len(ids) != count {
			t.Fatalf("history has %d messages, want %d", len(ids), count)
		}
		for i := range ids {
			if seqs[i] != int64(i+1) || (i > 0 && ids[i] <= ids[i-1]) {
				t.Fatalf("message %d: id %d seq %d after id %d; want ids ascending and seq %d", i, ids[i], seqs[i], ids[max(i-1, 0)], i+1)
			}
		}
	})

	t.Run("a new message takes the next seq", func(t *testing.T) {
		resp := s.Do(t, http.MethodPost, base+"/messages/", token, map[string]string{"content": "after the seed"})
		if resp.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", resp.Status, resp.Body)
		}
		var m struct{ ID, Seq int64 }
		resp.JSON(t, &m)
		if m.Seq != int64(count)+1 || m.ID != 5001 {
			t.Errorf("new message: id %d seq %d; want id 5001 (after the 5000 seeded) and seq %d", m.ID, m.Seq, count+1)
		}
		resp = s.Do(t, http.MethodGet, base+"/", token, nil)
		var c apiConv
		resp.JSON(t, &c)
		if c.UnreadCount != 0 || c.LastMessage == nil || c.LastMessage.ID != m.ID {
			t.Errorf("after sending: unread_count %d, last message %+v; want 0 and the new one", c.UnreadCount, c.LastMessage)
		}
	})

	t.Run("participant pages of a group", func(t *testing.T) {
		var group int64
		var members int
		if err := d.QueryRow(`SELECT c.id, c.member_count FROM conversations c JOIN participants p ON p.conversation_id = c.id AND p.user_id = 1
			WHERE c.is_group ORDER BY c.member_count DESC LIMIT 1`).Scan(&group, &members); err != nil {
			t.Fatal(err)
		}
		got := participantIDs(t, s, token, group)
		if len(got) != members {
			t.Errorf("group %d: %d distinct participants listed, want %d", group, len(got), members)
		}
	})
}

// participantIDs pages through a conversation's participants, failing on
// a repeat.
func participantIDs(t *testing.T, s *servertest.Server, token string, conv int64) map[int64]bool {
	t.Helper()
	got := map[int64]bool{}
	cursor := ""
	for {
		path := "/api/conversations/" + strconv.FormatInt(conv, 10) + "/participants/?limit=100"
		if cursor != "" {
			path += "&after=" + url.QueryEscape(cursor)
		}
		resp := s.Do(t, http.MethodGet, path, token, nil)
		if resp.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.Status, resp.Body)
		}
		var p struct {
			Results []struct {
				User struct{ ID int64 } `json:"user"`
			} `json:"results"`
			Next *string `json:"next"`
		}
		resp.JSON(t, &p)
		for _, r := range p.Results {
			if got[r.User.ID] {
				t.Fatalf("participant %d listed twice", r.User.ID)
			}
			got[r.User.ID] = true
		}
		if p.Next == nil {
			return got
		}
		cursor = *p.Next
	}
}

func TestWrite_RefusesAnExistingPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "taken.db")
	if err := os.WriteFile(path, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := small(path)
	if _, err := seed.Write(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("seed over an existing file: %v, want an error saying it exists", err)
	}
	var stdout, stderr bytes.Buffer
	if code := seed.Run(context.Background(), []string{"--db", path, "--users", "20", "--conversations", "5", "--messages", "10"}, &stdout, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "already exists") {
		t.Errorf("confab bench seed over an existing file: exit %d, stderr %q", code, stderr.String())
	}
	if b, _ := os.ReadFile(path); string(b) != "not yours" {
		t.Errorf("the existing file was changed: %q", b)
	}
}

func TestWrite_SameSeedSameRows(t *testing.T) {
	sum := func(seedValue uint64) string {
		cfg := small("")
		cfg.Messages, cfg.Seed = 500, seedValue
		d := mustOpen(t, mustSeed(t, cfg))
		var s string
		if err := d.QueryRow(`SELECT
			(SELECT group_concat(conversation_id || '/' || seq || '/' || sender_id || '/' || content, ';') FROM messages) ||
			(SELECT group_concat(conversation_id || '/' || user_id || '/' || last_read_seq, ';') FROM participants)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := sum(7), sum(7); a != b {
		t.Error("the same seed wrote different rows")
	}
	if a, b := sum(7), sum(8); a == b {
		t.Error("two seeds wrote the same rows")
	}
}

func TestRun_ListedByBenchHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	tool := bench.Tool{Name: "seed", Summary: seed.Summary, Run: seed.Run}
	if code := bench.Run(context.Background(), []string{"--help"}, &stdout, &stderr, tool); code != 0 {
		t.Fatalf("confab bench --help: exit %d", code)
	}
	for _, want := range []string{"seed ", "reads "} {
		if !strings.Contains(stdout.String(), "  "+want) {
			t.Errorf("confab bench --help lists no %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := bench.Run(context.Background(), []string{"seed", "--help"}, &stdout, &stderr, tool); code != 0 || !strings.Contains(stdout.String(), "--db") {
		t.Errorf("confab bench seed --help: exit %d\n%s", code, stdout.String())
	}
}

func TestReads_AgainstASeededServer(t *testing.T) {
	path := mustSeed(t, small(""))
	s := startOn(t, path)
	var stdout, stderr bytes.Buffer
	args := []string{"reads", "--url", s.URL, "--clients", "2", "--requests", "80", "--page", "2",
		"--users", seed.Username(1) + "," + seed.Username(100), "--json", "--progress", "0"}
	if code := bench.Run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("confab bench reads: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	var r struct {
		Requests int64 `json:"requests"`
		Errors   int64 `json:"errors"`
		Users    []struct {
			Username string `json:"username"`
			Reads    map[string]struct {
				Count int64   `json:"count"`
				P99   float64 `json:"p99_ms"`
			} `json:"reads"`
		} `json:"users"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("report is not JSON (%v): %s", err, stdout.String())
	}
	if r.Requests != 80 || r.Errors != 0 || len(r.Users) != 2 {
		t.Fatalf("%d requests, %d errors, %d users; want 80, 0, 2", r.Requests, r.Errors, len(r.Users))
	}
	// seed_1 is in 20 conversations: a second page of 50 does not exist,
	// but its history has an older page.
	for _, kind := range []string{"conversations, first page", "history, newest page", "history, older page"} {
		if got := r.Users[0].Reads[kind]; got.Count == 0 || got.P99 <= 0 {
			t.Errorf("seed_1 %s: %+v, want samples", kind, got)
		}
	}
}

func TestReads_StartsTheBinaryOnTheFile(t *testing.T) {
	bin := systemtest.BuildBinary(t, "seedtest")
	path := mustSeed(t, small(""))
	var stdout, stderr bytes.Buffer
	args := []string{"reads", "--start-db", path, "--binary", bin, "--starts", "2", "--progress", "0"}
	if code := bench.Run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("confab bench reads --start-db: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "against http") || !strings.Contains(out, "2 starts of "+bin+" on "+path) {
		t.Errorf("the header should name the binary and the file, not a URL:\n%s", out)
	}
	if !strings.Contains(out, "p50 / max") || !strings.Contains(out, "target: start") {
		t.Errorf("no start times against the target:\n%s", out)
	}
}

// TestWrite_MessagesAreSearchable: the seeded messages are in the search
// index, as if each had been sent: the index matches the messages, and a
// seeded user finds their own conversations' messages.
func TestWrite_MessagesAreSearchable(t *testing.T) {
	path := mustSeed(t, small(""))
	d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Fatalf("search index: %v", err)
	}
	// The mark says so: the server's indexer has nothing to add.
	var mark, top int64
	if err := d.QueryRow(`SELECT (SELECT id FROM search_indexed), (SELECT max(id) FROM messages)`).Scan(&mark, &top); err != nil || mark != top || top == 0 {
		t.Errorf("search index mark %d, last message %d (%v)", mark, top, err)
	}
	d.Close()
	s := startOn(t, path)
	token := mustLogin(t, s, 1)
	resp := s.Do(t, http.MethodGet, "/api/search/messages/?q=coffee", token, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("search: %d %s", resp.Status, resp.Body)
	}
	var out struct {
		Results []struct {
			Message struct{ Content string }
			Snippet string
		}
	}
	resp.JSON(t, &out)
	if len(out.Results) == 0 {
		t.Fatal("seed_1 found no message with coffee")
	}
	for _, r := range out.Results {
		if !strings.Contains(r.Message.Content, "coffee") || !strings.Contains(r.Snippet, "<b>coffee</b>") {
			t.Errorf("found %q, snippet %q", r.Message.Content, r.Snippet)
		}
	}
}

// TestWrite_WordsOfTextOrUniform: by default the messages' words are
// as frequent as in real text, a few very common and most rare; with
// WordsUniform every word is as frequent as any other.
func TestWrite_WordsOfTextOrUniform(t *testing.T) {
	share := func(words, word string) float64 {
		t.Helper()
		cfg := small("")
		cfg.Words = words
		d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: mustSeed(t, cfg)}).EscapedPath()+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var with, all float64
		err = d.QueryRow(`SELECT (SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?), (SELECT count(*) FROM messages)`,
			`"`+word+`"`).Scan(&with, &all)
		if err != nil {
			t.Fatal(err)
		}
		return with / all
	}
	for _, tc := range []struct {
		words, word string
		low, high   float64
	}{
		{seed.WordsChat, "the", 0.4, 0.8},
		{seed.WordsChat, "coffee", 0.005, 0.05},
		{seed.WordsUniform, "the", 0.07, 0.15},
		{seed.WordsUniform, "coffee", 0.07, 0.15},
	} {
		if got := share(tc.words, tc.word); got < tc.low || got > tc.high {
			t.Errorf("words %q: %q in %.3f of the messages, want %.3f–%.3f", tc.words, tc.word, got, tc.low, tc.high)
		}
	}
	cfg := small(filepath.Join(t.TempDir(), "seed.db"))
	cfg.Words = "shakespeare"
	if _, err := seed.Write(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "words") {
		t.Errorf("words shakespeare: %v", err)
	}
}
