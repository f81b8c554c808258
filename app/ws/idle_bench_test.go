package ws_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkIdleConnections measures the server's memory per idle
// authenticated socket: it builds and runs the real binary, opens
// IDLE_CONNS sockets (default 10,000) and compares the server's RSS
// before and after. Run it alone, once:
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x ./app/ws/
func BenchmarkIdleConnections(b *testing.B) {
	n := 10000
	if v := os.Getenv("IDLE_CONNS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "confab")
	build := exec.Command("go", "build", "-o", bin, "github.com/confab/confab")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := exec.Command(bin)
	srv.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port),
		"DATABASE_PATH="+filepath.Join(dir, "confab.db"), "LOG_LEVEL=warn",
		// One account holds every socket: lift the per-user and
		// per-address limits that would otherwise stop it at 50.
		"WS_MAX_CONNS_PER_USER=1000000", "WS_MAX_CONNS_PER_IP=1000000")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			b.Fatal("server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := json.Marshal(map[string]string{"username": "idle", "password": "idle-password"})
	resp, err := http.Post(base+"/api/auth/register/", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	var reg struct{ Access string }
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()

	url := "ws://127.0.0.1:" + strconv.Itoa(port) + "/ws/chat/?token=" + reg.Access
	open := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		if _, _, err := c.ReadMessage(); err != nil { // connection_established
			b.Fatalf("read: %v", err)
		}
		return c
	}
	warm := open()
	defer warm.Close()
	time.Sleep(500 * time.Millisecond)
	before := rss(b, srv.Process.Pid)

	b.ResetTimer()
	start := time.Now()
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		conns = append(conns, open())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	time.Sleep(time.Second)
	after := rss(b, srv.Process.Pid)
	b.ReportMetric(float64(after-before)/float64(n), "B/conn")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "conns/s")
	b.ReportMetric(float64(after)/(1<<20), "MiB-rss")
	for _, c := range conns {
		c.Close()
	}
}

// rss reads a process's resident set size in bytes.
func rss(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
