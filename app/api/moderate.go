package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/moderate"
)

// me is the caller's own profile: a user, and whether they are staff,
// which no one else but staff is told.
type me struct {
	chat.User
	IsStaff bool `json:"is_staff"`
}

// reportAnswer is a report as its reporter sees it.
type reportAnswer struct {
	ID        int64      `json:"id"`
	Status    string     `json:"status"`
	CreatedAt chat.Time  `json:"created_at"`
	MessageID chat.OptID `json:"message_id"`
	UserID    chat.OptID `json:"user_id"`
	Reason    string     `json:"reason"`
	Note      string     `json:"note"`
}

func (a *API) handleCreateReport(c echo.Context) error {
	var in struct {
		MessageID *int64  `json:"message_id"`
		UserID    *int64  `json:"user_id"`
		Reason    *string `json:"reason"`
		Note      *string `json:"note"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	var msgID, userID int64
	if in.MessageID != nil {
		msgID = *in.MessageID
		if msgID <= 0 {
			return chat.InvalidField("message_id", "Must be a message id.")
		}
	}
	if in.UserID != nil {
		userID = *in.UserID
		if userID <= 0 {
			return chat.InvalidField("user_id", "Must be a user id.")
		}
	}
	r, created, err := a.moderate.Report(c.Request().Context(), currentUser(c).ID, msgID, userID, deref(in.Reason), deref(in.Note))
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, answerReport(r))
}

func answerReport(r moderate.Report) reportAnswer {
	return reportAnswer{ID: r.ID, Status: r.Status, CreatedAt: chat.Time{Time: r.CreatedAt},
		MessageID: chat.OptID(r.MessageID), UserID: chat.OptID(r.UserID), Reason: r.Reason, Note: r.Note}
}

const staffKey = "confab.staff"

// RequireStaff lets staff through, after RequireUser, and answers
// everyone else as if the route did not exist (404).
func (a *API) RequireStaff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		actor, err := a.moderate.Staff(c.Request().Context(), currentUser(c).ID)
		if err != nil {
			return err
		}
		c.Set(staffKey, actor)
		return next(c)
	}
}

func currentStaff(c echo.Context) moderate.Actor { return c.Get(staffKey).(moderate.Actor) }

func (a *API) handleListReports(c echo.Context) error {
	status := c.QueryParam("status")
	if status == "" {
		status = moderate.StatusOpen
	}
	list, err := a.moderate.Reports(c.Request().Context(), status, queryLimit(c), c.QueryParam("before"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *API) handleResolveReport(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Action *string `json:"action"`
		Note   *string `json:"note"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	v, err := a.moderate.Resolve(c.Request().Context(), currentStaff(c), id, deref(in.Action), deref(in.Note))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (a *API) handleSetActive(active bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var in struct {
			Reason *string `json:"reason"`
		}
		if err := bind(c, &in); err != nil {
			return err
		}
		acc, err := a.moderate.SetActive(c.Request().Context(), currentStaff(c), id, active, deref(in.Reason))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, acc)
	}
}

func (a *API) handleSearchAccounts(c echo.Context) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	if c.QueryParam("limit") != "" && limit == 0 {
		return chat.InvalidField("limit", "Must be between 1 and 100.")
	}
	list, err := a.moderate.SearchAccounts(c.Request().Context(), c.QueryParam("search"), int(min(limit, 1000)))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *API) handleAudit(c echo.Context) error {
	list, err := a.moderate.Audit(c.Request().Context(), queryLimit(c), c.QueryParam("before"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}
