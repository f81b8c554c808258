package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/confab/confab/app/api"
	"github.com/confab/confab/app/chat"
)

func TestErrorHandler_Mapping(t *testing.T) {
	sqlErr := errors.New(`SQL logic error: no such column: password_hash in "SELECT password_hash FROM users" (1)`)
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		logged     bool
		retryAfter string
	}{
		{"invalid", chat.InvalidField("content", "blank"), 400, "invalid", false, ""},
		{"not authenticated", &chat.Error{Code: chat.CodeNotAuthenticated, Detail: "no"}, 401, "not_authenticated", false, ""},
		{"token not valid", &chat.Error{Code: chat.CodeTokenNotValid, Detail: "no", Err: sqlErr}, 401, "token_not_valid", false, ""},
		{"forbidden", chat.Errorf(chat.CodeForbidden, "no"), 403, "forbidden", false, ""},
		{"blocked", fmt.Errorf("insert: %w", chat.ErrBlocked), 403, "blocked", false, ""},
		{"not found", chat.ErrNotFound, 404, "not_found", false, ""},
		{"wrapped not found", fmt.Errorf("load: %w", chat.ErrNotFound), 404, "not_found", false, ""},
		{"conflict", chat.Errorf(chat.CodeConflict, "taken"), 409, "conflict", false, ""},
		{"echo 413", echo.ErrStatusRequestEntityTooLarge, 413, "too_large", false, ""},
		{"echo 404", echo.ErrNotFound, 404, "not_found", false, ""},
		{"unavailable", chat.ErrUnavailable, 503, "unavailable", true, "1"},
		{"maybe stored", fmt.Errorf("send: %w", chat.ErrMaybeStored), 503, "unavailable", true, "1"},
		{"request deadline", fmt.Errorf("user by id: %w", context.DeadlineExceeded), 503, "unavailable", true, "1"},
		// Logged by the service once per interval, not per request.
		{"overloaded", fmt.Errorf("send: %w", chat.ErrOverloaded), 503, "overloaded", false, "1"},
		{"storage full", chat.StorageFull(errors.New("database or disk is full (13)")), 507, "storage_full", false, ""},
		{"plain error", fmt.Errorf("insert messages: %w", sqlErr), 500, "internal", true, ""},
		{"internal chat error", &chat.Error{Code: chat.CodeInternal, Detail: "SELECT * FROM users", Err: sqlErr}, 500, "internal", true, ""},
		{"echo 500", echo.NewHTTPError(500, "SELECT secrets"), 500, "internal", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := echo.New()
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodGet, "/api/x/", nil), rec)
			api.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)))(tt.err, c)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			body := rec.Body.String()
			if !strings.Contains(body, `"code":"`+tt.code+`"`) || !strings.Contains(body, `"detail":"`) {
				t.Errorf("body %s, want code %s and a detail", body, tt.code)
			}
			for _, leak := range []string{"SQL", "SELECT", "password_hash"} {
				if strings.Contains(body, leak) {
					t.Errorf("body leaks %q: %s", leak, body)
				}
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if got := logs.Len() > 0; got != tt.logged {
				t.Errorf("logged %v, want %v: %s", got, tt.logged, logs.String())
			}
		})
	}
}

func TestErrorHandler_PanicShowsNoStack(t *testing.T) {
	var logs bytes.Buffer
	e := echo.New()
	e.HTTPErrorHandler = api.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)))
	e.Use(middleware.Recover())
	e.GET("/boom", func(echo.Context) error { panic("SELECT token_hash FROM refresh_tokens") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, "SELECT") || strings.Contains(body, "goroutine") || strings.Contains(body, ".go:") {
		t.Errorf("500 body leaks: %s", body)
	}
	if !strings.Contains(logs.String(), "token_hash") {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
}

// An outage answers every request unavailable: the first is logged, the
// rest of the interval only counted into the next line.
func TestErrorHandler_UnavailableLoggedOncePerInterval(t *testing.T) {
	var logs bytes.Buffer
	h := api.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)))
	e := echo.New()
	for range 50 {
		c := e.NewContext(httptest.NewRequest(http.MethodGet, "/api/users/me/", nil), httptest.NewRecorder())
		h(fmt.Errorf("user by id: %w", chat.ErrUnavailable), c)
		if st := c.Response().Status; st != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", st)
		}
	}
	if n := strings.Count(logs.String(), "requests failed: unavailable"); n != 1 {
		t.Errorf("%d log lines for 50 unavailable answers in one interval, want 1:\n%s", n, logs.String())
	}
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/api/users/me/", nil), httptest.NewRecorder())
	h(errors.New("boom"), c)
	if n := strings.Count(logs.String(), "request failed"); n != 1 {
		t.Errorf("an internal error after them was not logged on its own line:\n%s", logs.String())
	}
}
