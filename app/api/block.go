package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleBlock is PUT /api/users/{id}/block/: 204, also when already
// blocked.
func (a *API) handleBlock(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := a.chat.Block(c.Request().Context(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleUnblock is DELETE /api/users/{id}/block/: 204, also when not
// blocked.
func (a *API) handleUnblock(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := a.chat.Unblock(c.Request().Context(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleListBlocked is GET /api/users/blocked/: the caller's block list.
func (a *API) handleListBlocked(c echo.Context) error {
	users, err := a.chat.BlockedUsers(c.Request().Context(), currentUser(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"results": users})
}
