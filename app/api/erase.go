package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/auth"
	"github.com/confab/confab/app/chat"
)

// ExportsPerHour is how many exports one user may download per hour
// (per node): each reads everything they ever sent.
const ExportsPerHour = 3

// handleDeleteMe deletes the caller's account, once they give their
// password again (docs/API.md, "Deleting an account").
func (a *API) handleDeleteMe(c echo.Context) error {
	var in struct {
		Password *string `json:"password"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Password == nil {
		return chat.InvalidField("password", "This field is required.")
	}
	ctx := c.Request().Context()
	u := currentUser(c)
	// Wrong passwords count as failed logins of the account: a stolen
	// access token is no way round the login's limit.
	addr := c.RealIP()
	key := addr + "\x00" + strings.ToLower(u.Username)
	if r := a.logins.begin(key); r.wait > 0 {
		return limited(ctx, r)
	}
	err := a.auth.CheckPassword(ctx, u.ID, *in.Password)
	a.logins.end(key, err == auth.ErrWrongPassword)
	if err != nil {
		return err
	}
	if err := a.chat.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// exportDevice is a device as the export lists it: what the user can
// recognise, never its token or keys.
type exportDevice struct {
	ID        int64     `json:"id"`
	Platform  string    `json:"platform"`
	CreatedAt chat.Time `json:"created_at"`
}

// exportHead is the export before its messages: everything but them,
// read before the first byte is sent, so that a failure is still a
// clean error.
type exportHead struct {
	Format        string                    `json:"format"`
	ExportedAt    chat.Time                 `json:"exported_at"`
	User          chat.User                 `json:"user"`
	Conversations []chat.ExportConversation `json:"conversations"`
	Devices       []exportDevice            `json:"devices"`
	// Blocks are the users the user blocks, the most recently blocked
	// first; Reports the reports they made, as they saw them.
	Blocks  []chat.User    `json:"blocks"`
	Reports []reportAnswer `json:"reports"`
}

// exportChunk is how many messages one read of an export takes.
const exportChunk = 1000

// handleExport downloads everything Confab keeps about the caller as
// one JSON file: the head (exportHead), then "messages", every message
// they sent, streamed a chunk at a time.
func (a *API) handleExport(c echo.Context) error {
	ctx := c.Request().Context()
	u := currentUser(c)
	if r := a.exports.allow(strconv.FormatInt(u.ID, 10)); r.wait > 0 {
		return limited(ctx, r)
	}
	now := a.opt.Now()
	head := exportHead{Format: "confab-export-1", ExportedAt: chat.Time{Time: now}, User: u, Devices: []exportDevice{}}
	var err error
	if head.Conversations, err = a.chat.ExportConversations(ctx, u.ID); err != nil {
		return err
	}
	devices, err := a.notify.Devices(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		head.Devices = append(head.Devices, exportDevice{ID: d.ID, Platform: d.Platform, CreatedAt: chat.Time{Time: d.CreatedAt}})
	}
	if head.Blocks, err = a.chat.BlockedUsers(ctx, u.ID); err != nil {
		return err
	}
	if head.Blocks == nil {
		head.Blocks = []chat.User{}
	}
	reports, err := a.moderate.ReportsBy(ctx, u.ID)
	if err != nil {
		return err
	}
	head.Reports = make([]reportAnswer, 0, len(reports))
	for _, r := range reports {
		head.Reports = append(head.Reports, answerReport(r))
	}
	ids, err := a.chat.SentMessageIDs(ctx, u.ID)
	if err != nil {
		return err
	}
	first, err := a.chat.ExportMessages(ctx, ids[:min(len(ids), exportChunk)])
	if err != nil {
		return err
	}
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="confab-%s-%s.json"`, u.Username, now.UTC().Format("2006-01-02")))
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	w := c.Response()
	w.Write(b[:len(b)-1]) // the head without its closing brace
	w.Write([]byte(`,"messages":[`))
	enc := json.NewEncoder(w)
	msgs, n := first, 0
	for {
		for i := range msgs {
			if n > 0 {
				w.Write([]byte{','})
			}
			n++
			if err := enc.Encode(&msgs[i]); err != nil {
				return nil // the client went away
			}
		}
		ids = ids[min(len(ids), exportChunk):]
		if len(ids) == 0 {
			break
		}
		if msgs, err = a.chat.ExportMessages(ctx, ids[:min(len(ids), exportChunk)]); err != nil {
			// Too late for an error body: the file ends here, not
			// valid JSON, so that nobody takes it for the whole.
			a.log.Error("export messages", "err", err, "user_id", u.ID)
			return nil
		}
	}
	w.Write([]byte("]}\n"))
	return nil
}
