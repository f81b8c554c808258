package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/notify"
)

// device is a device as its owner sees it: never its token nor its keys,
// which are the means to send to it.
type device struct {
	ID        int64     `json:"id"`
	Platform  string    `json:"platform"`
	CreatedAt chat.Time `json:"created_at"`
}

func deviceOf(d notify.Device) device {
	return device{ID: d.ID, Platform: d.Platform, CreatedAt: chat.Time{Time: d.CreatedAt}}
}

func (a *API) handleRegisterDevice(c echo.Context) error {
	var in struct {
		Platform     string               `json:"platform"`
		Token        string               `json:"token"`
		Subscription *notify.Subscription `json:"subscription"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	d, created, err := a.notify.Register(c.Request().Context(), currentUser(c).ID,
		notify.Registration{Platform: in.Platform, Token: in.Token, Subscription: in.Subscription})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, deviceOf(d))
}

func (a *API) handleListDevices(c echo.Context) error {
	list, err := a.notify.Devices(c.Request().Context(), currentUser(c).ID)
	if err != nil {
		return err
	}
	out := make([]device, len(list))
	for i, d := range list {
		out[i] = deviceOf(d)
	}
	return c.JSON(http.StatusOK, map[string][]device{"results": out})
}

func (a *API) handleDeleteDevice(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := a.notify.DeleteDevice(c.Request().Context(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) handleVAPIDPublicKey(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"public_key": a.notify.VAPIDPublicKey()})
}

func (a *API) handleSetNotifications(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		MutedUntil json.RawMessage `json:"muted_until"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.MutedUntil == nil {
		return chat.InvalidField("muted_until", "This field is required.")
	}
	m, err := notify.ParseMute(in.MutedUntil)
	if err != nil {
		return err
	}
	if m, err = a.notify.SetMuted(c.Request().Context(), currentUser(c).ID, id, m); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		ConversationID int64       `json:"conversation_id"`
		MutedUntil     notify.Mute `json:"muted_until"`
	}{id, m})
}

func (a *API) handleGetNotifications(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, err := a.notify.Muted(c.Request().Context(), currentUser(c).ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		ConversationID int64       `json:"conversation_id"`
		MutedUntil     notify.Mute `json:"muted_until"`
	}{id, m})
}

// sent is a delivery as its user's outbox lists it.
type sent struct {
	ID             int64      `json:"id"`
	DeviceID       int64      `json:"device_id"`
	Platform       string     `json:"platform"`
	ConversationID int64      `json:"conversation_id"`
	MessageID      int64      `json:"message_id"`
	State          string     `json:"state"`
	Attempts       int        `json:"attempts"`
	LastError      *string    `json:"last_error"`
	CreatedAt      chat.Time  `json:"created_at"`
	UpdatedAt      chat.Time  `json:"updated_at"`
	NextAt         *chat.Time `json:"next_at"`
}

func (a *API) handleListDeliveries(c echo.Context) error {
	limit := queryLimit(c)
	o, err := a.notify.Deliveries(c.Request().Context(), currentUser(c).ID, limit)
	if err != nil {
		return err
	}
	counts := map[string]int{notify.DeliveryPending: 0, notify.DeliverySent: 0, notify.DeliveryFailed: 0}
	for state, n := range o.Counts {
		counts[state] = n
	}
	out := make([]sent, len(o.Latest))
	for i, d := range o.Latest {
		out[i] = sent{ID: d.ID, DeviceID: d.DeviceID, Platform: d.Platform, ConversationID: d.ConversationID,
			MessageID: d.MessageID, State: d.State, Attempts: d.Attempts,
			CreatedAt: chat.Time{Time: d.CreatedAt}, UpdatedAt: chat.Time{Time: d.UpdatedAt}}
		if d.LastError != "" {
			out[i].LastError = &d.LastError
		}
		if d.State == notify.DeliveryPending {
			out[i].NextAt = &chat.Time{Time: d.NextAt}
		}
	}
	return c.JSON(http.StatusOK, struct {
		Counts  map[string]int `json:"counts"`
		Results []sent         `json:"results"`
	}{counts, out})
}
