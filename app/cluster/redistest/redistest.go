// Package redistest runs a real redis-server for tests: a process of its
// own on a free loopback port, with nothing saved to disk, that a test can
// stop and start again (on the same port) to see what nodes do without
// Redis.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	tb   testing.TB
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// Start starts a redis-server and stops it when the test ends. Without
// redis-server on PATH the test is skipped, except under CI=true, where
// it fails: CI installs it (apt-get install redis-server).
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("redis-server is not installed (apt-get install redis-server); CI must run the multi-node tests")
		}
		tb.Skip("redis-server is not installed (apt-get install redis-server): multi-node tests need it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{tb: tb, bin: bin, port: port, dir: tb.TempDir()}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *Server) start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 7)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		select {
		case <-done:
			s.tb.Fatalf("redis-server exited at start:\n%s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server did not answer within 10 s:\n%s", s.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: like a crash, nothing kept) and waits
// for it to exit. Safe to call when stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Resume starts the server again on its port after Stop: it comes back
// empty.
func (s *Server) Resume() {
	s.tb.Helper()
	s.start()
}

// Restart stops the server and starts a fresh one on the same port: every
// key is gone, as after a Redis crash without persistence.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}
