package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleSync answers GET /api/sync/: the changes the caller can see
// after the cursor since, or, without since, the current cursor.
func (a *API) handleSync(c echo.Context) error {
	since, hasSince := c.QueryParams()["since"]
	var cursor string
	if hasSince {
		cursor = since[0]
	}
	page, err := a.chat.Sync(c.Request().Context(), currentUser(c).ID, cursor, hasSince, queryLimit(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}
