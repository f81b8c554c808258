package api

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
)

func (a *API) handleListMessages(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	q, err := pageQuery(c)
	if err != nil {
		return err
	}
	page, err := a.chat.Messages(c.Request().Context(), currentUser(c).ID, id, q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// pageQuery reads limit (1–100, default 50), before and after.
func pageQuery(c echo.Context) (chat.PageQuery, error) {
	v := chat.Invalid{}
	var q chat.PageQuery
	limit, err := queryInt(c, "limit")
	if err != nil || (c.QueryParam("limit") != "" && (limit < 1 || limit > 100)) {
		v.Add("limit", "Must be an integer between 1 and 100.")
	}
	q.Limit = int(limit)
	if q.Before, err = queryInt(c, "before"); err != nil {
		v.Add("before", "Must be a message id.")
	}
	if q.After, err = queryInt(c, "after"); err != nil {
		v.Add("after", "Must be a message id.")
	}
	return q, v.Err()
}

func (a *API) handleSendMessage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Content       *string `json:"content"`
		ClientID      *string `json:"client_id"`
		ReplyToID     *int64  `json:"reply_to_id"`
		AttachmentIDs []int64 `json:"attachment_ids"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Content == nil && len(in.AttachmentIDs) == 0 {
		return chat.InvalidField("content", "This field is required.")
	}
	var replyTo int64
	if in.ReplyToID != nil {
		replyTo = *in.ReplyToID
	}
	s, err := a.chat.Send(c.Request().Context(), currentUser(c).Lite(), id, deref(in.Content), deref(in.ClientID), replyTo, in.AttachmentIDs...)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !s.Created {
		status = http.StatusOK
	}
	return c.JSONBlob(status, s.JSON) // encoded once by the service, for the event too
}

func (a *API) handleMarkRead(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		MessageID *int64 `json:"message_id"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.MessageID == nil {
		return chat.InvalidField("message_id", "This field is required.")
	}
	mark, err := a.chat.MarkRead(c.Request().Context(), currentUser(c).ID, id, *in.MessageID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, mark)
}

func (a *API) handleEditMessage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Content *string `json:"content"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Content == nil {
		return chat.InvalidField("content", "This field is required.")
	}
	m, err := a.chat.EditMessage(c.Request().Context(), currentUser(c).ID, id, *in.Content)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (a *API) handleDeleteMessage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := a.chat.DeleteMessage(c.Request().Context(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) handleAddReaction(c echo.Context) error    { return a.react(c, true) }
func (a *API) handleRemoveReaction(c echo.Context) error { return a.react(c, false) }

// react adds or removes the caller's reaction named in the path and
// answers with the message.
func (a *API) react(c echo.Context, add bool) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	emoji, err := pathEmoji(c)
	if err != nil {
		return err
	}
	m, err := a.chat.React(c.Request().Context(), currentUser(c).Lite(), id, emoji, add)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// pathEmoji reads the path's emoji. The router matches the escaped path
// when the request's escaping is not Go's own (lower-case hex, say), and
// its parameters are then still escaped.
func pathEmoji(c echo.Context) (string, error) {
	e := c.Param("emoji")
	if c.Request().URL.RawPath == "" {
		return e, nil
	}
	u, err := url.PathUnescape(e)
	if err != nil {
		return "", chat.InvalidField("emoji", "Must be one emoji.")
	}
	return u, nil
}
