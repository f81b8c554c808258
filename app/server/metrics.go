package server

import (
	"crypto/subtle"
	"net/http"
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
// must send it as "Authorization: Bearer <token>", or it gets the
// contract's 401.
func metricsRoute(m *metrics.Metrics, token string) echo.HandlerFunc {
	h := m.Handler()
	return func(c echo.Context) error {
		if token != "" {
			got, _ := auth.BearerToken(c.Request())
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				return &chat.Error{Code: chat.CodeNotAuthenticated, Detail: "A valid metrics token is required."}
			}
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
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
