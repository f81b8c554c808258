package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// errRedirect refuses every redirect: a server that answers with one must
// not make the bench send traffic to another address.
var errRedirect = errors.New("the server answered with a redirect; confab bench follows none")

// target is one server a run drives (a run may drive several, the nodes
// of one cluster). Every connection the bench makes to it, REST or
// WebSocket, is dialed to addr, whatever host name a URL or a redirect
// might carry: nothing else is ever contacted.
type target struct {
	base   string // scheme://host[:port], no trailing slash
	wsBase string // ws:// or wss:// of the same
	addr   string // the pinned ip:port every dial goes to
	ip     net.IP
	tls    bool

	// perSource is how many sockets share one loopback source address
	// before the next one is used (0: no spreading).
	perSource int

	mu      sync.Mutex
	dialers map[int]*websocket.Dialer
}

// resolveTarget checks raw and pins the address it names. Without
// allowRemote only a loopback address (127.0.0.0/8, ::1, localhost) is
// accepted, and no name is ever looked up: a name other than localhost is
// refused before any DNS query leaves the machine.
func resolveTarget(ctx context.Context, raw string, allowRemote bool) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("--url %q: the scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("--url %q: no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("--url %q: give only scheme://host:port", raw)
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("--url %q: the API lives at the server's root; drop the path %q", raw, u.Path)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	var ip net.IP
	switch lh := strings.ToLower(strings.TrimSuffix(host, ".")); {
	case net.ParseIP(host) != nil:
		ip = net.ParseIP(host)
	case lh == "localhost" || strings.HasSuffix(lh, ".localhost"):
		ip = net.IPv4(127, 0, 0, 1) // RFC 6761: never sent to DNS
	case !allowRemote:
		return nil, notLoopback(host)
	default:
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("--url %q: %v", raw, err)
		}
		for _, a := range addrs { // prefer IPv4, which the source spreading needs
			if ip == nil || (ip.To4() == nil && a.IP.To4() != nil) {
				ip = a.IP
			}
		}
		if ip == nil {
			return nil, fmt.Errorf("--url %q: the name has no address", raw)
		}
	}
	if !ip.IsLoopback() && !allowRemote {
		return nil, notLoopback(host)
	}
	t := &target{
		base:    u.Scheme + "://" + u.Host,
		wsBase:  map[string]string{"http": "ws", "https": "wss"}[u.Scheme] + "://" + u.Host,
		addr:    net.JoinHostPort(ip.String(), port),
		ip:      ip,
		tls:     u.Scheme == "https",
		dialers: map[int]*websocket.Dialer{},
	}
	return t, nil
}

// resolveTargets checks a --url that may list several servers, separated
// by commas, and pins each exactly as resolveTarget does. The same address
// twice is refused: a run that spreads its load over the list would count
// one server as two.
func resolveTargets(ctx context.Context, raw string, allowRemote bool) ([]*target, error) {
	var ts []*target
	seen := map[string]string{}
	for _, one := range strings.Split(raw, ",") {
		one = strings.TrimSpace(one)
		if one == "" {
			return nil, fmt.Errorf("--url %q: an empty entry in the list", raw)
		}
		t, err := resolveTarget(ctx, one, allowRemote)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[t.addr]; ok {
			return nil, fmt.Errorf("--url lists %s twice (%q and %q): give each server once", t.addr, prev, one)
		}
		seen[t.addr] = one
		ts = append(ts, t)
	}
	return ts, nil
}

func notLoopback(host string) error {
	return &usageError{fmt.Sprintf("refusing to target %s: it is not a loopback address (127.0.0.0/8, ::1, localhost). "+
		"confab bench loads only the server it is pointed at on this machine; pass --allow-remote to load one you run elsewhere", host)}
}

// dial connects to the pinned address, whatever addr says, from src when
// it is set.
func (t *target) dial(ctx context.Context, src net.IP) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	return d.DialContext(ctx, "tcp", t.addr)
}

// httpClient returns a client for REST calls: pooled keep-alive
// connections to the target (at least conns of them kept idle), no proxy
// from the environment, no redirects.
func (t *target) httpClient(conns int) *http.Client {
	conns = max(conns, 64)
	tr := &http.Transport{
		Proxy: nil, // HTTP_PROXY would send the load somewhere else
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return t.dial(ctx, nil)
		},
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       90 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
	}
}

// spread decides whether conns sockets need more than one source address:
// one source address and the server's address and port make a connection
// per ephemeral port, and Linux has about 28,000 of them by default. It
// returns how many source addresses will be used.
func (t *target) spread(conns int) (int, error) {
	per := ephemeralPorts() - 1000 // leave room for REST and other programs
	if conns <= per {
		t.perSource = 0
		return 1, nil
	}
	v4 := t.ip.To4()
	if v4 == nil || v4[0] != 127 {
		return 1, fmt.Errorf("%d sockets need more than the %d ephemeral ports of one source address, "+
			"and only an IPv4 loopback target (127.x.x.x) can be reached from several (127.0.0.x)", conns, per)
	}
	t.perSource = per
	n := (conns + per - 1) / per
	if n > 250 {
		return 1, fmt.Errorf("%d sockets would need %d loopback source addresses", conns, n)
	}
	return n, nil
}

// source returns the loopback source address of socket i, or nil for the
// system's choice.
func (t *target) source(i int) net.IP {
	if t.perSource == 0 {
		return nil
	}
	return net.IPv4(127, 0, 0, byte(1+i/t.perSource))
}

// wsDialer returns the WebSocket dialer for socket i.
func (t *target) wsDialer(i int) *websocket.Dialer {
	src := t.source(i)
	key := 0
	if src != nil {
		key = int(src.To4()[3])
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.dialers[key]; d != nil {
		return d
	}
	d := &websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return t.dial(ctx, src)
		},
		Proxy:            nil,
		HandshakeTimeout: 15 * time.Second,
		// Small buffers: an idle run may hold tens of thousands of sockets.
		ReadBufferSize:  2048,
		WriteBufferSize: 1024,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}
	t.dialers[key] = d
	return d
}

// ephemeralPorts returns the size of Linux's ephemeral port range, or the
// default's when it cannot be read.
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi > lo {
				return hi - lo + 1
			}
		}
	}
	return 60999 - 32768 + 1
}
