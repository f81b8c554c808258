package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
	"github.com/confab/confab/db"
)

// runCLI runs the command line in-process with env as the whole
// environment and stdin as standard input.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
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

// send posts a message and returns its id. Unlike servertest's Send it
// returns its error, so that writer goroutines may use it.
func send(url, token, content string) (int64, error) {
	body := fmt.Sprintf(`{"content":%q}`, content)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("send: %d %s", resp.StatusCode, b)
	}
	var m struct{ ID int64 }
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	return m.ID, nil
}

func TestBackup_WhileEightWritersSend(t *testing.T) {
	srv := servertest.Start(t)
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
				id, err := send(sendURL, token, fmt.Sprintf("writer %d message %d", w, i))
				if err != nil {
					errs <- err
					return
				}
				acked.add(id)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)

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
	restored := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.DatabasePath = dst }))
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
	srv := servertest.Start(t)
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
	rows, err := s.DB().Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'goose_db_version' ORDER BY name`)
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
	srv := servertest.Start(t)
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

	// Each down rolls back one migration: the latest first (seq), then
	// the first one, with every table.
	if code, out, errOut := runCLI(t, env, "", "migrate", "down", "--yes"); code != exitOK {
		t.Fatalf("down: exit %d: %s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, env, "", "migrate", "status"); code != exitOK ||
		!regexp.MustCompile(`(?m)^1 +applied .*00001_init.sql$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2 +pending .*00002_seq.sql$`).MatchString(out) {
		t.Fatalf("status after one down: exit %d:\n%s", code, out)
	}
	if got := tables(t, path); len(got) != len(schema) {
		t.Fatalf("tables after the first down: %v, want %v", got, schema)
	}
	if code, out, errOut := runCLI(t, env, "", "migrate", "down", "--yes"); code != exitOK {
		t.Fatalf("second down: exit %d: %s%s", code, out, errOut)
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
	again := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.DatabasePath = path }))
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
	srv := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.DatabasePath = path }))
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

func TestHealthcheck(t *testing.T) {
	srv := servertest.Start(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if code, out, errOut := runCLI(t, map[string]string{"PORT": port}, "", "healthcheck"); code != exitOK {
		t.Fatalf("healthy server: exit %d: %s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, nil, "", "healthcheck", "--port", port); code != exitOK {
		t.Fatalf("--port: exit %d", code)
	}
	free := freePort(t)
	if code, _, errOut := runCLI(t, map[string]string{"PORT": free}, "", "healthcheck", "--timeout", "2s"); code != exitFail {
		t.Fatalf("nothing listening: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, map[string]string{"PORT": "not-a-port"}, "", "healthcheck"); code != exitFail {
		t.Fatalf("bad PORT: exit %d, want 1 (never 2)", code)
	}
}

// The binary, built as the Dockerfile builds it.

// dockerBuildLine returns the environment and the go command arguments of
// the Dockerfile's go build step, with build arguments filled in.
func dockerBuildLine(t *testing.T, buildArgs map[string]string) (env, args []string) {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "RUN ") || !strings.Contains(line, " go build ") {
			continue
		}
		for _, w := range shellWords(t, strings.TrimPrefix(line, "RUN ")) {
			w = os.Expand(w, func(k string) string { return buildArgs[k] })
			switch {
			case args != nil:
				args = append(args, w)
			case w == "go":
				args = []string{}
			default: // VAR=value before the command
				env = append(env, w)
			}
		}
		return env, args
	}
	t.Fatal("Dockerfile has no RUN ... go build line")
	return nil, nil
}

// shellWords splits a command line the way sh does for the plain cases a
// Dockerfile uses: spaces, single and double quotes.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// buildBinary builds confab into a temp dir exactly as the Dockerfile
// does, with REVISION set to revision.
func buildBinary(t *testing.T, revision string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env, args := dockerBuildLine(t, map[string]string{"REVISION": revision})
	out := filepath.Join(t.TempDir(), "confab")
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

func TestDockerfile_BuildsWithGoModsGo(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for _, l := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	df, _ := os.ReadFile("Dockerfile")
	if !strings.Contains(string(df), "FROM golang:"+goLine+"-") {
		t.Errorf("the Dockerfile's build image is not golang:%s (go.mod's go line)", goLine)
	}
}

func TestDockerfile_BuildFlagsMakeAStaticTrimmedBinary(t *testing.T) {
	env, args := dockerBuildLine(t, map[string]string{"REVISION": "r"})
	joined := strings.Join(env, " ") + " go " + strings.Join(args, " ")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-ldflags=", "-X main.revision=r", "-o "} {
		if !strings.Contains(joined, want) {
			t.Errorf("the Dockerfile's build step %q lacks %q", joined, want)
		}
	}

	bin := buildBinary(t, "test-revision-1234")
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revision test-revision-1234") {
		t.Errorf("version: %v %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v): it would not run on distroless/static", p.Type)
		}
	}
	wd, _ := os.Getwd()
	if b, _ := os.ReadFile(bin); bytes.Contains(b, []byte(wd)) {
		t.Errorf("the binary contains the build folder %s: -trimpath did not apply", wd)
	}
}

// dockerfileFinalStage returns the instructions of the Dockerfile's final stage.
func dockerfileFinalStage(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stage := map[string][]string{}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			stage = map[string][]string{}
		}
		stage[instr] = append(stage[instr], strings.Join(strings.Fields(rest), " "))
	}
	return stage
}

func TestDockerfile_FinalImage(t *testing.T) {
	st := dockerfileFinalStage(t)
	def, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	from := strings.Join(st["FROM"], "")
	if !strings.Contains(from, "distroless/static") && from != "scratch" {
		t.Errorf("final image %q is not distroless static or scratch", from)
	}
	env := strings.Join(st["ENV"], " ")
	// The image may start as root only to hand the volume to an
	// unprivileged user it then becomes (RUN_AS); otherwise USER must be
	// unprivileged.
	if u := strings.Join(st["USER"], ""); u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		if !strings.Contains(env, "RUN_AS=65532:65532") {
			t.Errorf("USER %q without RUN_AS: the server would run as root", u)
		}
	}
	for _, want := range []string{"DATABASE_PATH=/data/confab.db", "PORT=" + strconv.Itoa(def.Port)} {
		if !strings.Contains(env, want) {
			t.Errorf("ENV %q lacks %s", env, want)
		}
	}
	checks := []struct{ instr, want string }{
		{"EXPOSE", strconv.Itoa(def.Port)},
		{"VOLUME", "/data"},
		{"HEALTHCHECK", `"healthcheck"]`},
		{"STOPSIGNAL", "SIGTERM"},
		{"COPY", "--chown=65532:65532"},
	}
	for _, c := range checks {
		if !strings.Contains(strings.Join(st[c.instr], " "), c.want) {
			t.Errorf("%s %v lacks %q", c.instr, st[c.instr], c.want)
		}
	}
}

// A real server process.

type proc struct {
	cmd  *exec.Cmd
	url  string
	db   string
	logs *servertest.LogBuffer
	done chan struct{} // closed at exit, after err is set
	err  error         // what Wait returned
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startProc runs bin with args on a free port and a fresh database, and
// waits until /healthz answers.
func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	port := freePort(t)
	p := &proc{url: "http://127.0.0.1:" + port, db: filepath.Join(t.TempDir(), "confab.db"),
		logs: &servertest.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"HOST=127.0.0.1", "PORT=" + port, "DATABASE_PATH=" + p.db}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // harmless once it has exited
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("the server exited at start (%v):\n%s", p.err, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not answer /healthz:\n%s", p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call makes one request to the process and decodes a JSON object answer.
func (p *proc) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (p *proc) register(t *testing.T, name string) (id int64, access, refresh string) {
	t.Helper()
	code, m := p.call(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": name, "password": "correct horse battery"})
	if code != http.StatusCreated {
		t.Fatalf("register %s: %d %v", name, code, m)
	}
	return int64(m["user"].(map[string]any)["id"].(float64)), m["access"].(string), m["refresh"].(string)
}

// stop sends SIGTERM and waits for the exit, returning how long it took.
func (p *proc) stop(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.logs)
		}
	case <-time.After(within):
		t.Fatalf("still running %v after SIGTERM:\n%s", within, p.logs)
	}
	return time.Since(start)
}

func TestShutdown_SIGTERMFinishesAnInFlightPOST(t *testing.T) {
	bin := buildBinary(t, "sigterm-test")
	const shutdownTimeout = 5 * time.Second
	p := startProc(t, bin, []string{"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(), "LOG_FORMAT=json"}) // no command: serve
	aliceID, alice, _ := p.register(t, "alice")
	bobID, _, _ := p.register(t, "bob")
	code, conv := p.call(t, http.MethodPost, "/api/conversations/", alice, map[string]any{"participant_ids": []int64{bobID}})
	if code != http.StatusCreated {
		t.Fatalf("conversation: %d %v", code, conv)
	}
	convID := int64(conv["id"].(float64))

	// Half a request: the server has its headers and waits for the body.
	body := `{"content":"sent across the shutdown","client_id":"sigterm-1"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/conversations/%d/messages/ HTTP/1.1\r\nHost: confab\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", convID, alice, len(body), body[:10])
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond) // the server is now draining
	select {
	case <-p.done:
		t.Fatalf("exited with a request in flight: %v\n%s", p.err, p.logs)
	default:
	}
	if _, err := http.Get(p.url + "/healthz"); err == nil {
		t.Error("a draining server still accepts new connections")
	}

	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the response: %v\n%s", err, p.logs)
	}
	var msg struct{ ID int64 }
	json.NewDecoder(resp.Body).Decode(&msg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || msg.ID == 0 {
		t.Fatalf("in-flight POST: %d id %d", resp.StatusCode, msg.ID)
	}

	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit: %v\n%s", p.err, p.logs)
		}
	case <-time.After(shutdownTimeout + 3*time.Second):
		t.Fatalf("not stopped within the deadline:\n%s", p.logs)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))

	// The WAL was checkpointed into the main file.
	if fi, err := os.Stat(p.db + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("%s-wal has %d bytes after a clean exit", p.db, fi.Size())
	}
	s, err := db.OpenNoMigrate(p.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var content string
	var sender int64
	if err := s.DB().QueryRow(`SELECT content, sender_id FROM messages WHERE id = ?`, msg.ID).Scan(&content, &sender); err != nil ||
		content != "sent across the shutdown" || sender != aliceID {
		t.Fatalf("the acknowledged message: %q from %d, %v", content, sender, err)
	}
}

func TestLogs_NeverHoldTokens(t *testing.T) {
	bin := buildBinary(t, "logs-test")
	const metricsToken = "metrics-secret-0123456789abcdef"
	p := startProc(t, bin, []string{"LOG_FORMAT=json", "LOG_LEVEL=debug", "METRICS_TOKEN=" + metricsToken}, "serve")
	_, access, refresh := p.register(t, "alice")
	_, ticketBody := p.call(t, http.MethodPost, "/api/auth/ws-ticket/", access, nil)
	ticket, _ := ticketBody["ticket"].(string)
	if ticket == "" {
		t.Fatalf("no ticket: %v", ticketBody)
	}

	for _, path := range []string{
		"/ws/chat/?token=" + access,
		"/ws/chat/?ticket=" + ticket,
		"/ws/conversations/1/?token=" + access + "&x=1",
		"/api/users/me/?token=" + access,
		"/api/users/me?access=" + access,
		"/api/conversations/?refresh=" + refresh + "&TOKEN=" + access,
		"/healthz?token=" + access,
		"/api/users/me/?token=" + access + "&bad=%zz", // a query that does not parse
		"/no/such/page?token=" + access,
		"/metrics?token=" + metricsToken,
	} {
		req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
	}
	p.call(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": refresh})
	p.call(t, http.MethodGet, "/metrics", metricsToken, nil)
	p.stop(t, 10*time.Second)

	logs := p.logs.String()
	for name, secret := range map[string]string{"access token": access, "refresh token": refresh, "ticket": ticket,
		"metrics token": metricsToken, "password": "correct horse battery"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the %s", name)
		}
		if parts := strings.Split(secret, "."); len(parts) == 3 && strings.Contains(logs, parts[2]) {
			t.Errorf("the log holds the %s's signature", name)
		}
	}
	// Every request line has a request id, and the redacted queries show.
	requests := 0
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Errorf("not a JSON log line: %s", sc.Text())
			continue
		}
		if line["msg"] == "request" {
			requests++
			if id, _ := line["request_id"].(string); id == "" {
				t.Errorf("request line without request_id: %s", sc.Text())
			}
		}
	}
	if requests < 10 || !strings.Contains(logs, "REDACTED") {
		t.Errorf("%d request lines, REDACTED present: %v", requests, strings.Contains(logs, "REDACTED"))
	}
}

// Deploy files.

func TestDeploy_FlyAndRenderAgreeWithTheServer(t *testing.T) {
	def, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t)
	const healthPath = "/healthz"
	if resp := srv.Do(t, http.MethodGet, healthPath, "", nil); resp.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", healthPath, resp.Status)
	}

	t.Run("fly.toml", func(t *testing.T) {
		var fly struct {
			KillSignal  string            `toml:"kill_signal"`
			KillTimeout string            `toml:"kill_timeout"`
			Env         map[string]string `toml:"env"`
			Build       struct{ Dockerfile string }
			Mounts      []struct{ Source, Destination string }
			HTTPService struct {
				InternalPort       int `toml:"internal_port"`
				AutoStopMachines   any `toml:"auto_stop_machines"`
				MinMachinesRunning int `toml:"min_machines_running"`
				Checks             []struct {
					Method, Path string
				}
			} `toml:"http_service"`
		}
		if _, err := toml.DecodeFile("fly.toml", &fly); err != nil {
			t.Fatal(err)
		}
		if fly.HTTPService.InternalPort != def.Port || fly.Env["PORT"] != strconv.Itoa(def.Port) {
			t.Errorf("internal_port %d, PORT %q; the server listens on %d", fly.HTTPService.InternalPort, fly.Env["PORT"], def.Port)
		}
		if len(fly.Mounts) != 1 || fly.Mounts[0].Destination != "/data" || filepath.Dir(fly.Env["DATABASE_PATH"]) != "/data" {
			t.Errorf("mounts %+v, DATABASE_PATH %q: the database must be on the volume", fly.Mounts, fly.Env["DATABASE_PATH"])
		}
		if len(fly.HTTPService.Checks) == 0 || fly.HTTPService.Checks[0].Path != healthPath {
			t.Errorf("checks %+v", fly.HTTPService.Checks)
		}
		if fly.KillSignal != "SIGTERM" {
			t.Errorf("kill_signal %q", fly.KillSignal)
		}
		kill, err1 := time.ParseDuration(fly.KillTimeout)
		drain, err2 := time.ParseDuration(fly.Env["SHUTDOWN_TIMEOUT"])
		if err1 != nil || err2 != nil || kill <= drain {
			t.Errorf("kill_timeout %q must exceed SHUTDOWN_TIMEOUT %q", fly.KillTimeout, fly.Env["SHUTDOWN_TIMEOUT"])
		}
		if fly.HTTPService.AutoStopMachines != "off" && fly.HTTPService.MinMachinesRunning < 1 {
			t.Errorf("machines may be auto-stopped with sockets open: %v, %d", fly.HTTPService.AutoStopMachines, fly.HTTPService.MinMachinesRunning)
		}
		if fly.Env["TRUST_PROXY"] != "true" {
			t.Errorf("TRUST_PROXY %q", fly.Env["TRUST_PROXY"])
		}
		for _, secret := range []string{"JWT_SECRET", "METRICS_TOKEN"} {
			if _, ok := fly.Env[secret]; ok {
				t.Errorf("%s is in fly.toml: it belongs in fly secrets", secret)
			}
		}
		if fly.Build.Dockerfile != "Dockerfile" {
			t.Errorf("build.dockerfile %q", fly.Build.Dockerfile)
		}
		checkEnv(t, fly.Env)
	})

	t.Run("render.yaml", func(t *testing.T) {
		b, err := os.ReadFile("render.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var bp struct {
			Services []struct {
				Type, Name, Runtime     string
				DockerfilePath          string `yaml:"dockerfilePath"`
				HealthCheckPath         string `yaml:"healthCheckPath"`
				MaxShutdownDelaySeconds int    `yaml:"maxShutdownDelaySeconds"`
				Disk                    struct {
					Name      string
					MountPath string `yaml:"mountPath"`
					SizeGB    int    `yaml:"sizeGB"`
				}
				EnvVars []struct {
					Key, Value    string
					GenerateValue bool `yaml:"generateValue"`
				} `yaml:"envVars"`
			}
		}
		if err := yaml.Unmarshal(b, &bp); err != nil {
			t.Fatal(err)
		}
		if len(bp.Services) != 1 {
			t.Fatalf("%d services", len(bp.Services))
		}
		s := bp.Services[0]
		if s.Type != "web" || s.Runtime != "docker" || s.DockerfilePath != "./Dockerfile" {
			t.Errorf("service %s/%s from %q", s.Type, s.Runtime, s.DockerfilePath)
		}
		if s.HealthCheckPath != healthPath || s.Disk.MountPath != "/data" || s.Disk.SizeGB < 1 {
			t.Errorf("health %q, disk %+v", s.HealthCheckPath, s.Disk)
		}
		env := map[string]string{}
		generated := map[string]bool{}
		for _, v := range s.EnvVars {
			env[v.Key], generated[v.Key] = v.Value, v.GenerateValue
		}
		if env["PORT"] != strconv.Itoa(def.Port) || filepath.Dir(env["DATABASE_PATH"]) != "/data" || env["TRUST_PROXY"] != "true" {
			t.Errorf("env %v", env)
		}
		if !generated["JWT_SECRET"] || env["JWT_SECRET"] != "" {
			t.Errorf("JWT_SECRET must be generateValue: true with no value")
		}
		drain, err := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
		if err != nil || time.Duration(s.MaxShutdownDelaySeconds)*time.Second <= drain {
			t.Errorf("maxShutdownDelaySeconds %d must exceed SHUTDOWN_TIMEOUT %q", s.MaxShutdownDelaySeconds, env["SHUTDOWN_TIMEOUT"])
		}
		checkEnv(t, env)
	})
}

// checkEnv loads a deploy file's environment through config.Load: every
// value it sets must be valid.
func checkEnv(t *testing.T, env map[string]string) {
	t.Helper()
	withSecrets := map[string]string{"JWT_SECRET": strings.Repeat("s", 32), "METRICS_TOKEN": strings.Repeat("m", 32)}
	for k, v := range env {
		if v != "" {
			withSecrets[k] = v
		}
	}
	if _, err := config.Load(func(k string) string { return withSecrets[k] }); err != nil {
		t.Errorf("the deploy environment does not load: %v", err)
	}
}

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
