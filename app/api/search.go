package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleSearchMessages answers GET /api/search/messages/: q, and
// optionally conversation_id, limit and before (a cursor). The rules of a
// question (length, page size, cursor) are the service's.
func (a *API) handleSearchMessages(c echo.Context) error {
	convID, err := queryInt(c, "conversation_id")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil || (c.QueryParam("limit") != "" && limit == 0) {
		limit = -1 // out of range: the service says which range
	}
	res, err := a.chat.SearchMessages(c.Request().Context(), currentUser(c).ID,
		c.QueryParam("q"), convID, int(limit), c.QueryParam("before"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
