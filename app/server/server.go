// Package server assembles a Confab server from its parts: the SQLite
// store, the hub, the auth and chat services, and the REST, WebSocket and
// console edges. main and the integration tests both build it here, so the
// tests exercise exactly what ships.
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/confab/confab/app/api"
	"github.com/confab/confab/app/attach"
	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/blob"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/cluster"
	"github.com/confab/confab/app/config"
	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/metrics"
	"github.com/confab/confab/app/moderate"
	"github.com/confab/confab/app/notify"
	"github.com/confab/confab/app/push/apns"
	"github.com/confab/confab/app/push/fcm"
	"github.com/confab/confab/app/push/webpush"
	"github.com/confab/confab/app/webhook"
	"github.com/confab/confab/app/ws"
	"github.com/confab/confab/db"
	"github.com/confab/confab/db/postgres"
	"github.com/confab/confab/web"
)

// Options are settings that are not part of the deployment's
// configuration: tests use them to run fast.
type Options struct {
	// PasswordCost is the bcrypt cost; zero means auth.DefaultCost.
	PasswordCost int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Cluster tunes the Redis link when REDIS_URL is set (tests shorten
	// its timings and isolate their keys).
	Cluster cluster.Options
	// WrapStore, when set, wraps the store the services use (the
	// readiness probe and Close keep the store itself): tests put faults
	// there, such as a commit that stalls. Nil: the store itself.
	WrapStore func(chat.Store) chat.Store
	// RequestTimeout bounds each /api/ request; zero means
	// api.RequestTimeout. Tests under the race detector, where a password
	// hash takes ten times its usual CPU, give it more room.
	RequestTimeout time.Duration
	// APNsClient is the HTTP/2 client APNs is reached with; nil: one
	// that trusts the system's roots (tests pass their stand-in's).
	APNsClient *http.Client
	// Webhooks tunes the webhook dispatcher when WEBHOOK_URL is set
	// (tests shorten its timings and watch its results); its MaxAge,
	// Retention and Log come from the configuration. Now, when nil, is
	// the server's.
	Webhooks notify.WebhookOptions
}

// presenceTimeout bounds announcing that a user went offline when their
// node stopped.
const presenceTimeout = 10 * time.Second

// Store is what the server needs of a database: SQLite (db.Store) or
// Postgres (postgres.Store).
type Store interface {
	chat.Store
	attach.Store
	notify.Store
	notify.Outbox
	notify.WebhookOutbox
	moderate.Store
	Close() error
}

// Server is one running Confab node.
type Server struct {
	Config config.Config
	Log    *slog.Logger
	Store  Store
	Hub    *hub.Hub
	// Cluster links the node to the others through Redis; nil for a
	// single node.
	Cluster *cluster.Cluster
	Auth    *auth.Service
	Chat    *chat.Service
	// Attach is the attachments' service: uploads, files and their
	// collector.
	Attach *attach.Service
	// Files is where attachments' files are kept; nil when a server of
	// several nodes has no object store (uploads are refused).
	Files blob.Store
	// stopCollector stops the attachments' collector (Close).
	stopCollector context.CancelFunc
	// Notify keeps devices and mutes.
	Notify *notify.Service
	// Moderate keeps reports, staff and the audit log.
	Moderate *moderate.Service
	// VAPID is the Web Push key pair: VAPID_PRIVATE_KEY, or one
	// generated once and kept in the database.
	VAPID webpush.Keys
	// Push decides and sends push notifications for new messages, from
	// goroutines of its own (stopped by Close).
	Push *notify.Dispatcher
	// Webhooks sends the webhook events to WEBHOOK_URL, from goroutines
	// of its own (stopped by Close); nil when WEBHOOK_URL is unset.
	Webhooks *notify.Webhooks
	// Metrics is the server's Prometheus registry and instruments.
	Metrics *metrics.Metrics
	WS      *ws.Handler
	echo    *echo.Echo
	api     *api.API
	// requestTimeout bounds each /api/ request (Options.RequestTimeout).
	requestTimeout time.Duration
}

// New opens the database (applying migrations) and builds the server.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opt Options) (*Server, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		// Generated once and kept in the database, so that tokens
		// survive restarts without any setting.
		fresh := make([]byte, 32)
		rand.Read(fresh)
		if secret, err = store.Setting(ctx, "jwt_secret", fresh); err != nil {
			store.Close()
			return nil, err
		}
	}
	// Attachments' URLs are signed with a key derived from the token
	// secret, and work for an hour or two.
	signer := attach.NewSigner(secret, time.Hour, opt.Now)
	files, filesOff, err := openFiles(ctx, cfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	vapid, err := vapidKeys(ctx, cfg, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	providers, err := pushProviders(cfg, vapid, opt.APNsClient)
	if err != nil {
		store.Close()
		return nil, err
	}
	var (
		hopt hub.Options
		cl   *cluster.Cluster
		// m is built below, once the hub and the cluster it reports on
		// exist, and before Start runs the loop that observes hops.
		m *metrics.Metrics
		// svc is the chat service, built after m, which reports on it.
		svc *chat.Service
	)
	if cfg.RedisURL != "" {
		copt := opt.Cluster
		copt.Log = log
		copt.ObserveHop = func(d time.Duration) { m.ObserveHop(d) }
		if cl, err = cluster.New(cfg.RedisURL, copt); err != nil {
			store.Close()
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		hopt = hub.Options{Broker: cl, Presence: cl, Sequence: chat.Sequence(store, signer.Sign)}
	}
	h := hub.New(hopt)
	mopt := metrics.Options{HubStats: h.Stats, QueuedSends: func() int { return svc.Queued() },
		PendingDeliveries: store.PendingDeliveries}
	if cfg.WebhookURL != "" {
		mopt.PendingDeliveries = webhookPending(store)
	}
	if cl != nil {
		mopt.OrderStats, mopt.ClusterStats = h.OrderStats, clusterStats(cl)
	}
	m = metrics.New(mopt)
	var used chat.Store = store
	if opt.WrapStore != nil {
		used = opt.WrapStore(store)
	}
	var classify func(error) error
	if _, ok := store.(*postgres.Store); ok {
		classify = postgres.Unavailable // an outage answers 503, not 500
	}
	timed := timeStore(m, used, classify) // every service call to the database is timed
	// Pushes follow the committed messages; presence is the hub's, which
	// asks the other nodes through Redis when there are some. Each group
	// commit nudges the dispatcher, which otherwise polls ever less often
	// while idle.
	dispatcher := notify.NewDispatcher(store, h, notify.DispatchOptions{
		Preview: cfg.PushPreview, Providers: providers, Retention: cfg.PushRetention, Grace: cfg.PushDelay,
		Delivery: m.Delivery, Now: opt.Now, Log: log})
	authOpt := auth.Options{Now: opt.Now}
	chatOpt := chat.Options{Now: opt.Now, Log: log, ObserveSend: m.ObserveSend,
		QueueSize: cfg.CommitQueue, Refused: m.SendRefused, AttachmentURLs: signer.Sign,
		Committed: dispatcher.Nudge, UsernameReservedFor: cfg.DeletedUsernameReservedFor}
	if cl != nil {
		authOpt.Tickets = cl
		chatOpt.SharedStore = true
	}
	// A password change closes the other sessions' sockets through the
	// hub, so on every node.
	chatSvc := chat.NewService(timed, h, chatOpt)
	authOpt.SessionsRevoked = chatSvc.SessionsRevoked
	s := &Server{
		Config:  cfg,
		Log:     log,
		Store:   store,
		Hub:     h,
		Cluster: cl,
		Auth: auth.NewService(timed, auth.NewHasher(opt.PasswordCost, auth.HashLimit{
			Concurrent: cfg.PasswordHashConcurrency, Waiting: cfg.PasswordHashQueue}),
			auth.NewTokens(secret, cfg.AccessTokenTTL, cfg.RefreshTokenTTL, opt.Now), authOpt),
		Chat: chatSvc,
		Notify: notify.NewService(classifyNotify(store, classify), notify.Options{
			Allowed: cfg.WebPushAllowed, VAPIDPublicKey: vapid.Public(), Now: opt.Now}),
		VAPID:   vapid,
		Metrics: m,

		requestTimeout: cmp.Or(opt.RequestTimeout, api.RequestTimeout),
	}
	svc = s.Chat
	s.Files = files
	s.Attach = attach.New(store, files, s.Chat.CheckMember, signer, attach.Options{
		MaxBytes: cfg.MaxUploadBytes, Quota: cfg.UploadQuotaBytes, PerMinute: cfg.UploadsPerMinute,
		MaxPixels: cfg.UploadMaxPixels, Grace: cfg.UploadGrace, Off: filesOff, Now: opt.Now, Log: log,
	})
	if files != nil {
		cctx, stop := context.WithCancel(context.Background())
		s.stopCollector = stop
		go s.Attach.Run(cctx)
	}
	aopt := api.Options{
		RegistrationsPerMinute: cfg.RegistrationsPerMinute,
		LoginAttemptsPerMinute: cfg.LoginAttemptsPerMinute,
		RequestsPerSecond:      float64(cfg.RequestsPerSecond),
		RequestBurst:           cfg.RequestBurst,
		Ready:                  store.Ping,
		Now:                    opt.Now,
		MaxUploadBytes:         cfg.MaxUploadBytes,
	}
	if cl != nil {
		aopt.Degraded = func() string {
			if cl.Healthy() {
				return ""
			}
			return "Redis is not answering: each node serves only its own sockets until it does."
		}
		cl.Start(h, func(userID int64, status string) {
			ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
			defer cancel()
			if err := s.Chat.Presence(ctx, userID, status); err != nil {
				log.Warn("presence", "err", err, "user_id", userID, "status", status)
			}
		})
	}
	s.Moderate = moderate.NewService(classifyModerate(store, classify), timed, s.Chat, moderate.Options{Now: opt.Now, Log: log})
	s.api = api.New(s.Auth, s.Chat, s.Attach, s.Notify, s.Moderate, log, aopt)
	s.WS = ws.New(ws.Options{
		Auth:                s.Auth,
		Chat:                s.Chat,
		Hub:                 h,
		Log:                 log,
		Metrics:             m,
		AllowedOrigins:      cfg.AllowedOrigins,
		PingInterval:        cfg.WSPingInterval,
		PongTimeout:         cfg.WSPongTimeout,
		WriteDelay:          cfg.WSWriteDelay,
		MaxFrameBytes:       cfg.MaxBodyBytes,
		FramesPerSecond:     cfg.WSFramesPerSecond,
		FrameBurst:          cfg.WSFrameBurst,
		UserFramesPerSecond: cfg.WSUserFramesPerSecond,
		UserFrameBurst:      cfg.WSUserFrameBurst,
		QueueSize:           cfg.WSSendQueue,
		MaxJoined:           cfg.WSMaxJoined,
		MaxConnsPerIP:       cfg.WSMaxConnsPerIP,
		MaxConnsPerUser:     cfg.WSMaxConnsPerUser,
		ClientIP:            s.clientIP,
		Now:                 opt.Now,
	})
	s.echo = s.routes()
	s.Push = dispatcher
	s.Push.Start()
	if cfg.WebhookURL != "" {
		wopt := opt.Webhooks
		wopt.MaxAge, wopt.Retention, wopt.Log = cfg.WebhookMaxAge, cfg.WebhookRetention, log
		if wopt.Now == nil {
			wopt.Now = opt.Now
		}
		if onResult := wopt.OnResult; onResult != nil {
			wopt.OnResult = func(r string) { m.Delivery("webhook", r); onResult(r) }
		} else {
			wopt.OnResult = func(r string) { m.Delivery("webhook", r) }
		}
		s.Webhooks = notify.NewWebhooks(store, webhook.NewSender(cfg.WebhookURL, cfg.WebhookSecret, nil), wopt)
		s.Webhooks.Start()
	}
	return s, nil
}

// pushProviders returns the push senders the configuration enables, by
// platform: Web Push always (the VAPID keys always exist), FCM with
// FCM_CREDENTIALS_FILE, APNs with APNS_KEY_FILE. A platform left out has
// its deliveries failed with an error naming the setting.
func pushProviders(cfg config.Config, vapid webpush.Keys, apnsClient *http.Client) (map[string]notify.Provider, error) {
	providers := map[string]notify.Provider{
		notify.PlatformWebPush: notify.WebPush(webpush.NewSender(vapid, cfg.VAPIDSubject, cfg.WebPushAllowed, nil)),
	}
	if cfg.FCMCredentialsFile != "" {
		data, err := os.ReadFile(cfg.FCMCredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("FCM_CREDENTIALS_FILE: %w", err)
		}
		creds, err := fcm.ParseCredentials(data)
		if err != nil {
			return nil, fmt.Errorf("FCM_CREDENTIALS_FILE: %w", err)
		}
		providers[notify.PlatformFCM] = notify.FCM(fcm.NewSender(creds, cfg.FCMBaseURL, nil))
	}
	if cfg.APNsKeyFile != "" {
		data, err := os.ReadFile(cfg.APNsKeyFile)
		if err != nil {
			return nil, fmt.Errorf("APNS_KEY_FILE: %w", err)
		}
		key, err := apns.ParseKey(data)
		if err != nil {
			return nil, fmt.Errorf("APNS_KEY_FILE: %w", err)
		}
		providers[notify.PlatformAPNs] = notify.APNs(apns.NewSender(key, cfg.APNsKeyID, cfg.APNsTeamID, cfg.APNsTopic, cfg.APNsBaseURL, apnsClient))
	}
	return providers, nil
}

// vapidKeys returns the VAPID key pair of VAPID_PRIVATE_KEY, or else the
// one generated the first time and kept in the database (settings
// "vapid_private_key"): browsers subscribed with its public key, so it
// must survive restarts and be the same on every node.
func vapidKeys(ctx context.Context, cfg config.Config, store Store) (webpush.Keys, error) {
	if cfg.VAPIDPrivateKey != "" {
		k, err := webpush.ParseKeys(cfg.VAPIDPrivateKey)
		if err != nil { // config.Load checked it; kept for callers that did not
			return webpush.Keys{}, fmt.Errorf("VAPID_PRIVATE_KEY: %w", err)
		}
		return k, nil
	}
	fresh, err := webpush.GenerateKeys()
	if err != nil {
		return webpush.Keys{}, err
	}
	kept, err := store.Setting(ctx, "vapid_private_key", []byte(fresh.Private()))
	if err != nil {
		return webpush.Keys{}, err
	}
	k, err := webpush.ParseKeys(string(kept))
	if err != nil {
		return webpush.Keys{}, fmt.Errorf("the VAPID key kept in the database: %w", err)
	}
	return k, nil
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = api.ErrorHandler(s.Log)
	if s.Config.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	// First of all, before routing: every answer Echo writes carries the
	// security headers, the router's own 404s and 405s and whatever a
	// later middleware refuses included, whatever order those come in.
	e.Pre(api.SecurityHeaders())
	e.Pre(api.TrailingSlash())
	e.Use(middleware.RequestID())
	e.Use(observeRequests(s.Metrics)) // outside the access log: it sees the written status
	e.Use(api.AccessLog(s.Log))
	e.Use(middleware.Recover())
	if len(s.Config.AllowedOrigins) > 0 {
		// Before anything that may refuse a request, so that a refusal
		// (413, 429) carries the headers a front end needs to read it.
		e.Use(api.CORS(s.Config.AllowedOrigins))
	}
	e.Use(s.api.LimitRequests())
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: fmt.Sprintf("%dB", s.Config.MaxBodyBytes),
		// Files have their own limit, MAX_UPLOAD_BYTES, which the upload
		// route applies as it reads them.
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == "/api/uploads/" },
	}))
	e.Use(api.Deadline(s.requestTimeout))

	s.api.Routes(e)
	e.GET("/api/openapi.json/", api.HandleOpenAPI) // the trailing-slash rewrite adds the slash
	e.GET("/metrics", metricsRoute(s.Metrics, s.Config.MetricsToken))
	e.GET("/ws/chat/", func(c echo.Context) error {
		s.WS.ServeChat(c.Response(), c.Request())
		return nil
	})
	e.GET("/ws/conversations/:id/", func(c echo.Context) error {
		s.WS.ServeConversation(c.Response(), c.Request(), c.Param("id"))
		return nil
	})
	e.GET("/healthz/", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/healthz") })
	e.GET("/readyz/", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/readyz") })
	methodNotAllowed(e)
	notFound := func(echo.Context) error { return chat.ErrNotFound }
	e.Any("/api/*", notFound)
	e.Any("/ws/*", notFound)

	console := echo.WrapHandler(http.FileServerFS(web.FS()))
	e.GET("/*", console)
	e.HEAD("/*", console)
	return e
}

// methodNotAllowed answers 405, with Allow, for a method that a known API
// path does not take (DRF does the same), instead of the catch-all's 404.
func methodNotAllowed(e *echo.Echo) {
	allowed := map[string][]string{}
	var paths []string
	for _, r := range e.Routes() {
		// Staff routes answer 404 to every method they do not take, as
		// they do to everyone but staff: a 405 would tell they exist.
		if !strings.HasPrefix(r.Path, "/api/") || strings.HasPrefix(r.Path, "/api/admin/") {
			continue
		}
		if allowed[r.Path] == nil {
			paths = append(paths, r.Path)
		}
		allowed[r.Path] = append(allowed[r.Path], r.Method)
	}
	all := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions}
	for _, path := range paths {
		methods := allowed[path]
		var others []string
		for _, m := range all {
			if !slices.Contains(methods, m) && !(m == http.MethodHead && slices.Contains(methods, http.MethodGet)) {
				others = append(others, m)
			}
		}
		var ordered []string // the Allow header lists them in a fixed order
		for _, m := range all {
			if slices.Contains(methods, m) {
				ordered = append(ordered, m)
			}
		}
		allow := strings.Join(ordered, ", ")
		routes := e.Match(others, path, func(c echo.Context) error {
			// An id that is not an id names no route at all.
			for _, name := range c.ParamNames() {
				if id, err := strconv.ParseInt(c.Param(name), 10, 64); err != nil || id <= 0 {
					return chat.ErrNotFound
				}
			}
			c.Response().Header().Set("Allow", allow)
			return echo.ErrMethodNotAllowed
		})
		for _, r := range routes {
			r.Name = MethodNotAllowedRoute
		}
	}
}

// MethodNotAllowedRoute names the routes that only answer 405.
const MethodNotAllowedRoute = "confab.method_not_allowed"

// clientIP is the client address as the REST edge sees it (TRUST_PROXY
// aware), for the socket limits.
func (s *Server) clientIP(r *http.Request) string { return s.echo.IPExtractor(r) }

// HTTPServer returns the http.Server that serves Confab, with the
// timeouts that keep slow clients from holding connections: a client must
// send its headers within HTTP_READ_HEADER_TIMEOUT and its whole request
// within HTTP_READ_TIMEOUT (sockets set their own deadlines once
// upgraded).
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.Config.ReadHeaderTimeout,
		ReadTimeout:       s.Config.ReadTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
	}
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close closes every socket (1001), stops the services and closes the
// database (checkpointing the WAL). Call it after the HTTP server has
// stopped taking requests.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	werr := s.WS.Shutdown(ctx)
	// Before the hub and the store it asks: sends in flight are given up
	// (and retried after a restart).
	s.Push.Close()
	if s.Webhooks != nil {
		s.Webhooks.Close()
	}
	var cerr error
	if s.Cluster != nil {
		cerr = s.Cluster.Close()
	}
	s.Chat.Close()
	s.Hub.Close()
	if s.stopCollector != nil {
		s.stopCollector()
	}
	return errors.Join(werr, cerr, s.Store.Close())
}

// openFiles opens where attachments' files are kept: the object store of
// S3_ENDPOINT, else for one node (SQLite) the folder FILES_PATH. A
// server of several nodes (DATABASE_URL) without an object store keeps
// no files: off says why, for the uploads it refuses.
func openFiles(ctx context.Context, cfg config.Config) (files blob.Store, off string, err error) {
	switch {
	case cfg.S3Endpoint != "":
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s3, err := blob.OpenS3(sctx, blob.S3Config{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket,
			AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Region: cfg.S3Region, Prefix: cfg.S3Prefix})
		if err != nil {
			return nil, "", fmt.Errorf("S3_ENDPOINT: %w", err)
		}
		return s3, "", nil
	case cfg.DatabaseURL != "":
		return nil, "This server runs on several nodes and has no object store for files: " +
			"its operator sets S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY and S3_SECRET_KEY to accept uploads.", nil
	default:
		dir, err := blob.OpenDir(cfg.Files())
		if err != nil {
			return nil, "", fmt.Errorf("FILES_PATH: %w", err)
		}
		return dir, "", nil
	}
}

// OpenStore opens Postgres at DATABASE_URL when set, else SQLite at
// DATABASE_PATH, applying pending migrations. With WEBHOOK_URL set, its
// writes keep the webhook events WEBHOOK_EVENTS chooses.
func OpenStore(ctx context.Context, cfg config.Config) (Store, error) {
	var st Store
	var err error
	if cfg.DatabaseURL != "" {
		st, err = postgres.Open(ctx, cfg.DatabaseURL)
	} else {
		st, err = db.Open(ctx, cfg.DatabasePath)
	}
	if err != nil {
		return nil, err
	}
	if cfg.WebhookURL != "" {
		// Before any write: the changes' transactions write the events
		// (those of `confab createuser` too, which a server sends).
		st.SetWebhookEvents(webhook.NewSet(cfg.WebhookEvents))
	}
	return st, nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully within
// Config.ShutdownTimeout: it stops accepting, finishes in-flight requests,
// and closes the database.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer()
	hs.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.Log.Info("serving", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.Log.Info("shutting down", "timeout", s.Config.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	// Sockets are hijacked connections that http.Server.Shutdown does not
	// track: close them (1001) alongside, so clients start reconnecting
	// while the last requests finish.
	wsDone := make(chan error, 1)
	go func() { wsDone <- s.WS.Shutdown(sctx) }()
	err := hs.Shutdown(sctx)
	if werr := <-wsDone; werr != nil {
		s.Log.Warn("sockets still open at the deadline", "err", werr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	<-errc
	if cerr := s.Close(); cerr != nil {
		return cerr
	}
	s.Log.Info("stopped")
	return nil
}

// webhookPending counts the outbox's pending pushes by provider and its
// pending webhook events as provider "webhook", for
// confab_deliveries_pending.
func webhookPending(store Store) func(ctx context.Context) (map[string]int, error) {
	return func(ctx context.Context) (map[string]int, error) {
		n, err := store.PendingDeliveries(ctx)
		if err != nil {
			return nil, err
		}
		w, err := store.PendingWebhooks(ctx)
		if err != nil {
			return nil, err
		}
		n["webhook"] = w
		return n, nil
	}
}
