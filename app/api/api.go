// Package api is Confab's REST edge: Echo routes, middleware, and the
// mapping of errors to the contract's JSON error body. Handlers decode,
// call app/chat or app/auth, and encode; they hold no rules of their own.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/confab/confab/app/attach"
	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/moderate"
	"github.com/confab/confab/app/notify"
)

// Options configures the REST edge. Zero values are not defaults: main
// fills every field from config.
type Options struct {
	RegistrationsPerMinute int
	LoginAttemptsPerMinute int
	// RequestsPerSecond and RequestBurst size the token bucket every
	// client address has for /api/ requests; RequestsPerSecond zero
	// turns it off.
	RequestsPerSecond float64
	RequestBurst      int
	// Ready reports whether the server can serve (for /readyz).
	Ready func(ctx context.Context) error
	// Degraded, when set, reports what does not work fully while the
	// server still serves (cross-node delivery without Redis): /readyz
	// stays 200, with status "degraded", so that a load balancer keeps a
	// node that serves its own sockets.
	Degraded func() string
	Now      func() time.Time
	// MaxUploadBytes is the largest file POST /api/uploads/ takes.
	MaxUploadBytes int64
}

// API holds the REST handlers' dependencies.
type API struct {
	auth     *auth.Service
	chat     *chat.Service
	attach   *attach.Service // nil: no uploads
	notify   *notify.Service
	moderate *moderate.Service
	log      *slog.Logger
	opt      Options
	logins   *keyedLimiter
	register *keyedLimiter
	// loginAddrs limits failed logins per address across usernames, at
	// loginsPerAddress times the per-username limit.
	loginAddrs *keyedLimiter
	// requests limits every /api/ request per client address.
	requests *keyedLimiter
	// exports limits data exports per user (ExportsPerHour).
	exports *keyedLimiter
}

// loginsPerAddress is how many times LoginAttemptsPerMinute one address
// may fail to log in per minute, across all the usernames it tries.
const loginsPerAddress = 3

// New returns the REST edge; at may be nil (no uploads).
func New(a *auth.Service, c *chat.Service, at *attach.Service, n *notify.Service, m *moderate.Service, log *slog.Logger, opt Options) *API {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &API{
		auth: a, chat: c, attach: at, notify: n, moderate: m, log: log, opt: opt,
		logins:     perMinute(opt.LoginAttemptsPerMinute, opt.Now),
		register:   perMinute(opt.RegistrationsPerMinute, opt.Now),
		loginAddrs: perMinute(loginsPerAddress*opt.LoginAttemptsPerMinute, opt.Now),
		requests:   newKeyedLimiter(opt.RequestsPerSecond, max(opt.RequestBurst, 1), opt.Now),
		exports:    newKeyedLimiter(float64(ExportsPerHour)/3600, ExportsPerHour, opt.Now),
	}
}

// Routes registers every REST route on e: the one route table.
func (a *API) Routes(e *echo.Echo) {
	e.GET("/healthz", a.handleHealth)
	e.GET("/readyz", a.handleReady)

	g := e.Group("/api")
	g.POST("/auth/register/", a.handleRegister)
	g.POST("/auth/token/", a.handleLogin)
	g.POST("/auth/token/refresh/", a.handleRefresh)
	g.POST("/auth/logout/", a.handleLogout)

	// Everything below needs an access token.
	u := authed{g, a.RequireUser}
	u.route(http.MethodPost, "/auth/ws-ticket/", a.handleTicket)
	u.route(http.MethodGet, "/users/me/", a.handleGetMe)
	u.route(http.MethodPatch, "/users/me/", a.handleUpdateMe)
	u.route(http.MethodDelete, "/users/me/", a.handleDeleteMe)
	u.route(http.MethodGet, "/users/me/export/", a.handleExport)
	u.route(http.MethodGet, "/users/", a.handleSearchUsers)
	u.route(http.MethodGet, "/users/blocked/", a.handleListBlocked)
	u.route(http.MethodPut, "/users/:id/block/", a.handleBlock)
	u.route(http.MethodDelete, "/users/:id/block/", a.handleUnblock)

	u.route(http.MethodGet, "/conversations/", a.handleListConversations)
	u.route(http.MethodPost, "/conversations/", a.handleCreateConversation)
	u.route(http.MethodGet, "/conversations/:id/", a.handleGetConversation)
	u.route(http.MethodPatch, "/conversations/:id/", a.handleRenameConversation)
	u.route(http.MethodGet, "/conversations/:id/participants/", a.handleListParticipants)
	u.route(http.MethodPost, "/conversations/:id/participants/", a.handleAddParticipant)
	u.route(http.MethodDelete, "/conversations/:id/participants/:user_id/", a.handleRemoveParticipant)
	u.route(http.MethodGet, "/conversations/:id/messages/", a.handleListMessages)
	u.route(http.MethodPost, "/conversations/:id/messages/", a.handleSendMessage)
	u.route(http.MethodPost, "/conversations/:id/read/", a.handleMarkRead)
	u.route(http.MethodPatch, "/messages/:id/", a.handleEditMessage)
	u.route(http.MethodDelete, "/messages/:id/", a.handleDeleteMessage)
	u.route(http.MethodGet, "/search/messages/", a.handleSearchMessages)
	u.route(http.MethodPut, "/messages/:id/reactions/:emoji/", a.handleAddReaction)
	u.route(http.MethodDelete, "/messages/:id/reactions/:emoji/", a.handleRemoveReaction)
	u.route(http.MethodGet, "/sync/", a.handleSync)
	u.route(http.MethodPost, "/uploads/", a.handleUpload)
	u.route(http.MethodDelete, "/uploads/:id/", a.handleDeleteUpload)
	// An access token or a signed URL: the handler checks either.
	g.GET("/attachments/:id/", a.handleAttachment(attach.Original))
	g.GET("/attachments/:id/thumbnail/", a.handleAttachment(attach.Thumbnail))

	u.route(http.MethodPost, "/devices/", a.handleRegisterDevice)
	u.route(http.MethodGet, "/devices/", a.handleListDevices)
	u.route(http.MethodDelete, "/devices/:id/", a.handleDeleteDevice)
	u.route(http.MethodGet, "/push/vapid-public-key/", a.handleVAPIDPublicKey)
	u.route(http.MethodPut, "/conversations/:id/notifications/", a.handleSetNotifications)
	u.route(http.MethodGet, "/conversations/:id/notifications/", a.handleGetNotifications)
	u.route(http.MethodGet, "/push/deliveries/", a.handleListDeliveries)

	u.route(http.MethodPost, "/reports/", a.handleCreateReport)
	// Staff only: to anyone else, these routes do not exist (404).
	st := authed{g, func(next echo.HandlerFunc) echo.HandlerFunc { return a.RequireUser(a.RequireStaff(next)) }}
	st.route(http.MethodGet, "/admin/reports/", a.handleListReports)
	st.route(http.MethodPost, "/admin/reports/:id/resolve/", a.handleResolveReport)
	st.route(http.MethodGet, "/admin/users/", a.handleSearchAccounts)
	st.route(http.MethodPost, "/admin/users/:id/deactivate/", a.handleSetActive(false))
	st.route(http.MethodPost, "/admin/users/:id/reactivate/", a.handleSetActive(true))
	st.route(http.MethodGet, "/admin/audit/", a.handleAudit)
}

type authed struct {
	g    *echo.Group
	auth echo.MiddlewareFunc
}

func (r authed) route(method, path string, h echo.HandlerFunc) {
	r.g.Add(method, path, h, r.auth)
}

// TrailingSlash makes /api/... paths work with and without the trailing
// slash: the routes are registered with it, and a request without it is
// rewritten (not redirected, so a POST keeps its body).
func TrailingSlash() echo.MiddlewareFunc {
	return middleware.AddTrailingSlashWithConfig(middleware.TrailingSlashConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/ws/")
		},
	})
}

// RequestTimeout bounds the work of one REST request: its database reads
// and writes, and the wait for its message's group commit (whose own
// deadline is chat.DefaultCommitTimeout, the same 10 s). A request past
// it answers 503 unavailable with Retry-After, so that a database that
// stops answering never holds a client, or a goroutine, longer.
const RequestTimeout = 10 * time.Second

// Deadline gives every request under /api/ a context that ends d after it
// began. Sockets (/ws/) bound their own work per frame.
func Deadline(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if !strings.HasPrefix(r.URL.Path, "/api/") {
				return next(c)
			}
			timeout := d
			if longRequest(r.URL.Path) {
				timeout = UploadTimeout // a file over a slow connection
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			c.SetRequest(r.WithContext(ctx))
			return next(c)
		}
	}
}

// SecurityHeaders sets the headers every response carries. The policy
// allows the console's own scripts and styles and nothing inline.
func SecurityHeaders() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
			return next(c)
		}
	}
}

const userKey = "confab.user"
const claimsKey = "confab.claims"

// RequireUser authenticates the request's Bearer access token.
func (a *API) RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := auth.BearerToken(c.Request())
		if !ok {
			return &chat.Error{Code: chat.CodeNotAuthenticated, Detail: "Authentication credentials were not provided."}
		}
		u, claims, err := a.auth.Authenticate(c.Request().Context(), token)
		if err != nil {
			return err
		}
		c.Set(userKey, u)
		c.Set(claimsKey, claims)
		return next(c)
	}
}

func currentUser(c echo.Context) chat.User { return c.Get(userKey).(chat.User) }

func (a *API) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) handleReady(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := a.opt.Ready(ctx); err != nil {
		a.log.Warn("not ready", "err", err)
		return c.JSON(http.StatusServiceUnavailable, errorBody{Detail: "The database is not answering.", Code: "unavailable"})
	}
	if a.opt.Degraded != nil {
		if why := a.opt.Degraded(); why != "" {
			return c.JSON(http.StatusOK, map[string]string{"status": "degraded", "detail": why})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
