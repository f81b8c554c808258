package systemtest

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/bench/seed"
)

// The big-group test seeds a group of 10,000 members (registering them
// over the API would take minutes) on a real server process and checks
// that it works as a small one does: members join and leave, a send
// reaches the members online, history and participant pages read, and a
// send is one commit of the same few row writes as in a conversation of
// two, whatever the number of members. Row writes are counted by
// triggers the test adds to the file; commits by the commit frames the
// server appends to the WAL.

// rowWrites are the triggers that count every row written to the tables
// a send could touch, into row_writes.
const rowWrites = `
CREATE TABLE row_writes (tbl TEXT NOT NULL, op TEXT NOT NULL);
`

func rowWriteTriggers() string {
	var b strings.Builder
	b.WriteString(rowWrites)
	for _, tbl := range []string{"users", "conversations", "participants", "messages", "refresh_tokens", "settings"} {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			fmt.Fprintf(&b, "CREATE TRIGGER count_%s_%s AFTER %s ON %s BEGIN INSERT INTO row_writes VALUES ('%s', '%s'); END;\n",
				tbl, strings.ToLower(op), op, tbl, tbl, strings.ToLower(op))
		}
	}
	return b.String()
}

// walCommits counts the commit frames of the current generation of
// path's WAL: each commit the server made since the WAL last restarted.
func walCommits(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 {
		return 0
	}
	pageSize := int(binary.BigEndian.Uint32(b[8:12]))
	salt := b[16:24]
	n := 0
	for off := 32; off+24+pageSize <= len(b); off += 24 + pageSize {
		h := b[off : off+24]
		if string(h[8:16]) != string(salt) {
			break // a frame of an earlier generation: the end of this one
		}
		if binary.BigEndian.Uint32(h[4:8]) != 0 {
			n++
		}
	}
	return n
}

// sendCost sends one message as token into conv and returns the commits
// and the row writes (by "table op") that sending it took. The search
// index follows the send in a commit of its own (db/searchindex.go): it
// is waited for, so that it lands in no other send's count, and left out.
func sendCost(t *testing.T, d *sql.DB, dbPath string, p *Proc, token string, conv int64) (commits int, writes map[string]int, msgID int64) {
	t.Helper()
	if _, err := d.Exec(`DELETE FROM row_writes`); err != nil {
		t.Fatal(err)
	}
	before := walCommits(t, dbPath)
	id, err := Send(p.URL+"/api/conversations/"+strconv.FormatInt(conv, 10)+"/messages/", token, "to everyone")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// The search index and the push dispatcher follow the messages
		// each in a commit of its own, off the send path.
		var mark, pushMark int64
		if err := d.QueryRow(`SELECT (SELECT id FROM search_indexed), (SELECT id FROM push_mark)`).Scan(&mark, &pushMark); err != nil {
			t.Fatal(err)
		}
		if mark >= id && pushMark >= id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d not indexed and decided after 10 s (marks %d, %d)", id, mark, pushMark)
		}
	}
	commits = walCommits(t, dbPath) - before - 2 // the index's and the dispatcher's
	rows, err := d.Query(`SELECT tbl || ' ' || op, count(*) FROM row_writes GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	writes = map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		writes[k] = n
	}
	return commits, writes, id
}

func login(t *testing.T, p *Proc, n int) string {
	t.Helper()
	code, m := p.Call(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": seed.Username(n), "password": seed.Password})
	if code != http.StatusOK {
		t.Fatalf("log in as %s: %d %v", seed.Username(n), code, m)
	}
	return m["access"].(string)
}

func TestBigGroup_TenThousandMembers(t *testing.T) {
	bin := BuildBinary(t, "biggroup")
	const (
		members = 10000
		seeded  = members - 2 // two more join over the API
		convs   = 10          // a few ordinary conversations beside it
	)
	dbPath := filepath.Join(t.TempDir(), "big.db")
	if _, err := seed.Write(context.Background(), seed.Config{Path: dbPath, Users: members + 10, Conversations: convs,
		Messages: 200, Seed: 1, BigGroup: seeded, PasswordCost: 4}); err != nil {
		t.Fatal(err)
	}
	group := int64(convs + 1) // the big group comes after the others
	d, err := sql.Open("sqlite", "file:"+(&url.URL{Path: dbPath}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(rowWriteTriggers()); err != nil {
		t.Fatal(err)
	}
	// A direct conversation of seed_1, for the cost of a send among two.
	var direct int64
	if err := d.QueryRow(`SELECT c.id FROM conversations c JOIN participants p ON p.conversation_id = c.id AND p.user_id = 1
		WHERE NOT c.is_group LIMIT 1`).Scan(&direct); err != nil {
		t.Fatalf("seed_1's direct conversation: %v", err)
	}

	p := Start(t, bin, []string{"DATABASE_PATH=" + dbPath, "LOG_LEVEL=warn"})
	admin := login(t, p, 1) // the big group's creator, its admin
	conv := "/api/conversations/" + strconv.FormatInt(group, 10)

	memberCount := func() float64 {
		t.Helper()
		code, m := p.Call(t, http.MethodGet, conv+"/", admin, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s/: %d %v", conv, code, m)
		}
		return m["member_count"].(float64)
	}
	if got := memberCount(); got != seeded {
		t.Fatalf("member_count %v, want %d", got, seeded)
	}

	// Members join: the admin adds the last two.
	for _, u := range []int{members - 1, members} {
		if code, m := p.Call(t, http.MethodPost, conv+"/participants/", admin, map[string]int{"user_id": u}); code != http.StatusCreated {
			t.Fatalf("add %s: %d %v", seed.Username(u), code, m)
		}
	}
	if got := memberCount(); got != members {
		t.Fatalf("member_count %v after two joined, want %d", got, members)
	}

	// A few members online, joined to the group: one seeded, one who
	// just joined, and the admin.
	type socket struct {
		user int
		c    *websocket.Conn
	}
	var online []socket
	for _, u := range []int{2, members, 1} {
		token := admin
		if u != 1 {
			token = login(t, p, u)
		}
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws/conversations/"+strconv.FormatInt(group, 10)+"/?token="+token, nil)
		if err != nil {
			t.Fatalf("%s: dial: %v", seed.Username(u), err)
		}
		defer c.Close()
		for _, want := range []string{"connection_established", "joined"} {
			if f := nextFrame(t, c, want); f == nil {
				t.Fatalf("%s: no %s", seed.Username(u), want)
			}
		}
		online = append(online, socket{u, c})
	}

	// Every login, join and dial has committed: from here on, only the
	// sends write.
	bigCommits, bigWrites, msgID := sendCost(t, d, dbPath, p, admin, group)
	smallCommits, smallWrites, _ := sendCost(t, d, dbPath, p, admin, direct)
	t.Logf("a send to %d members: %d commit(s), row writes %v; to 2: %d, %v", members, bigCommits, bigWrites, smallCommits, smallWrites)
	want := map[string]int{"messages insert": 1, "conversations update": 1, "participants update": 1}
	if bigCommits != 1 || fmt.Sprint(bigWrites) != fmt.Sprint(want) {
		t.Errorf("a send to %d members: %d commits, row writes %v; want 1 commit, %v", members, bigCommits, bigWrites, want)
	}
	if smallCommits != bigCommits || fmt.Sprint(smallWrites) != fmt.Sprint(bigWrites) {
		t.Errorf("a send to 2 members: %d commits, %v; a send to %d: %d, %v; want the same", smallCommits, smallWrites, members, bigCommits, bigWrites)
	}

	// One fan-out reaches every member online.
	for _, s := range online {
		f := nextFrame(t, s.c, "new_message")
		if f == nil {
			t.Fatalf("%s got no new_message", seed.Username(s.user))
		}
		if id := f["message"].(map[string]any)["id"].(float64); int64(id) != msgID {
			t.Errorf("%s got message %v, want %d", seed.Username(s.user), id, msgID)
		}
	}

	// History reads, the new message last.
	code, h := p.Call(t, http.MethodGet, conv+"/messages/?limit=50", admin, nil)
	if code != http.StatusOK {
		t.Fatalf("history: %d %v", code, h)
	}
	res := h["results"].([]any)
	if last := res[len(res)-1].(map[string]any); int64(last["id"].(float64)) != msgID {
		t.Errorf("history ends with %v, want message %d", last["id"], msgID)
	}

	// Participant pages: every member once.
	seen := map[int64]bool{}
	cursor := ""
	for page := 0; page < 200; page++ {
		path := conv + "/participants/?limit=100"
		if cursor != "" {
			path += "&after=" + url.QueryEscape(cursor)
		}
		code, m := p.Call(t, http.MethodGet, path, admin, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, code, m)
		}
		for _, r := range m["results"].([]any) {
			id := int64(r.(map[string]any)["user"].(map[string]any)["id"].(float64))
			if seen[id] {
				t.Fatalf("participant %d listed twice", id)
			}
			seen[id] = true
		}
		next, _ := m["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != members {
		t.Errorf("%d distinct participants listed, want %d", len(seen), members)
	}

	// One member leaves.
	leaver := 500
	if code, m := p.Call(t, http.MethodDelete, conv+"/participants/"+strconv.Itoa(leaver)+"/", login(t, p, leaver), nil); code != http.StatusNoContent {
		t.Fatalf("%s leaves: %d %v", seed.Username(leaver), code, m)
	}
	if got := memberCount(); got != members-1 {
		t.Errorf("member_count %v after one left, want %d", got, members-1)
	}
}

// nextFrame reads frames from c until one of type typ, within 5 s; nil
// when none came.
func nextFrame(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		var f map[string]any
		if err := c.ReadJSON(&f); err != nil {
			t.Logf("waiting for %s: %v", typ, err)
			return nil
		}
		if f["type"] == typ {
			return f
		}
	}
}
