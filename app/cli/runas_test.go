//go:build unix

package cli

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/confab/confab/app/systemtest"
)

// RUN_AS: a server started as root on a folder owned by root (how Fly and
// Render mount volumes) takes the folder for the given user and serves as
// that user. Started as anyone else, it may only name itself.
func TestRunAs(t *testing.T) {
	bin := systemtest.BuildBinary(t, "runas-test")
	if os.Getuid() != 0 {
		t.Run("another user is refused without root", func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = []string{"HOST=127.0.0.1", "PORT=" + systemtest.FreePort(t), "DATABASE_PATH=" + filepath.Join(t.TempDir(), "c.db"),
				"RUN_AS=" + strconv.Itoa(os.Getuid()+1) + ":" + strconv.Itoa(os.Getgid())}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "needs the server to start as root") {
				t.Fatalf("exit %v, output:\n%s", err, out)
			}
		})
		t.Run("naming itself is a no-op", func(t *testing.T) {
			p := systemtest.Start(t, bin, []string{"RUN_AS=" + strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid())})
			if code, _ := p.Call(t, http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
				t.Fatalf("readyz: %d", code)
			}
		})
		return
	}

	base, err := os.MkdirTemp("", "confab-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o700); err != nil { // root's, like a fresh volume
		t.Fatal(err)
	}
	const uid, gid = 65532, 65532
	p := systemtest.Start(t, bin, []string{"RUN_AS=65532:65532", "DATABASE_PATH=" + filepath.Join(data, "confab.db")})
	p.Register(t, "volume_user") // writes to the database

	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			for _, f := range strings.Fields(rest) {
				if f != strconv.Itoa(uid) {
					t.Errorf("server runs with Uid line %q, want every id %d", line, uid)
				}
			}
		}
	}
	for _, name := range []string{data, filepath.Join(data, "confab.db")} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s is owned by %d:%d, want %d:%d", name, st.Uid, st.Gid, uid, gid)
		}
	}
	p.Stop(t, 15e9)
}
