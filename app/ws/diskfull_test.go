//go:build linux

package ws_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/server/servertest"
)

// mountTmpfs mounts a tmpfs of size (e.g. "2m") on a new folder and
// unmounts it when the test ends (after everything registered later,
// such as a server on it, has closed). It needs root: without, it skips
// on a laptop but fails under CI, so that CI never passes by skipping.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		msg := fmt.Sprintf("mounting a %s tmpfs for a full disk needs root (CAP_SYS_ADMIN): %v", size, err)
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal(msg + " (CI is set: not skipping)")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a new file, name, on dir's filesystem until it is full.
func fill(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v, want ENOSPC", err)
	}
	return path
}

// With the database on a disk that fills up, a send answers 507
// storage_full and a socket's new_message an error frame with that code;
// reads (history, conversations, the account) keep working, a login
// (which must store a refresh token) is 507 too, a log line and a metric
// say why; the database passes integrity_check and holds every
// acknowledged message and no refused one; and once space is freed,
// sends are stored again without a restart.
func TestDiskFull_SendsAre507ReadsWorkAndItHeals(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	s := servertest.Start(t, servertest.OnSQLite(),
		servertest.WithConfig(func(c *config.Config) { c.DatabasePath = filepath.Join(dir, "confab.db") }))
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	conv := s.Conversation(t, alice, bob)
	watcher := dial(t, s, "/ws/chat/", bob.Access)
	watcher.join(conv)
	sender := dial(t, s, "/ws/chat/", alice.Access)
	content := strings.TrimSpace(strings.Repeat("full disk ", 400)) // 3999 characters: pages of their own

	acked, refused := map[string]bool{}, map[string]bool{}
	post := func(clientID string) (int, string) {
		t.Helper()
		r := s.Do(t, http.MethodPost, "/api/conversations/"+itoa(conv)+"/messages/", alice.Access,
			map[string]string{"content": content, "client_id": clientID})
		switch r.Status {
		case http.StatusCreated:
			acked[clientID] = true
		case http.StatusInsufficientStorage:
			refused[clientID] = true
		}
		return r.Status, string(r.Body)
	}
	const before = 30
	for i := range before {
		if st, body := post(fmt.Sprint("before-", i)); st != http.StatusCreated {
			t.Fatalf("send before the disk fills: %d %s", st, body)
		}
	}
	// Checkpointed into the main file, the WAL's frames may be written
	// over from its start: the next commits need no new space, and
	// only the WAL's growth past its old end meets the full disk.
	if _, err := s.DB(t).Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		t.Fatal(err)
	}

	filler := fill(t, dir, "filler")
	var st int
	var body string
	for i := 0; i < 10*before; i++ {
		if st, body = post(fmt.Sprint("filling-", i)); st != http.StatusCreated {
			break
		}
	}
	t.Logf("%d sends acknowledged in the WAL's old space after the disk filled", len(acked)-before)
	if st != http.StatusInsufficientStorage || !strings.Contains(body, `"code":"storage_full"`) {
		t.Fatalf("send on a full disk: %d %s, want 507 storage_full", st, body)
	}
	if st, body = post("full-rest"); st != http.StatusInsufficientStorage {
		t.Fatalf("the next send on a full disk: %d %s, want 507", st, body)
	}
	sender.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": content,
		"client_id": "full-ws", "request_id": "w1"})
	if f := sender.next("error"); f["code"] != "storage_full" || f["request_id"] != "w1" {
		t.Fatalf("new_message on a full disk: %v, want an error frame with code storage_full", f)
	}
	refused["full-ws"] = true

	// Reads keep working; a login needs a write (its refresh token).
	for _, path := range []string{
		"/api/conversations/" + itoa(conv) + "/messages/?limit=100",
		"/api/conversations/",
		"/api/conversations/" + itoa(conv) + "/",
		"/api/users/me/",
	} {
		if r := s.Do(t, http.MethodGet, path, alice.Access, nil); r.Status != http.StatusOK {
			t.Errorf("GET %s on a full disk: %d %s, want 200", path, r.Status, r.Body)
		}
	}
	// A login's write (one refresh token) is smaller than a send's and
	// may still fit in the WAL's old frames: it is stored or refused as
	// storage_full, never anything else.
	login := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": servertest.Password})
	switch {
	case login.Status == http.StatusOK:
		t.Logf("login on a full disk: its refresh token still fit")
	case login.Status != http.StatusInsufficientStorage || !strings.Contains(string(login.Body), `"code":"storage_full"`):
		t.Errorf("login on a full disk: %d %s, want 200 or 507 storage_full", login.Status, login.Body)
	}
	if logs := s.Logs.String(); !strings.Contains(logs, "disk is full") {
		t.Errorf("no log line says the disk is full:\n%s", logs)
	}
	if m := string(s.Do(t, http.MethodGet, "/metrics", "", nil).Body); !strings.Contains(m, `confab_sends_refused_total{reason="storage_full"}`) ||
		strings.Contains(m, `confab_sends_refused_total{reason="storage_full"} 0`) {
		t.Errorf("confab_sends_refused_total{reason=\"storage_full\"} did not count the refused sends")
	}
	// A checkpoint on the full disk harms nothing. It fails or does part
	// of its work when the main file cannot grow to take the WAL's
	// pages; when they are all in it already, it truncates the WAL and
	// so frees the WAL's space, which a second filler takes up again.
	if _, err := s.DB(t).Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Logf("checkpoint on a full disk: %v", err)
	}
	// Sends may again fit in the WAL's frames that the checkpoint copied
	// over, as after the first filler; then the disk refuses them.
	filler2 := fill(t, dir, "filler2")
	for i := 0; i < 10*before; i++ {
		if st, body = post(fmt.Sprint("after-checkpoint-", i)); st != http.StatusCreated {
			break
		}
	}
	if st != http.StatusInsufficientStorage {
		t.Fatalf("send on a full disk after a checkpoint: %d %s, want 507", st, body)
	}
	integrityOK(t, s)

	// Space again: sends are stored without a restart, over both edges.
	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if st, body := post("after-rest"); st != http.StatusCreated {
		t.Fatalf("send once space is freed: %d %s, want 201", st, body)
	}
	sender.send(map[string]any{"type": "new_message", "conversation_id": conv, "content": "room again", "client_id": "after-ws"})
	if f := sender.next("message_ack"); f["client_id"] != "after-ws" {
		t.Fatalf("ack once space is freed: %v", f)
	}
	acked["after-ws"] = true
	if r := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": servertest.Password}); r.Status != http.StatusOK {
		t.Errorf("login once space is freed: %d %s", r.Status, r.Body)
	}

	// Every acknowledged message is stored whole, exactly once; no
	// refused one is.
	rows, err := s.DB(t).Query(`SELECT client_id, content FROM messages WHERE conversation_id = ?`, conv)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var id, c string
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		stored[id]++
		if id != "after-ws" && c != content {
			t.Errorf("message %s is not intact (%d characters)", id, len(c))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for id := range acked {
		if stored[id] != 1 {
			t.Errorf("acknowledged message %s stored %d times, want 1", id, stored[id])
		}
	}
	for id := range refused {
		if stored[id] != 0 {
			t.Errorf("refused message %s was stored", id)
		}
	}
	if len(stored) != len(acked) {
		t.Errorf("%d messages stored, %d acknowledged", len(stored), len(acked))
	}
	for range acked {
		watcher.next("new_message")
	}
	integrityOK(t, s)
}

// integrityOK runs PRAGMA integrity_check on the server's database.
func integrityOK(t *testing.T, s *servertest.Server) {
	t.Helper()
	var check string
	if err := s.DB(t).QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}
