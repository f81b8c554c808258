package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
)

// errorBody is the contract's error shape.
type errorBody struct {
	Detail string              `json:"detail"`
	Code   string              `json:"code"`
	Fields map[string][]string `json:"fields,omitempty"`
}

// retryServiceUnavailable is the Retry-After of every 503, in seconds:
// unavailable (shutting down, the database out of reach) is worth asking
// again soon, from this node or another; overloaded (a queue that was
// full) drains within about a second unless the disk has stalled, and
// then a retry is refused at once, cheaply.
const retryServiceUnavailable = "1"

// rateLimited is a 429 with its Retry-After.
type rateLimited struct{ after time.Duration }

func (e *rateLimited) Error() string { return "rate limited" }

// Status maps an error code to its HTTP status: the one place this happens.
func Status(code chat.Code) int {
	switch code {
	case chat.CodeInvalid, chat.CodeImageTooLarge, chat.CodeInvalidImage:
		return http.StatusBadRequest
	case chat.CodeNotAuthenticated, chat.CodeTokenNotValid, chat.CodeAccountDisabled:
		return http.StatusUnauthorized
	case chat.CodeForbidden, chat.CodeBlocked, chat.CodeSignature:
		return http.StatusForbidden
	case chat.CodeNotFound:
		return http.StatusNotFound
	case chat.CodeConflict:
		return http.StatusConflict
	case chat.CodeTooLarge, chat.CodeQuota:
		return http.StatusRequestEntityTooLarge
	case chat.CodeRateLimited:
		return http.StatusTooManyRequests
	case chat.CodeUnavailable, chat.CodeOverloaded, chat.CodeUploadsOff:
		return http.StatusServiceUnavailable
	case chat.CodeStorageFull:
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

// ErrorHandler writes every error as {"detail","code","fields"} and logs
// only what the client cannot be told: internal errors never reach the
// body.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	// An outage (the database out of reach) answers every request
	// unavailable: it is logged once per interval, with the count, not
	// once per request.
	var unavailable chat.Throttle
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		body, status := toBody(err)
		var rl *rateLimited
		if errors.As(err, &rl) {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rl.after.Seconds()))))
		}
		if status == http.StatusServiceUnavailable && body.Code != string(chat.CodeUploadsOff) {
			// (A server that keeps no files will not in a second.)
			c.Response().Header().Set("Retry-After", retryServiceUnavailable)
		}
		if status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		}
		if status >= 500 && !loggedAtSource(err) {
			attrs := []any{"err", err, "method", c.Request().Method,
				"path", c.Request().URL.Path, "request_id", c.Response().Header().Get(echo.HeaderXRequestID)}
			if body.Code != string(chat.CodeUnavailable) {
				log.Error("request failed", attrs...)
			} else if n, ok := unavailable.Note(); ok {
				log.Error("requests failed: unavailable", append(attrs, "count", n)...)
			}
		}
		if c.Request().Method == http.MethodHead {
			c.NoContent(status)
			return
		}
		c.JSON(status, body)
	}
}

// loggedAtSource reports whether err is a failure the service logs
// itself, at most once per interval with a count (overloaded,
// storage_full): they come at the rate clients send, and one line per
// request would flood the log when it can least take it.
func loggedAtSource(err error) bool {
	code := chat.ErrorCode(err)
	return code == chat.CodeOverloaded || code == chat.CodeStorageFull
}

func toBody(err error) (errorBody, int) {
	var rl *rateLimited
	if errors.As(err, &rl) {
		return errorBody{Detail: "Request was throttled. Expected available in " +
			strconv.Itoa(int(math.Ceil(rl.after.Seconds()))) + " seconds.", Code: string(chat.CodeRateLimited)}, http.StatusTooManyRequests
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return errorBody{Detail: "Not found.", Code: "not_found"}, he.Code
		case http.StatusMethodNotAllowed:
			return errorBody{Detail: "Method not allowed.", Code: "method_not_allowed"}, he.Code
		case http.StatusRequestEntityTooLarge:
			return errorBody{Detail: "Request body is too large.", Code: string(chat.CodeTooLarge)}, he.Code
		case http.StatusRequestTimeout:
			return errorBody{Detail: "The request took too long to arrive.", Code: "request_timeout"}, he.Code
		case http.StatusUnsupportedMediaType:
			return errorBody{Detail: "Unsupported media type.", Code: "unsupported_media_type"}, he.Code
		}
		if he.Code < 500 {
			msg, _ := he.Message.(string)
			if msg == "" {
				msg = http.StatusText(he.Code)
			}
			return errorBody{Detail: msg, Code: "error"}, he.Code
		}
		return errorBody{Detail: "A server error occurred.", Code: string(chat.CodeInternal)}, http.StatusInternalServerError
	}
	var ce *chat.Error
	if !errors.As(err, &ce) && errors.Is(err, context.DeadlineExceeded) {
		// The request's own deadline (Deadline) passed before whatever
		// it waited for answered.
		ce = chat.ErrTimedOut
	}
	if ce != nil {
		status := Status(ce.Code)
		if status == http.StatusInternalServerError { // its detail may say what only the log should
			return errorBody{Detail: "A server error occurred.", Code: string(chat.CodeInternal)}, status
		}
		return errorBody{Detail: ce.Detail, Code: string(ce.Code), Fields: ce.Fields}, status
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errorBody{Detail: "Malformed JSON.", Code: string(chat.CodeInvalid),
			Fields: map[string][]string{"non_field_errors": {"Malformed JSON."}}}, http.StatusBadRequest
	}
	return errorBody{Detail: "A server error occurred.", Code: string(chat.CodeInternal)}, http.StatusInternalServerError
}
