package server

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/cluster"
	"github.com/confab/confab/app/metrics"
)

// The glue between the edges and metrics, which is a leaf: what each part
// reports, and the /metrics route.

// metricsRoute serves m's registry. When token is not empty, a request
// must send it as "Authorization: Bearer <token>", from wherever it comes,
// or it gets the contract's 401. When token is empty, only a scraper on
// this host or its private network gets it (see directFromPrivateNetwork);
// anyone else gets 403, so that a public deploy without METRICS_TOKEN does
// not publish its traffic figures.
func metricsRoute(m *metrics.Metrics, token string) echo.HandlerFunc {
	h := m.Handler()
	return func(c echo.Context) error {
		if token != "" {
			got, _ := auth.BearerToken(c.Request())
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				return &chat.Error{Code: chat.CodeNotAuthenticated, Detail: "A valid metrics token is required."}
			}
		} else if !directFromPrivateNetwork(c.Request()) {
			return &chat.Error{Code: chat.CodeForbidden,
				Detail: "Metrics are served to loopback and private addresses only, unless METRICS_TOKEN is set."}
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// directFromPrivateNetwork reports whether r's TCP peer (r.RemoteAddr,
// never X-Forwarded-For, whatever TRUST_PROXY says) is a loopback or
// private address (10/8, 172.16/12, 192.168/16, fc00::/7) and r carries
// no header that a proxy adds. The second half matters: Fly's and
// Render's edge proxies, and nginx on the same host, themselves connect
// from such addresses, so a request that came through one of them says so
// in its headers and is not trusted, while a scraper that connects
// directly (Prometheus beside the server, Fly's metrics scraper on its
// private network) sends none. A client cannot take a proxy's header
// away, only add one, which only refuses it.
func directFromPrivateNetwork(r *http.Request) bool {
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "Via", "Fly-Client-Ip", "Fly-Forwarded-Port", "True-Client-Ip", "Cf-Connecting-Ip"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	return ip.IsLoopback() || ip.IsPrivate()
}

// observeRequests counts and times every request by its route pattern
// (c.Path()). Place it outside the access log, so that the status it
// reads is the one written.
func observeRequests(m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err) // write it now, so that the status is known
			}
			r := c.Request()
			status := c.Response().Status
			upgrade := isUpgrade(r)
			if upgrade && !c.Response().Committed {
				// The connection was hijacked: the 101 went out unseen by echo.
				status = http.StatusSwitchingProtocols
			}
			m.ObserveRequest(c.Path(), r.Method, status, upgrade, time.Since(start))
			return nil
		}
	}
}

// isUpgrade reports a WebSocket handshake; the match is loose on
// purpose: it only decides whether the request is timed.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// clusterStats reports cl's counters to metrics.
func clusterStats(cl *cluster.Cluster) func() metrics.ClusterStats {
	return func() metrics.ClusterStats {
		s := cl.Stats()
		return metrics.ClusterStats{Published: s.Published, Received: s.Received, Dropped: s.Dropped,
			PublishErrors: s.PublishErrors, Swept: s.Swept, Healthy: s.Healthy}
	}
}
