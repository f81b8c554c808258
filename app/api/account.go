package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
)

type credentials struct {
	Username    *string `json:"username"`
	Password    *string `json:"password"`
	DisplayName *string `json:"display_name"`
}

func (cr credentials) require() error {
	v := chat.Invalid{}
	required(v, "username", cr.Username != nil)
	required(v, "password", cr.Password != nil)
	return v.Err()
}

type loginResponse struct {
	User chat.User `json:"user"`
	auth.Pair
}

func (a *API) handleRegister(c echo.Context) error {
	if r := a.register.allow(c.RealIP()); r.wait > 0 {
		return limited(c.Request().Context(), r)
	}
	var in credentials
	if err := bind(c, &in); err != nil {
		return err
	}
	if err := in.require(); err != nil {
		return err
	}
	u, pair, err := a.auth.Register(c.Request().Context(), *in.Username, *in.Password, deref(in.DisplayName))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, loginResponse{User: u, Pair: pair})
}

func (a *API) handleLogin(c echo.Context) error {
	var in credentials
	if err := bind(c, &in); err != nil {
		return err
	}
	if err := in.require(); err != nil {
		return err
	}
	// Failed logins are limited per address and username, so that one
	// guesser cannot lock everyone out of an account from elsewhere.
	// A looser limit per address alone bounds the hashing one address can
	// cause by guessing at many usernames.
	addr := c.RealIP()
	key := addr + "\x00" + strings.ToLower(*in.Username)
	if r := a.loginAddrs.begin(addr); r.wait > 0 {
		return limited(c.Request().Context(), r)
	}
	if r := a.logins.begin(key); r.wait > 0 {
		a.loginAddrs.end(addr, false)
		return limited(c.Request().Context(), r)
	}
	failed := false
	defer func() {
		a.logins.end(key, failed)
		a.loginAddrs.end(addr, failed)
	}()
	u, pair, err := a.auth.Login(c.Request().Context(), *in.Username, *in.Password)
	if err != nil {
		failed = err == auth.ErrBadCredentials
		return err
	}
	return c.JSON(http.StatusOK, loginResponse{User: u, Pair: pair})
}

type refreshRequest struct {
	Refresh *string `json:"refresh"`
}

func (a *API) readRefresh(c echo.Context) (string, error) {
	var in refreshRequest
	if err := bind(c, &in); err != nil {
		return "", err
	}
	if in.Refresh == nil || *in.Refresh == "" {
		return "", chat.InvalidField("refresh", "This field is required.")
	}
	return *in.Refresh, nil
}

func (a *API) handleRefresh(c echo.Context) error {
	token, err := a.readRefresh(c)
	if err != nil {
		return err
	}
	pair, err := a.auth.Refresh(c.Request().Context(), token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pair)
}

func (a *API) handleLogout(c echo.Context) error {
	token, err := a.readRefresh(c)
	if err != nil {
		return err
	}
	if err := a.auth.Logout(c.Request().Context(), token); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) handleTicket(c echo.Context) error {
	t, err := a.auth.IssueTicket(c.Request().Context(), c.Get(claimsKey).(auth.Claims))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ticket": t, "expires_in": int(auth.TicketTTL.Seconds())})
}

func (a *API) handleGetMe(c echo.Context) error {
	return a.answerMe(c)
}

// answerMe answers the caller's own profile, is_staff included.
func (a *API) answerMe(c echo.Context) error {
	ctx := c.Request().Context()
	u, err := a.chat.User(ctx, currentUser(c).ID)
	if err != nil {
		return err
	}
	_, err = a.moderate.Staff(ctx, u.ID)
	if err != nil && chat.ErrorCode(err) != chat.CodeNotFound {
		return err
	}
	return c.JSON(http.StatusOK, me{User: u, IsStaff: err == nil})
}

func (a *API) handleUpdateMe(c echo.Context) error {
	var in struct {
		DisplayName *string `json:"display_name"`
		Password    *string `json:"password"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// A new password ends every session but this one.
	sid := c.Get(claimsKey).(auth.Claims).SID
	if _, err := a.auth.UpdateMe(ctx, currentUser(c).ID, sid, in.DisplayName, in.Password); err != nil {
		return err
	}
	return a.answerMe(c)
}

func (a *API) handleSearchUsers(c echo.Context) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	if c.QueryParam("limit") != "" && limit == 0 {
		return chat.InvalidField("limit", "Must be between 1 and 100.")
	}
	users, err := a.chat.SearchUsers(c.Request().Context(), c.QueryParam("search"), int(limit))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"results": users})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
