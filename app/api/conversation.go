package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
)

func (a *API) handleListConversations(c echo.Context) error {
	list, err := a.chat.Conversations(c.Request().Context(), currentUser(c).ID, queryLimit(c), c.QueryParam("before"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *API) handleListParticipants(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	list, err := a.chat.Participants(c.Request().Context(), currentUser(c).ID, id, queryLimit(c), c.QueryParam("after"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

// queryLimit reads the limit of a page for the service, which checks it
// along with the cursor: 0 when absent (the default page size), -1 (out of
// range) for anything that is not a positive integer.
func queryLimit(c echo.Context) int {
	s := c.QueryParam("limit")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return -1
	}
	return n
}

func (a *API) handleCreateConversation(c echo.Context) error {
	var in struct {
		ParticipantIDs *[]int64 `json:"participant_ids"`
		Title          *string  `json:"title"`
		IsGroup        *bool    `json:"is_group"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.ParticipantIDs == nil {
		return chat.InvalidField("participant_ids", "This field is required.")
	}
	conv, created, err := a.chat.CreateConversation(c.Request().Context(), currentUser(c).ID,
		*in.ParticipantIDs, deref(in.Title), in.IsGroup != nil && *in.IsGroup)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, conv)
}

func (a *API) handleGetConversation(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	conv, err := a.chat.Conversation(c.Request().Context(), currentUser(c).ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conv)
}

func (a *API) handleRenameConversation(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Title *string `json:"title"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Title == nil {
		return chat.InvalidField("title", "This field is required.")
	}
	conv, err := a.chat.RenameConversation(c.Request().Context(), currentUser(c).ID, id, *in.Title)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conv)
}

func (a *API) handleAddParticipant(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		UserID *int64 `json:"user_id"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.UserID == nil {
		return chat.InvalidField("user_id", "This field is required.")
	}
	p, err := a.chat.AddParticipant(c.Request().Context(), currentUser(c).ID, id, *in.UserID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (a *API) handleRemoveParticipant(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	userID, err := pathID(c, "user_id")
	if err != nil {
		return err
	}
	if err := a.chat.RemoveParticipant(c.Request().Context(), currentUser(c).ID, id, userID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
