package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
)

func (a *API) handleListConversations(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	list, err := a.chat.Conversations(c.Request().Context(), currentUser(c).ID, limit, c.QueryParam("before"))
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
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	list, err := a.chat.Participants(c.Request().Context(), currentUser(c).ID, id, limit, c.QueryParam("after"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

// queryLimit reads the limit of a page: 0 when absent, which the service
// takes as its default; the service checks the range.
func queryLimit(c echo.Context) (int, error) {
	if c.QueryParam("limit") == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(c.QueryParam("limit"))
	if err != nil || n == 0 {
		return 0, chat.InvalidField("limit", fmt.Sprintf("Must be an integer between 1 and %d.", chat.MaxPageSize))
	}
	return n, nil
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
