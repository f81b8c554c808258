package api_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/api"
)

func TestDeadline_WaitingRequestAnswers503(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = api.ErrorHandler(slog.New(slog.DiscardHandler))
	e.Use(api.Deadline(50 * time.Millisecond))
	// What a store call does when the database does not answer: wait
	// for the context, and return its error.
	wait := func(c echo.Context) error {
		<-c.Request().Context().Done()
		return c.Request().Context().Err()
	}
	e.GET("/api/slow/", wait)
	e.GET("/other", func(c echo.Context) error {
		if _, ok := c.Request().Context().Deadline(); ok {
			t.Error("a path outside /api/ got a deadline")
		}
		return c.NoContent(http.StatusNoContent)
	})

	start := time.Now()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/slow/", nil))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("answered after %v, want about 50ms", took)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("status %d, Retry-After %q: want 503 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}

	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/other", nil))
	if rec.Code != http.StatusNoContent {
		t.Errorf("/other: %d", rec.Code)
	}
}
