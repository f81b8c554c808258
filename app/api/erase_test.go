package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/api"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
)

func deleteMe(t *testing.T, s *servertest.Server, u servertest.User, password any) servertest.Response {
	t.Helper()
	return s.Do(t, http.MethodDelete, "/api/users/me/", u.Access, map[string]any{"password": password})
}

// A deleted account's messages stay in the conversations as tombstones of
// "Deleted user", for the others in every way they read them (pages,
// conversation lists, sync and live events), and the account is gone.
func TestDeleteAccount_OthersSeeDeletedUser(t *testing.T) {
	s := servertest.Start(t)
	gone, b, c := s.Register(t, "leaver"), s.Register(t, "stayer"), s.Register(t, "third")
	direct := s.Conversation(t, gone, b)
	group := s.Conversation(t, b, gone, c)
	kept := s.Send(t, b, direct, "from b")
	photo := s.Upload(t, gone, "photo.png", pngImage(t, 20, 10))
	withPhoto := s.SendAttached(t, gone, group, "look", photo)
	wantStatus(t, s.Do(t, http.MethodPut, p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D/", withPhoto), b.Access, nil), http.StatusOK)
	wantStatus(t, s.Do(t, http.MethodPut, p("/api/messages/%d/reactions/%%F0%%9F%%91%%8D/", kept), gone.Access, nil), http.StatusOK)
	last := s.Send(t, gone, direct, "my secret last word")
	wantStatus(t, s.Do(t, http.MethodPost, "/api/devices/", gone.Access, map[string]string{"platform": "fcm", "token": "leaver-phone"}), http.StatusCreated)
	cursor := s.Do(t, http.MethodGet, "/api/sync/", b.Access, nil).Map(t)["cursor"].(string)
	groupEvents, directEvents := listen(t, s, hub.ConversationTopic(group)), listen(t, s, hub.ConversationTopic(direct))

	wantStatus(t, deleteMe(t, s, gone, servertest.Password), http.StatusNoContent)

	// The account: no token, no login, no search finds it.
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", gone.Access, nil), http.StatusUnauthorized, "token_not_valid")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": gone.Refresh}),
		http.StatusUnauthorized, "token_not_valid")
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": "leaver", "password": servertest.Password}),
		http.StatusUnauthorized)
	for _, q := range []string{"leaver", "deleted"} {
		if res := s.Do(t, http.MethodGet, "/api/users/?search="+q, b.Access, nil).Map(t)["results"].([]any); len(res) != 0 {
			t.Errorf("search %q finds %v", q, res)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM devices WHERE user_id = ?`, gone.ID); n != 0 {
		t.Errorf("%d devices left", n)
	}
	if n := count(t, s, `SELECT count(*) FROM refresh_tokens WHERE user_id = ?`, gone.ID); n != 0 {
		t.Errorf("%d refresh tokens left", n)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ? AND (content <> '' OR deleted_at IS NULL)`, gone.ID); n != 0 {
		t.Errorf("%d messages of the deleted account keep their content", n)
	}
	if n := count(t, s, `SELECT count(*) FROM uploads WHERE owner_id = ?`, gone.ID); n != 0 {
		t.Errorf("%d uploads of the deleted account left", n)
	}

	wantTombstone := func(what string, m map[string]any) {
		t.Helper()
		sender, _ := m["sender"].(map[string]any)
		if num(sender["id"]) != gone.ID || sender["username"] != chat.DeletedName || sender["display_name"] != chat.DeletedName ||
			m["is_deleted"] != true || m["content"] != "" || len(m["attachments"].([]any)) != 0 || len(m["reactions"].([]any)) != 0 {
			t.Errorf("%s: %v, want a tombstone of %q", what, m, chat.DeletedName)
		}
	}
	// Pages: both conversations stay, with the tombstones in place.
	list := s.Do(t, http.MethodGet, "/api/conversations/", b.Access, nil).Map(t)["results"].([]any)
	if got := ids(list); len(got) != 2 || !slices.Contains(got, direct) || !slices.Contains(got, group) {
		t.Fatalf("b's conversations %v, want %d and %d", got, direct, group)
	}
	for _, cv := range list {
		cm := cv.(map[string]any)
		if num(cm["id"]) == direct {
			wantTombstone("direct's last message", cm["last_message"].(map[string]any))
		}
		for _, pt := range cm["participants"].([]any) {
			if num(pt.(map[string]any)["user"].(map[string]any)["id"]) == gone.ID {
				t.Errorf("conversation %v still lists the deleted user", cm["id"])
			}
		}
	}
	for conv, gones := range map[int64][]int64{direct: {last}, group: {withPhoto}} {
		msgs := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), b.Access, nil).Map(t)["results"].([]any)
		for _, mm := range msgs {
			m := mm.(map[string]any)
			if slices.Contains(gones, num(m["id"])) {
				wantTombstone(p("message %v", m["id"]), m)
			} else if m["is_deleted"] == true {
				t.Errorf("another's message deleted: %v", m)
			}
		}
	}
	// b's reaction to the tombstone went with it; the deleted user's on
	// b's message stays, as a count.
	for _, mm := range s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", direct), b.Access, nil).Map(t)["results"].([]any) {
		if m := mm.(map[string]any); num(m["id"]) == kept && len(m["reactions"].([]any)) != 1 {
			t.Errorf("b's message lost the reaction: %v", m["reactions"])
		}
	}

	// Sync: every tombstone, and both conversations (a member fewer).
	m := s.Do(t, http.MethodGet, "/api/sync/?since="+url.QueryEscape(cursor), b.Access, nil).Map(t)
	synced := map[int64]map[string]any{}
	for _, mm := range m["messages"].([]any) {
		synced[num(mm.(map[string]any)["id"])] = mm.(map[string]any)
	}
	for _, id := range []int64{last, withPhoto} {
		if synced[id] == nil {
			t.Errorf("sync has no tombstone of message %d: %v", id, m["messages"])
			continue
		}
		wantTombstone(p("synced %d", id), synced[id])
	}
	if got := ids(m["conversations"].([]any)); len(got) != 2 {
		t.Errorf("sync's conversations %v, want both", got)
	}

	// Live: a message_deleted for each, as any deletion (through the
	// broker, on several nodes: a moment later).
	deleted := map[int64]bool{}
	for end := time.Now().Add(5 * time.Second); len(deleted) < 2 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		clear(deleted)
		for _, ev := range append(groupEvents.ofType(chat.EventMessageDeleted), directEvents.ofType(chat.EventMessageDeleted)...) {
			var f struct{ Message map[string]any }
			if err := json.Unmarshal(ev.Data, &f); err != nil {
				t.Fatal(err)
			}
			wantTombstone("message_deleted", f.Message)
			deleted[num(f.Message["id"])] = true
		}
	}
	if !deleted[last] || !deleted[withPhoto] || len(deleted) != 2 {
		t.Errorf("message_deleted for %v, want %d and %d", deleted, last, withPhoto)
	}
	// A conversation with a deleted user cannot be started again, nor
	// can they be added anywhere.
	r := s.Do(t, http.MethodPost, "/api/conversations/", b.Access, map[string]any{"participant_ids": []int64{gone.ID}})
	wantError(t, r, http.StatusBadRequest, "invalid")
	// The conversations go on.
	s.Send(t, b, group, "still here")
	s.Send(t, b, direct, "talking to myself")
}

// The password is asked again: without it, or with a wrong one, nothing
// changes.
func TestDeleteAccount_PasswordRequired(t *testing.T) {
	s := servertest.Start(t)
	u, other := s.Register(t, "careful"), s.Register(t, "friend")
	conv := s.Conversation(t, u, other)
	s.Send(t, u, conv, "still mine")

	wantError(t, s.Do(t, http.MethodDelete, "/api/users/me/", u.Access, nil), http.StatusBadRequest, "invalid")
	e := wantError(t, s.Do(t, http.MethodDelete, "/api/users/me/", u.Access, map[string]any{}), http.StatusBadRequest, "invalid")
	if fields, _ := e["fields"].(map[string]any); fields["password"] == nil {
		t.Errorf("missing password: %v, want fields.password", e)
	}
	wantError(t, deleteMe(t, s, u, ""), http.StatusBadRequest, "invalid")
	wantError(t, deleteMe(t, s, u, 12345678), http.StatusBadRequest, "invalid")
	wantError(t, deleteMe(t, s, u, "not my password"), http.StatusForbidden, "forbidden")
	// Another's password is no better.
	wantError(t, s.Do(t, http.MethodDelete, "/api/users/me/", "", map[string]any{"password": servertest.Password}),
		http.StatusUnauthorized, "not_authenticated")

	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusOK)
	msgs := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), other.Access, nil).Map(t)["results"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["content"] != "still mine" {
		t.Errorf("messages after refused deletions: %v", msgs)
	}
	// Wrong passwords count as failed logins: past the limit, 429.
	limited := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.LoginAttemptsPerMinute = 2 }))
	v := limited.Register(t, "guessed")
	for range 2 {
		wantError(t, deleteMe(t, limited, v, "guess guess"), http.StatusForbidden, "forbidden")
	}
	r := deleteMe(t, limited, v, servertest.Password)
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// The username of a deleted account is reserved for
// DELETED_USERNAME_RESERVED_FOR, whatever its case, then free.
func TestDeleteAccount_UsernameReserved(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now), servertest.WithConfig(func(c *config.Config) {
		c.DeletedUsernameReservedFor = 48 * time.Hour
	}))
	u := s.Register(t, "Famous.One")
	wantStatus(t, deleteMe(t, s, u, servertest.Password), http.StatusNoContent)
	for _, name := range []string{u.Username, strings.ToLower(u.Username), strings.ToUpper(u.Username)} {
		r := s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": name, "password": servertest.Password})
		e := wantError(t, r, http.StatusBadRequest, "invalid")
		f, _ := e["fields"].(map[string]any)
		if msg, _ := f["username"].([]any); len(msg) == 0 || !strings.Contains(msg[0].(string), "deleted account") {
			t.Errorf("register %q: %v, want a username error about a deleted account", name, e)
		}
	}
	clk.Advance(47 * time.Hour)
	wantError(t, s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": strings.ToLower(u.Username), "password": servertest.Password}),
		http.StatusBadRequest, "invalid")
	clk.Advance(time.Hour)
	r := s.Do(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": strings.ToLower(u.Username), "password": servertest.Password})
	wantStatus(t, r, http.StatusCreated)
	if id := num(r.Map(t)["user"].(map[string]any)["id"]); id == u.ID {
		t.Errorf("the new account took the deleted one's id %d", id)
	}
}

// A send racing the deletion is either refused or erased: no message of
// the account keeps its text once the deletion is answered.
func TestDeleteAccount_ConcurrentSendLeavesNoText(t *testing.T) {
	s := servertest.Start(t)
	u, other := s.Register(t, "busy"), s.Register(t, "listener")
	conv := s.Conversation(t, u, other)
	for i := range 20 {
		s.Send(t, u, conv, "before "+strconv.Itoa(i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Request(http.MethodPost, p("/api/conversations/%d/messages/", conv), u.Access,
					map[string]string{"content": p("racing %d-%d", w, i)})
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	r := deleteMe(t, s, u, servertest.Password)
	close(stop)
	wg.Wait()
	wantStatus(t, r, http.StatusNoContent)
	if n := count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ? AND (content <> '' OR deleted_at IS NULL)`, u.ID); n != 0 {
		t.Errorf("%d messages of the deleted account keep their text", n)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ?`, u.ID); n < 20 {
		t.Errorf("%d tombstones, want at least the 20 sent before", n)
	}
}

type exportFile struct {
	Format        string
	ExportedAt    string `json:"exported_at"`
	User          map[string]any
	Conversations []struct {
		ID           int64
		Title        string
		IsGroup      bool `json:"is_group"`
		Participants []struct {
			ID       int64
			Username string
			Role     string
		}
	}
	Devices []struct {
		ID       int64
		Platform string
	}
	Blocks   []map[string]any
	Reports  []map[string]any
	Messages []struct {
		ID             int64
		ConversationID int64 `json:"conversation_id"`
		Content        string
		IsDeleted      bool    `json:"is_deleted"`
		ReplyToID      *int64  `json:"reply_to_id"`
		Mentions       []int64 `json:"mentions"`
		Attachments    []struct {
			ID   int64
			Name string
			MIME string
			Size int64
		}
	}
}

// The export is one JSON file, downloaded, with everything about the
// caller and nothing about anyone else's words; a few per hour.
func TestExport_ContentAndRateLimit(t *testing.T) {
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	u, b, c := s.Register(t, "exporter"), s.Register(t, "bee"), s.Register(t, "sea")
	direct := s.Conversation(t, u, b)
	group := s.Conversation(t, c, u, b)
	wantStatus(t, s.Do(t, http.MethodPatch, p("/api/conversations/%d/", group), c.Access, map[string]string{"title": "Plans"}), http.StatusOK)
	first := s.Send(t, u, direct, "hello @"+b.Username)
	s.Send(t, b, direct, "not mine")
	photo := s.Upload(t, u, "photo.png", pngImage(t, 20, 10))
	withPhoto := s.SendAttached(t, u, group, "", photo)
	gone := s.Send(t, u, group, "regretted")
	wantStatus(t, s.Do(t, http.MethodDelete, p("/api/messages/%d/", gone), u.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodPost, "/api/devices/", u.Access, map[string]string{"platform": "apns", "token": "secret-token"}), http.StatusCreated)
	wantStatus(t, s.Do(t, http.MethodPost, "/api/reports/", u.Access, map[string]any{"user_id": b.ID, "reason": "spam", "note": "ads"}), http.StatusCreated)
	wantStatus(t, s.Do(t, http.MethodPut, p("/api/users/%d/block/", c.ID), u.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodPut, p("/api/users/%d/block/", u.ID), b.Access, nil), http.StatusNoContent)
	wantStatus(t, s.Do(t, http.MethodPost, "/api/reports/", b.Access, map[string]any{"user_id": u.ID, "reason": "abuse"}), http.StatusCreated)

	r := s.Do(t, http.MethodGet, "/api/users/me/export/", u.Access, nil)
	wantStatus(t, r, http.StatusOK)
	if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename="confab-`+u.Username+`-2026-03-01.json"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if strings.Contains(string(r.Body), "secret-token") || strings.Contains(string(r.Body), "not mine") {
		t.Errorf("the export holds a device token or another's words: %s", r.Body)
	}
	var f exportFile
	r.JSON(t, &f)
	if f.Format != "confab-export-1" || num(f.User["id"]) != u.ID || f.User["username"] != u.Username || f.ExportedAt != "2026-03-01T12:00:00.000Z" {
		t.Errorf("head: %q %v %q", f.Format, f.User, f.ExportedAt)
	}
	if len(f.Conversations) != 2 {
		t.Fatalf("conversations %+v, want 2", f.Conversations)
	}
	for _, cv := range f.Conversations {
		var names []string
		for _, pt := range cv.Participants {
			names = append(names, pt.Username)
		}
		slices.Sort(names)
		switch cv.ID {
		case direct:
			if want := sorted(u.Username, b.Username); cv.IsGroup || !slices.Equal(names, want) {
				t.Errorf("direct: %+v", cv)
			}
		case group:
			if want := sorted(u.Username, b.Username, c.Username); !cv.IsGroup || cv.Title != "Plans" || !slices.Equal(names, want) {
				t.Errorf("group: %+v", cv)
			}
		default:
			t.Errorf("conversation %d", cv.ID)
		}
	}
	if len(f.Devices) != 1 || f.Devices[0].Platform != "apns" {
		t.Errorf("devices %+v", f.Devices)
	}
	// The users they block and the reports they made, not those who
	// block them or report them.
	if len(f.Blocks) != 1 || num(f.Blocks[0]["id"]) != c.ID {
		t.Errorf("blocks %+v, want sea", f.Blocks)
	}
	if len(f.Reports) != 1 || num(f.Reports[0]["user_id"]) != b.ID || f.Reports[0]["reason"] != "spam" || f.Reports[0]["note"] != "ads" {
		t.Errorf("reports %+v, want the one of bee", f.Reports)
	}
	if len(f.Messages) != 3 {
		t.Fatalf("messages %+v, want 3", f.Messages)
	}
	if m := f.Messages[0]; m.ID != first || m.Content != "hello @"+b.Username || m.ConversationID != direct || !slices.Equal(m.Mentions, []int64{b.ID}) {
		t.Errorf("first message %+v", m)
	}
	if m := f.Messages[1]; m.ID != withPhoto || len(m.Attachments) != 1 || m.Attachments[0].ID != photo || m.Attachments[0].MIME != "image/png" {
		t.Errorf("message with a photo %+v", m)
	}
	if m := f.Messages[2]; m.ID != gone || !m.IsDeleted || m.Content != "" {
		t.Errorf("deleted message %+v", m)
	}

	// Three an hour: the fourth is refused, with when to come back.
	for range api.ExportsPerHour - 1 {
		wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/export/", u.Access, nil), http.StatusOK)
	}
	r = s.Do(t, http.MethodGet, "/api/users/me/export/", u.Access, nil)
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// Per user: another still may.
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/export/", b.Access, nil), http.StatusOK)
	clk.Advance(time.Hour)
	var fresh struct{ Access string }
	s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password}).JSON(t, &fresh)
	wantStatus(t, s.Do(t, http.MethodGet, "/api/users/me/export/", fresh.Access, nil), http.StatusOK)
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// seedMessages stores n messages of from in conv straight into the
// server's SQLite file, as `confab bench seed` does, with the search
// index rebuilt and the push mark past them.
func seedMessages(t *testing.T, s *servertest.Server, from servertest.User, conv int64, n int) {
	t.Helper()
	db := s.DB(t)
	for _, q := range []string{
		`WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < ?)
		 INSERT INTO messages (conversation_id, seq, sender_id, content, created_at, version, created_version)
		 SELECT ?, (SELECT last_seq FROM conversations WHERE id = ?) + n, ?, 'seeded secret ' || n, 1772366400000, 0, 0 FROM i`,
		`UPDATE conversations SET last_seq = (SELECT max(seq) FROM messages WHERE conversation_id = ?),
		 last_message_id = (SELECT max(id) FROM messages WHERE conversation_id = ?) WHERE id = ?`,
		`INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`,
		`UPDATE search_indexed SET id = (SELECT max(id) FROM messages)`,
		`UPDATE push_mark SET id = (SELECT max(id) FROM messages)`,
	} {
		var args []any
		switch {
		case strings.Contains(q, "RECURSIVE"):
			args = []any{n, conv, conv, from.ID}
		case strings.HasPrefix(q, "UPDATE conversations"):
			args = []any{conv, conv, conv}
		}
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

// An account of 100,000 messages is deleted within the request's
// deadline; what does not fit in it is erased in the background, and
// the other participant ends up with tombstones only.
func TestDeleteAccount_HundredThousandMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 messages")
	}
	// The production deadline: what does not fit in it is left to the
	// eraser.
	s := servertest.Start(t, servertest.OnSQLite(), func(_ *config.Config, o *server.Options) { o.RequestTimeout = api.RequestTimeout })
	u, other := s.Register(t, "prolific"), s.Register(t, "reader")
	conv := s.Conversation(t, u, other)
	n := 100_000
	if raceDetector {
		// The same paths (batches in the request, the rest in the
		// background), at a size the instrumented SQLite seeds and reads
		// in reasonable time.
		n = 20_000
	}
	seedMessages(t, s, u, conv, n)
	if got := count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ? AND deleted_at IS NULL`, u.ID); got != n {
		t.Fatalf("seeded %d", got)
	}

	start := time.Now()
	wantStatus(t, deleteMe(t, s, u, servertest.Password), http.StatusNoContent)
	t.Logf("answered in %v, %d messages left to the eraser", time.Since(start),
		count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ? AND deleted_at IS NULL`, u.ID))
	wantError(t, s.Do(t, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusUnauthorized, "token_not_valid")
	for end := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if count(t, s, `SELECT count(*) FROM users WHERE id = ? AND erased_at IS NOT NULL`, u.ID) == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d messages still not erased; log:\n%s", count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ? AND deleted_at IS NULL`, u.ID), s.Logs.String())
		}
	}
	if got := count(t, s, `SELECT count(*) FROM messages WHERE sender_id = ? AND (content <> '' OR deleted_at IS NULL)`, u.ID); got != 0 {
		t.Errorf("%d messages keep their text", got)
	}
	page := s.Do(t, http.MethodGet, p("/api/conversations/%d/messages/", conv), other.Access, nil).Map(t)["results"].([]any)
	for _, mm := range page {
		if m := mm.(map[string]any); m["is_deleted"] != true || m["sender"].(map[string]any)["username"] != chat.DeletedName {
			t.Fatalf("the reader sees %v", m)
		}
	}
	if res := s.Do(t, http.MethodGet, "/api/search/messages/?q=seeded", other.Access, nil).Map(t)["results"].([]any); len(res) != 0 {
		t.Errorf("search still finds %d erased messages", len(res))
	}
}
