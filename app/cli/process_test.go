package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confab/confab/app/systemtest"
	"github.com/confab/confab/db"
)

func TestShutdown_SIGTERMFinishesAnInFlightPOST(t *testing.T) {
	bin := systemtest.BuildBinary(t, "sigterm-test")
	const shutdownTimeout = 5 * time.Second
	p := systemtest.Start(t, bin, []string{"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(), "LOG_FORMAT=json"}) // no command: serve
	aliceID, alice, _ := p.Register(t, "alice")
	bobID, _, _ := p.Register(t, "bob")
	code, conv := p.Call(t, http.MethodPost, "/api/conversations/", alice, map[string]any{"participant_ids": []int64{bobID}})
	if code != http.StatusCreated {
		t.Fatalf("conversation: %d %v", code, conv)
	}
	convID := int64(conv["id"].(float64))

	// Half a request: the server has its headers and waits for the body.
	body := `{"content":"sent across the shutdown","client_id":"sigterm-1"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/conversations/%d/messages/ HTTP/1.1\r\nHost: confab\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", convID, alice, len(body), body[:10])
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	// The server drains: it soon refuses new connections, and it does not
	// exit while the request is in flight.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.Done():
			t.Fatalf("exited with a request in flight: %v\n%s", p.Err(), p.Logs)
		default:
		}
		resp, err := http.Get(p.URL + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("a draining server still accepts new connections")
		}
	}

	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the response: %v\n%s", err, p.Logs)
	}
	var msg struct{ ID int64 }
	json.NewDecoder(resp.Body).Decode(&msg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || msg.ID == 0 {
		t.Fatalf("in-flight POST: %d id %d", resp.StatusCode, msg.ID)
	}

	select {
	case <-p.Done():
		if p.Err() != nil {
			t.Fatalf("exit: %v\n%s", p.Err(), p.Logs)
		}
	case <-time.After(shutdownTimeout + 3*time.Second):
		t.Fatalf("not stopped within the deadline:\n%s", p.Logs)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))

	// The WAL was checkpointed into the main file.
	if fi, err := os.Stat(p.DB + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("%s-wal has %d bytes after a clean exit", p.DB, fi.Size())
	}
	s, err := db.OpenNoMigrate(p.DB)
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
	bin := systemtest.BuildBinary(t, "logs-test")
	const metricsToken = "metrics-secret-0123456789abcdef"
	p := systemtest.Start(t, bin, []string{"LOG_FORMAT=json", "LOG_LEVEL=debug", "METRICS_TOKEN=" + metricsToken}, "serve")
	_, access, refresh := p.Register(t, "alice")
	_, ticketBody := p.Call(t, http.MethodPost, "/api/auth/ws-ticket/", access, nil)
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
		req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
	}
	p.Call(t, http.MethodPost, "/api/auth/token/refresh/", "", map[string]string{"refresh": refresh})
	p.Call(t, http.MethodGet, "/metrics", metricsToken, nil)
	p.Stop(t, 10*time.Second)

	logs := p.Logs.String()
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
