package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/media/mediatest"
	"github.com/confab/confab/app/server/servertest"
)

// TestBackup_RestoresMessagesWithTheirFiles: a backup holds the files of
// the attachments it names, and a server started on the copy serves each
// message's files as they were, while the live files are gone.
func TestBackup_RestoresMessagesWithTheirFiles(t *testing.T) {
	srv := servertest.Start(t, servertest.OnSQLite())
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := srv.Conversation(t, alice, bob)
	photo := srv.Upload(t, alice, "photo.jpg", mediatest.JPEGWithGPS(120, 80, 1))
	notes := srv.Upload(t, alice, "notes.txt", []byte("the plan"))
	srv.SendAttached(t, alice, conv, "both", photo, notes)
	fetch := func(s *servertest.Server, token, path string) []byte {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	want := map[string][]byte{}
	for _, path := range []string{fmt.Sprintf("/api/attachments/%d/", photo), fmt.Sprintf("/api/attachments/%d/thumbnail/", photo),
		fmt.Sprintf("/api/attachments/%d/", notes)} {
		want[path] = fetch(srv, bob.Access, path)
	}

	dst := filepath.Join(t.TempDir(), "backup.db")
	code, out, errOut := runCLI(t, map[string]string{"DATABASE_PATH": srv.Config.DatabasePath}, "", "backup", dst)
	if code != exitOK || !strings.Contains(out, "3 files") {
		t.Fatalf("backup: exit %d: %s%s", code, out, errOut)
	}
	if m, _ := filepath.Glob(dst + ".*partial*"); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
	srv.Close()
	if err := os.RemoveAll(srv.Config.Files()); err != nil { // the live files are lost
		t.Fatal(err)
	}

	restored := servertest.Start(t, servertest.OnSQLite(), servertest.WithConfig(func(c *config.Config) {
		c.DatabasePath, c.FilesPath = dst, dst+".files"
	}))
	login := restored.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": bob.Username, "password": servertest.Password})
	if login.Status != http.StatusOK {
		t.Fatalf("login on the restored server: %d %s", login.Status, login.Body)
	}
	token := login.Map(t)["access"].(string)
	for path, body := range want {
		if got := fetch(restored, token, path); !bytes.Equal(got, body) {
			t.Errorf("%s: %d bytes after the restore, %d before", path, len(got), len(body))
		}
	}
}
