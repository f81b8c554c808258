package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/app/systemtest"
	"github.com/confab/confab/db"
	"github.com/confab/confab/db/postgres/pgtest"
)

// runCLI runs the command line in-process with env as the whole
// environment and stdin as standard input.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, Env{Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestCLI_HelpOnEveryCommand(t *testing.T) {
	for _, cmd := range commands() {
		t.Run(cmd.name, func(t *testing.T) {
			for _, args := range [][]string{{cmd.name, "--help"}, {cmd.name, "-h"}, {"help", cmd.name}} {
				code, out, errOut := runCLI(t, nil, "", args...)
				if code != exitOK || !strings.HasPrefix(out, "Usage: confab "+cmd.name) {
					t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
				}
			}
		})
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		if code, out, _ := runCLI(t, nil, "", args...); code != exitOK || !strings.HasPrefix(out, "confab ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	code, out, _ := runCLI(t, nil, "", "--help")
	if code != exitOK || !strings.Contains(out, "createuser") || !strings.Contains(out, "healthcheck") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

func TestCLI_UsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		says string
	}{
		{[]string{"frobnicate"}, exitConfig, `unknown command "frobnicate"`},
		{[]string{"serve", "--no-such-flag"}, exitConfig, "flag provided but not defined"},
		{[]string{"migrate"}, exitConfig, "want exactly one of up, down or status"},
		{[]string{"migrate", "sideways"}, exitConfig, `unknown direction "sideways"`},
		{[]string{"migrate", "down"}, exitConfig, "--yes"},
		{[]string{"backup"}, exitConfig, "want exactly one PATH"},
		{[]string{"createuser"}, exitConfig, "--username is required"},
		// The password is never an argument.
		{[]string{"createuser", "--username", "eve", "--password", "hunter2hunter2"}, exitConfig, "flag provided but not defined: -password"},
		{[]string{"staff"}, exitConfig, "want grant|revoke USERNAME"},
		{[]string{"staff", "promote", "alice"}, exitConfig, "want grant|revoke USERNAME"},
		// healthcheck never exits 2: Docker reserves it.
		{[]string{"healthcheck", "--bogus"}, exitFail, "flag provided but not defined"},
	} {
		code, _, errOut := runCLI(t, map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "x.db")}, "", tc.args...)
		if code != tc.want || !strings.Contains(errOut, tc.says) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.want, errOut, tc.says)
		}
	}
}

func TestServe_BadSettingExits2NamingIt(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"METRICS_TOKEN", "short"},
		{"METRICS_TOKEN", "has a space in it, so no"},
		{"PORT", "eighty"},
		{"SHUTDOWN_TIMEOUT", "soon"},
	} {
		code, _, errOut := runCLI(t, map[string]string{tc.name: tc.value}, "", "serve")
		if code != exitConfig || !strings.Contains(errOut, tc.name) {
			t.Errorf("%s=%q: exit %d, stderr %q", tc.name, tc.value, code, errOut)
		}
		if tc.name == "METRICS_TOKEN" && strings.Contains(errOut, tc.value) {
			t.Errorf("the token's value was printed: %q", errOut)
		}
	}
	// Flags without a command are serve's, and pass through the same checks.
	if code, _, errOut := runCLI(t, nil, "", "-port", "eighty"); code != exitConfig || !strings.Contains(errOut, "PORT") {
		t.Errorf("-port eighty: exit %d, %q", code, errOut)
	}
}

func TestVersion_PrintsBuildInfo(t *testing.T) {
	code, out, _ := runCLI(t, nil, "", "version")
	if code != exitOK || !strings.HasPrefix(out, "confab ") || !strings.Contains(out, "revision ") || !strings.Contains(out, "go1.") {
		t.Errorf("exit %d, %q", code, out)
	}
}

// acks records the ids of acknowledged messages, in the order of their
// acks, for writers on many goroutines.
type acks struct {
	mu  sync.Mutex
	ids []int64
}

func (a *acks) add(id int64) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
}

func (a *acks) snapshot() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.ids...)
}

func TestBackup_WhileEightWritersSend(t *testing.T) {
	srv := servertest.Start(t, servertest.OnSQLite())
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := srv.Conversation(t, alice, bob)

	// A few megabytes of history, so that the copy takes long enough for
	// the writers to commit while it runs.
	filler := strings.Repeat("x", 1000)
	for range 20 {
		batch := make([]chat.NewMessage, chat.MaxBatch)
		for i := range batch {
			batch[i] = chat.NewMessage{ConversationID: conv, Sender: chat.UserLite{ID: alice.ID, Username: alice.Username},
				Content: filler, At: time.Now()}
		}
		if _, err := srv.Store.InsertMessages(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	prefillMax := srv.Send(t, alice, conv, "last of the history")

	var (
		acked   acks
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
		sendURL = fmt.Sprintf("%s/api/conversations/%d/messages/", srv.URL, conv)
	)
	for w := range 8 {
		token := alice.Access
		if w%2 == 1 {
			token = bob.Access
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id, err := systemtest.Send(sendURL, token, fmt.Sprintf("writer %d message %d", w, i))
				if err != nil {
					errs <- err
					return
				}
				acked.add(id)
			}
		}()
	}
	// The writers are under way before the backup begins.
	for deadline := time.Now().Add(10 * time.Second); len(acked.snapshot()) < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writers acknowledged %d messages in 10 s", len(acked.snapshot()))
		}
	}

	dst := filepath.Join(t.TempDir(), "backup.db")
	before := acked.snapshot() // acknowledged before the backup began
	start := time.Now()
	code, out, errOut := runCLI(t, map[string]string{"DATABASE_PATH": srv.Config.DatabasePath}, "", "backup", dst)
	took := time.Since(start)
	during := len(acked.snapshot()) - len(before)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	if code != exitOK {
		t.Fatalf("backup: exit %d: %s %s", code, out, errOut)
	}
	t.Logf("backup took %v; %d messages acknowledged before it, %d while it ran", took, len(before), during)
	if len(before) == 0 || during == 0 {
		t.Fatalf("the writers were not sending around the backup (%d before, %d during)", len(before), during)
	}

	// The copy opens, is intact, and holds every message acknowledged
	// before it began.
	copyDB, err := db.OpenNoMigrate(dst)
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := copyDB.DB().QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q %v", integrity, err)
	}
	inCopy := map[int64]bool{}
	rows, err := copyDB.DB().Query(`SELECT id FROM messages WHERE id > ?`, prefillMax)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		inCopy[id] = true
	}
	rows.Close()
	copyDB.Close()
	for _, id := range before {
		if !inCopy[id] {
			t.Fatalf("message %d was acknowledged before the backup began but is not in it", id)
		}
	}

	// A server started on the copy serves them (with the same secret, so
	// the same tokens).
	restored := servertest.Start(t, servertest.OnSQLite(), servertest.WithConfig(func(c *config.Config) { c.DatabasePath = dst }))
	served := map[int64]bool{}
	for after := prefillMax; ; {
		resp := restored.Do(t, http.MethodGet, fmt.Sprintf("/api/conversations/%d/messages/?after=%d&limit=100", conv, after), bob.Access, nil)
		var page struct {
			Results []struct{ ID int64 }
			HasMore bool `json:"has_more"`
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("history from the restored server: %d %s", resp.Status, resp.Body)
		}
		resp.JSON(t, &page)
		for _, m := range page.Results {
			served[m.ID] = true
			after = m.ID
		}
		if !page.HasMore {
			break
		}
	}
	for _, id := range before {
		if !served[id] {
			t.Fatalf("the restored server does not serve message %d", id)
		}
	}
}

func TestBackup_RefusesAnExistingPath(t *testing.T) {
	srv := servertest.Start(t, servertest.OnSQLite())
	dst := filepath.Join(t.TempDir(), "taken.db")
	os.WriteFile(dst, []byte("precious"), 0o600)
	code, _, errOut := runCLI(t, map[string]string{"DATABASE_PATH": srv.Config.DatabasePath}, "", "backup", dst)
	if code != exitFail || !strings.Contains(errOut, "already exists") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	if b, _ := os.ReadFile(dst); string(b) != "precious" {
		t.Fatal("the existing file was overwritten")
	}
	matches, _ := filepath.Glob(dst + ".partial-*")
	if len(matches) > 0 {
		t.Fatalf("left behind: %v", matches)
	}
}

func tables(t *testing.T, path string) []string {
	t.Helper()
	s, err := db.OpenNoMigrate(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The search index's tables (migration 00009) are left out: they
	// come and go with their migration, the tables of data do not.
	rows, err := s.DB().Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'goose_db_version'
		AND name NOT LIKE 'messages_fts%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

func TestMigrate_DownThenUpOnAPopulatedDatabase(t *testing.T) {
	srv := servertest.Start(t, servertest.OnSQLite())
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := srv.Conversation(t, alice, bob)
	srv.Send(t, alice, conv, "before the rollback")
	path := srv.Config.DatabasePath
	srv.Close()
	env := map[string]string{"DATABASE_PATH": path}
	schema := tables(t, path)
	if len(schema) < 6 {
		t.Fatalf("tables before: %v", schema)
	}

	status := func(wantState string) { t.Helper(); wantMigrations(t, env, wantState) }
	status("applied")

	// down without --yes changes nothing.
	if code, _, _ := runCLI(t, env, "", "migrate", "down"); code != exitConfig {
		t.Fatalf("down without --yes: exit %d", code)
	}
	if got := tables(t, path); len(got) != len(schema) {
		t.Fatalf("down without --yes dropped tables: %v", got)
	}

	// Each down rolls back one migration, the latest first, down to the
	// first one, which drops every table.
	// Versions need not be consecutive: a branch may take a number that
	// another one's migration fills in later.
	files := []struct {
		version int
		name    string
	}{{1, "00001_init.sql"}, {2, "00002_seq.sql"}, {3, "00003_display_key.sql"}, {4, "00004_reads.sql"}, {5, "00005_token_epoch.sql"},
		{6, "00006_replies_mentions.sql"}, {7, "00007_versions.sql"}, {8, "00008_reactions.sql"}, {9, "00009_search.sql"},
		{10, "00010_search_lean.sql"}, {11, "00011_attachments.sql"}, {12, "00012_devices.sql"}, {13, "00013_push.sql"},
		{14, "00014_webhooks.sql"}, {15, "00015_deliveries_done.sql"}, {16, "00016_blocks.sql"}, {17, "00017_moderation.sql"},
		{18, "00018_erase.sql"}}
	// The migrations after the first that create tables, by their place
	// in files (the search index's own FTS5 tables are not listed, see
	// tables).
	tableAddedBy := map[string]int{"feed_clock": 7, "departures": 7, "reactions": 8, "search_indexed": 9, "blobs": 11, "uploads": 11, "devices": 12, "push_mark": 13, "deliveries": 13,
		"webhook_events": 14, "blocks": 16, "reports": 17, "audit_log": 17}
	for v := len(files); v > 1; v-- {
		if code, out, errOut := runCLI(t, env, "", "migrate", "down", "--yes"); code != exitOK {
			t.Fatalf("down to %d: exit %d: %s%s", files[v-2].version, code, out, errOut)
		}
		code, out, _ := runCLI(t, env, "", "migrate", "status")
		for i, f := range files {
			state := "applied"
			if i+1 >= v {
				state = "pending"
			}
			if code != exitOK || !regexp.MustCompile(fmt.Sprintf(`(?m)^%d +%s .*%s$`, f.version, state, regexp.QuoteMeta(f.name))).MatchString(out) {
				t.Fatalf("status after the down to %d: want %s %s: exit %d:\n%s", files[v-2].version, f.name, state, code, out)
			}
		}
		var want []string // the schema's tables but those of the migrations undone
		for _, tb := range schema {
			if added := tableAddedBy[tb]; added == 0 || added < v {
				want = append(want, tb)
			}
		}
		if got := tables(t, path); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("tables after the down to %d: %v, want %v", v-1, got, want)
		}
	}
	if code, out, errOut := runCLI(t, env, "", "migrate", "down", "--yes"); code != exitOK {
		t.Fatalf("last down: exit %d: %s%s", code, out, errOut)
	}
	status("pending")
	if got := tables(t, path); len(got) != 0 {
		t.Fatalf("tables after down: %v", got)
	}

	if code, out, errOut := runCLI(t, env, "", "migrate", "up"); code != exitOK {
		t.Fatalf("up: exit %d: %s%s", code, out, errOut)
	}
	status("applied")
	if got := tables(t, path); strings.Join(got, ",") != strings.Join(schema, ",") {
		t.Fatalf("schema after up: %v, want %v", got, schema)
	}

	// The data went with the down (documented); the schema works again.
	again := servertest.Start(t, servertest.OnSQLite(), servertest.WithConfig(func(c *config.Config) { c.DatabasePath = path }))
	carol := again.Register(t, "carol")
	if resp := again.Do(t, http.MethodGet, "/api/users/me/", carol.Access, nil); resp.Status != http.StatusOK {
		t.Fatalf("after up: %d %s", resp.Status, resp.Body)
	}
}

// wantMigrations requires `confab migrate status` to list the first
// migration in state want ("applied" or "pending").
func wantMigrations(t *testing.T, env map[string]string, want string) {
	t.Helper()
	code, out, errOut := runCLI(t, env, "", "migrate", "status")
	if code != exitOK || !strings.Contains(out, "00001_init.sql") || !strings.Contains(out, " "+want+" ") {
		t.Fatalf("status: exit %d, want %s:\n%s%s", code, want, out, errOut)
	}
}

func TestMigrate_StatusOfAMissingDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	code, _, errOut := runCLI(t, map[string]string{"DATABASE_PATH": path}, "", "migrate", "status")
	if code != exitFail || !strings.Contains(errOut, "no database") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("status created a database")
	}
}

func TestCreateUser_PasswordFromStdin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "confab.db")
	env := map[string]string{"DATABASE_PATH": path}
	const password = "a long enough password"

	code, out, errOut := runCLI(t, env, password+"\n", "createuser", "--username", "carol", "--display-name", "Carol C")
	if code != exitOK || !strings.Contains(out, "created user carol") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		says        string
	}{
		{"taken", password, []string{"--username", "CAROL"}, "username"},
		{"short password", "short", []string{"--username", "dave"}, "password"},
		{"bad name", password, []string{"--username", "no spaces"}, "username"},
		{"no password", "", []string{"--username", "erin"}, "no password"},
	} {
		code, _, errOut := runCLI(t, env, tc.stdin, append([]string{"createuser"}, tc.args...)...)
		if code != exitFail || !strings.Contains(errOut, tc.says) {
			t.Errorf("%s: exit %d, %q", tc.name, code, errOut)
		}
	}

	// The account logs in on a server with the same rules; the login that
	// registering made is revoked.
	srv := servertest.Start(t, servertest.OnSQLite(), servertest.WithConfig(func(c *config.Config) { c.DatabasePath = path }))
	resp := srv.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": "carol", "password": password})
	if resp.Status != http.StatusOK || !strings.Contains(string(resp.Body), `"display_name":"Carol C"`) {
		t.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	var live int
	srv.DB(t).QueryRow(`SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL`).Scan(&live)
	if live != 1 { // the login just made
		t.Errorf("%d live refresh tokens, want 1", live)
	}
}

// TestStaff_CreateGrantRevoke: the first staff account comes from the
// command line; grants and revokes count at once on a running server
// (whose own cache of accounts never hides them), and the audit log
// keeps each, by the command line.
func TestStaff_CreateGrantRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "confab.db")
	env := map[string]string{"DATABASE_PATH": path}
	const password = "a long enough password"
	if code, out, errOut := runCLI(t, env, password+"\n", "createuser", "--username", "mod", "--staff"); code != exitOK || !strings.Contains(out, "created staff user mod") {
		t.Fatalf("createuser --staff: exit %d: %s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, env, password+"\n", "createuser", "--username", "bob"); code != exitOK {
		t.Fatalf("createuser: exit %d: %s%s", code, out, errOut)
	}
	srv := servertest.Start(t, servertest.OnSQLite(), servertest.WithConfig(func(c *config.Config) { c.DatabasePath = path }))
	login := func(name string) string {
		r := srv.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": name, "password": password})
		if r.Status != http.StatusOK {
			t.Fatalf("login %s: %d %s", name, r.Status, r.Body)
		}
		return r.Map(t)["access"].(string)
	}
	mod, bob := login("mod"), login("bob")
	isStaff := func(token string) (bool, int) {
		me := srv.Do(t, http.MethodGet, "/api/users/me/", token, nil).Map(t)
		return me["is_staff"] == true, srv.Do(t, http.MethodGet, "/api/admin/audit/", token, nil).Status
	}
	if staff, status := isStaff(mod); !staff || status != http.StatusOK {
		t.Errorf("mod: is_staff %v, audit log %d", staff, status)
	}
	if staff, status := isStaff(bob); staff || status != http.StatusNotFound {
		t.Errorf("bob: is_staff %v, audit log %d", staff, status)
	}

	for _, step := range []struct {
		args []string
		says string
		code int
	}{
		{[]string{"grant", "BOB"}, "bob (id 2) is now staff", exitOK},
		{[]string{"grant", "bob"}, "bob (id 2) is staff already", exitOK},
		{[]string{"revoke", "mod"}, "mod (id 1) is no longer staff", exitOK},
		{[]string{"revoke", "mod"}, "mod (id 1) is not staff", exitOK},
		{[]string{"grant", "nobody"}, `no user named "nobody"`, exitFail},
	} {
		code, out, errOut := runCLI(t, env, "", append([]string{"staff"}, step.args...)...)
		if code != step.code || !strings.Contains(out+errOut, step.says) {
			t.Errorf("staff %v: exit %d, %q%q; want %d, %q", step.args, code, out, errOut, step.code, step.says)
		}
	}
	if staff, status := isStaff(bob); !staff || status != http.StatusOK {
		t.Errorf("bob after the grant: is_staff %v, audit log %d", staff, status)
	}
	if staff, status := isStaff(mod); staff || status != http.StatusNotFound {
		t.Errorf("mod after the revoke: is_staff %v, audit log %d", staff, status)
	}
	var audit struct {
		Results []struct {
			Actor      any    `json:"actor"`
			Action     string `json:"action"`
			TargetName string `json:"target_name"`
		} `json:"results"`
	}
	srv.Do(t, http.MethodGet, "/api/admin/audit/", bob, nil).JSON(t, &audit)
	var got []string
	for _, e := range audit.Results {
		if e.Actor != nil {
			t.Errorf("an entry by the command line names an actor: %v", e.Actor)
		}
		got = append(got, e.Action+" "+e.TargetName)
	}
	if want := []string{"revoke_staff mod", "grant_staff bob", "grant_staff mod"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audit log %v, want %v", got, want)
	}
}

func TestHealthcheck(t *testing.T) {
	srv := servertest.Start(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if code, out, errOut := runCLI(t, map[string]string{"PORT": port}, "", "healthcheck"); code != exitOK {
		t.Fatalf("healthy server: exit %d: %s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, nil, "", "healthcheck", "--port", port); code != exitOK {
		t.Fatalf("--port: exit %d", code)
	}
	free := systemtest.FreePort(t)
	if code, _, errOut := runCLI(t, map[string]string{"PORT": free}, "", "healthcheck", "--timeout", "2s"); code != exitFail {
		t.Fatalf("nothing listening: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, map[string]string{"PORT": "not-a-port"}, "", "healthcheck"); code != exitFail {
		t.Fatalf("bad PORT: exit %d, want 1 (never 2)", code)
	}
}

// The binary, built as the Dockerfile builds it.

func TestServe_UnwritableDatabaseFolderIsExplained(t *testing.T) {
	dir := t.TempDir()
	if hint := writableHint(filepath.Join(dir, "confab.db")); hint != "" {
		t.Errorf("a writable folder got a hint: %s", hint)
	}
	notADir := filepath.Join(dir, "file")
	os.WriteFile(notADir, nil, 0o600)
	if hint := writableHint(filepath.Join(notADir, "confab.db")); !strings.Contains(hint, "not writable") || !strings.Contains(hint, "DATABASE_PATH") {
		t.Errorf("hint %q", hint)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".confab-write-check-*")); len(m) > 0 {
		t.Errorf("the check left %v", m)
	}
}

func TestCLI_MigrateAndCreateUserOnPostgres(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pgtest.URL(t)}
	status := func(wantState string) { t.Helper(); wantMigrations(t, env, wantState) }
	status("pending")
	if code, out, errOut := runCLI(t, env, "", "migrate", "up"); code != exitOK {
		t.Fatalf("up: exit %d: %s%s", code, out, errOut)
	}
	status("applied")
	if code, out, errOut := runCLI(t, env, "a long enough password\n", "createuser", "--username", "pgadmin"); code != exitOK || !strings.Contains(out, "pgadmin") {
		t.Fatalf("createuser: exit %d: %s%s", code, out, errOut)
	}
	code, _, errOut := runCLI(t, env, "", "backup", filepath.Join(t.TempDir(), "copy.db"))
	if code == exitOK || !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("backup with DATABASE_URL: exit %d, %q; want a refusal pointing to pg_dump", code, errOut)
	}
	if strings.Contains(errOut, "confab:") && strings.Contains(errOut, env["DATABASE_URL"]) {
		t.Errorf("the error shows the database URL: %q", errOut)
	}
}
