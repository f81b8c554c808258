package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// Root returns the module's root folder (the one holding go.mod), where
// the binary is built from and the deploy files live.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// DockerBuildLine returns the environment and the go command arguments of
// the Dockerfile's go build step, with build arguments filled in.
func DockerBuildLine(t testing.TB, buildArgs map[string]string) (env, args []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "RUN ") || !strings.Contains(line, " go build ") {
			continue
		}
		words, err := shellWords(strings.TrimPrefix(line, "RUN "))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
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
func shellWords(s string) ([]string, error) {
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
		return nil, fmt.Errorf("unbalanced quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// BuildBinary builds confab (the module's root package) into a temp dir
// exactly as the Dockerfile does, with REVISION set to revision. It skips
// the test under -short.
func BuildBinary(t testing.TB, revision string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env, args := DockerBuildLine(t, map[string]string{"REVISION": revision})
	out := filepath.Join(t.TempDir(), "confab")
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = Root(t)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Proc is a real server process.
type Proc struct {
	Cmd  *exec.Cmd
	URL  string // http://127.0.0.1:PORT
	DB   string // its DATABASE_PATH
	Logs *servertest.LogBuffer
	done chan struct{} // closed at exit, after err is set
	err  error         // what Wait returned
}

// Start runs bin with args on a free port and a fresh database, and
// waits until /healthz answers. env is added to HOST, PORT and
// DATABASE_PATH (and may override them). The process is killed when the
// test ends.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	port := FreePort(t)
	p := &Proc{URL: "http://127.0.0.1:" + port, DB: filepath.Join(t.TempDir(), "confab.db"),
		Logs: &servertest.LogBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append([]string{"HOST=127.0.0.1", "PORT=" + port, "DATABASE_PATH=" + p.DB}, env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Cmd.Process.Kill() // harmless once it has exited
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("the server exited at start (%v):\n%s", p.err, p.Logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not answer /healthz:\n%s", p.Logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is what waiting for the process returned; read it after Done.
func (p *Proc) Err() error { return p.err }

// Call makes one request to the process and decodes a JSON object answer.
func (p *Proc) Call(t testing.TB, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.URL+path, r)
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

// Register creates an account with a fixed password and returns its id
// and tokens.
func (p *Proc) Register(t testing.TB, name string) (id int64, access, refresh string) {
	t.Helper()
	code, m := p.Call(t, http.MethodPost, "/api/auth/register/", "", map[string]string{"username": name, "password": "correct horse battery"})
	if code != http.StatusCreated {
		t.Fatalf("register %s: %d %v", name, code, m)
	}
	return int64(m["user"].(map[string]any)["id"].(float64)), m["access"].(string), m["refresh"].(string)
}

// Stop sends SIGTERM and waits for a clean exit, returning how long it
// took.
func (p *Proc) Stop(t testing.TB, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.Logs)
		}
	case <-time.After(within):
		t.Fatalf("still running %v after SIGTERM:\n%s", within, p.Logs)
	}
	return time.Since(start)
}

// Send posts a message to url (a conversation's messages/ endpoint) and
// returns its id. Unlike servertest's Send it returns its error, so that
// writer goroutines may use it.
func Send(url, token, content string) (int64, error) {
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
