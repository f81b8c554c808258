package api

import (
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// secretParams are query parameters whose values never reach a log.
var secretParams = []string{"token", "ticket", "access", "refresh", "password"}

// RedactQuery returns rawQuery with every secret parameter's value
// replaced by REDACTED. A query that does not parse is dropped whole.
func RedactQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "REDACTED"
	}
	for k := range q {
		for _, s := range secretParams {
			if strings.EqualFold(k, s) {
				q[k] = []string{"REDACTED"}
			}
		}
	}
	return q.Encode()
}

// AccessLog logs one line per request, with the query redacted.
func AccessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the error now so the status is known
			}
			r := c.Request()
			attrs := []any{
				"method", r.Method,
				"path", r.URL.Path,
				"status", c.Response().Status,
				"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
				"remote_ip", c.RealIP(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			}
			if q := RedactQuery(r.URL.RawQuery); q != "" {
				attrs = append(attrs, "query", q)
			}
			log.Info("request", attrs...)
			return nil
		}
	}
}
