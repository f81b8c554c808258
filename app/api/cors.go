package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/confab/confab/app/config"
)

// corsMaxAge is how long a browser may keep a preflight's answer, in
// seconds (Chromium keeps it at most 2 hours).
const corsMaxAge = 600

// CORS lets browser front ends on the origins in allowed (ALLOWED_ORIGINS,
// matched as the sockets match it) call the REST API under /api/: it
// answers their preflights and adds the Access-Control-* headers to their
// requests, errors included. Other origins get none. Credentials are
// Bearer tokens only: no cookies, so Allow-Credentials is never sent.
//
// Install it only when allowed is not empty: with no list, the API is for
// its own host alone, and a preflight keeps its 405.
func CORS(allowed []string) echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			return !strings.HasPrefix(c.Request().URL.Path, "/api/")
		},
		// A func rather than AllowOrigins: Echo would also read "*" inside
		// an entry as a wildcard, which the sockets do not.
		AllowOriginFunc: func(origin string) (bool, error) {
			return config.OriginListed(allowed, origin), nil
		},
		AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType},
		// What a script may read besides the safelisted headers: the wait
		// of a 429 or 503, the id that finds its request in the logs, the
		// methods of a 405, and the scheme of a 401.
		ExposeHeaders:    []string{"Retry-After", echo.HeaderXRequestID, echo.HeaderAllow, echo.HeaderWWWAuthenticate},
		AllowCredentials: false,
		MaxAge:           corsMaxAge,
	})
}
