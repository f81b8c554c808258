package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/confab/confab/app/server/servertest"
)

// EnvToxiproxy names the toxiproxy server binary when it is not
// toxiproxy-server on PATH (.ci/run installs it there, from
// github.com/Shopify/toxiproxy/v2/cmd/server).
const EnvToxiproxy = "CONFAB_TOXIPROXY"

// toxiproxy is a real toxiproxy server, driven over its HTTP API: a TCP
// proxy per service, whose connections a test cuts, slows or resets.
type toxiproxy struct {
	t   *testing.T
	api string // http://127.0.0.1:PORT
}

// startToxiproxy starts a toxiproxy server for t. Without the binary it
// skips t, except under CI=true, where it fails: CI never passes by
// skipping.
func startToxiproxy(t *testing.T) *toxiproxy {
	t.Helper()
	bin := os.Getenv(EnvToxiproxy)
	if bin == "" {
		bin, _ = exec.LookPath("toxiproxy-server")
	}
	if bin == "" {
		msg := "needs toxiproxy-server on PATH or " + EnvToxiproxy + " (go install " +
			"github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0, as .ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	port := FreePort(t)
	logs := &servertest.LogBuffer{}
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	x := &toxiproxy{t: t, api: "http://127.0.0.1:" + port}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(x.api + "/version")
		if err == nil {
			resp.Body.Close()
			return x
		}
		if time.Now().After(deadline) {
			t.Fatalf("toxiproxy did not answer: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call makes one API request and decodes the answer into out (if any).
func (x *toxiproxy) call(method, path string, body, out any) {
	x.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, x.api+path, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		x.t.Fatalf("toxiproxy %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			x.t.Fatalf("toxiproxy %s %s: %v", method, path, err)
		}
	}
}

// proxy makes a proxy named name in front of upstream (host:port) and
// returns the address it listens on.
func (x *toxiproxy) proxy(name, upstream string) string {
	x.t.Helper()
	var p struct{ Listen string }
	x.call(http.MethodPost, "/proxies", map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream}, &p)
	return p.Listen
}

// proxyURL points raw (a postgres:// or redis:// URL) at a new proxy
// named name in front of its host.
func (x *toxiproxy) proxyURL(name, raw string) string {
	x.t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		x.t.Fatal(err)
	}
	u.Host = x.proxy(name, u.Host)
	return u.String()
}

// setEnabled cuts a proxy (every connection closed, new ones refused:
// the service is gone, as its clients see it) or restores it.
func (x *toxiproxy) setEnabled(name string, on bool) {
	x.t.Helper()
	x.call(http.MethodPost, "/proxies/"+name, map[string]any{"enabled": on}, nil)
}

// toxic is one of toxiproxy's faults on one direction of a proxy.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`   // latency, bandwidth, timeout, reset_peer…
	Stream     string         `json:"stream"` // upstream (to the service) or downstream
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]int `json:"attributes"`
}

func (x *toxiproxy) addToxic(proxy string, tx toxic) {
	x.t.Helper()
	if tx.Toxicity == 0 {
		tx.Toxicity = 1
	}
	x.call(http.MethodPost, "/proxies/"+proxy+"/toxics", tx, nil)
}

func (x *toxiproxy) removeToxic(proxy, name string) {
	x.t.Helper()
	x.call(http.MethodDelete, fmt.Sprintf("/proxies/%s/toxics/%s", proxy, name), nil, nil)
}
