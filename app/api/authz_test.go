package api_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/hub"
	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
)

// The callers of the authorization matrix: the owner (the group's admin,
// author of its first message), a participant (a plain member), a user
// who is in neither conversation, a staff member (in neither either:
// staff moderate, they do not read along), a participant of the group
// whose account staff deactivated (with an access token issued before),
// a user the owner blocks (in neither conversation either, but in a
// direct one with the owner and admin of a group of their own), and
// three ways of holding no valid access token.
const (
	asOwner       = "owner"
	asParticipant = "participant"
	asOther       = "other user"
	asStaff       = "staff"
	asDeactivated = "deactivated user"
	asBlocked     = "blocked user"
	asNoToken     = "no token"
	asExpired     = "expired token"
	asRefresh     = "refresh token"
	asDeleted     = "deleted user"
)

var roles = []string{asNoToken, asExpired, asRefresh, asDeleted, asDeactivated, asOther, asStaff, asBlocked, asParticipant, asOwner}

// azWorld is one fresh server for one row of the matrix.
type azWorld struct {
	s                           *servertest.Server
	owner, member, other, third servertest.User
	staff, gone                 servertest.User // gone: deactivated, a participant of the group
	expired                     string          // the owner's first access token, now expired
	deleted                     servertest.User // a member of the group who deleted their account
	blocked                     servertest.User // the owner blocks them
	group, direct               int64
	ownerMsg, memberMsg         int64 // in the group
	directMsg                   int64 // the member's, in the direct conversation
	attachment                  int64 // an image the owner sent to the group
	unsent                      int64 // a file the owner uploaded and has not sent
	device                      int64 // the owner's phone
	thirdMsg                    int64 // the third's, in the group
	report                      int64 // the participant's report of the third's message
	blockedDirect               int64 // the blocked user's with the owner, from before the block
	blockedGroup                int64 // the blocked user's, with the member and the third user
	events                      *recorder
}

func newAZWorld(t *testing.T) *azWorld {
	t.Helper()
	clk := newClock()
	s := servertest.Start(t, servertest.WithNow(clk.Now))
	w := &azWorld{s: s, owner: s.Register(t, "owner"), member: s.Register(t, "member"),
		other: s.Register(t, "other"), third: s.Register(t, "third"), staff: s.Staff(t, "staff"), gone: s.Register(t, "gone"),
		deleted: s.Register(t, "deleted"), blocked: s.Register(t, "blocked")}
	w.group = s.Conversation(t, w.owner, w.member, w.third, w.gone, w.deleted)
	s.Send(t, w.deleted, w.group, "before I went")
	w.direct = s.Conversation(t, w.owner, w.member)
	w.ownerMsg = s.Send(t, w.owner, w.group, "the owner's")
	w.memberMsg = s.Send(t, w.member, w.group, "the member's")
	w.directMsg = s.Send(t, w.member, w.direct, "the member's, direct")
	w.thirdMsg = s.Send(t, w.third, w.group, "the third's")
	r0 := s.Do(t, http.MethodPost, "/api/reports/", w.member.Access, map[string]any{"message_id": w.thirdMsg, "reason": "spam"})
	wantStatus(t, r0, http.StatusCreated)
	w.report = num(r0.Map(t)["id"])
	w.attachment = s.Upload(t, w.owner, "photo.png", pngImage(t, 40, 30))
	s.SendAttached(t, w.owner, w.group, "a photo", w.attachment)
	w.unsent = s.Upload(t, w.owner, "draft.txt", []byte("not sent yet"))
	r := s.Do(t, http.MethodPost, "/api/devices/", w.owner.Access, map[string]string{"platform": "fcm", "token": "owner-phone"})
	wantStatus(t, r, http.StatusCreated)
	w.device = num(r.Map(t)["id"])
	w.blockedDirect = s.Conversation(t, w.blocked, w.owner)
	s.Send(t, w.blocked, w.blockedDirect, "before the block")
	w.blockedGroup = s.Conversation(t, w.blocked, w.member, w.third)
	wantStatus(t, s.Do(t, http.MethodPut, p("/api/users/%d/block/", w.blocked.ID), w.owner.Access, nil), http.StatusNoContent)

	// Past the 15-minute access lifetime: the first tokens are expired,
	// and everyone logs in again.
	w.expired = w.owner.Access
	clk.Advance(16 * time.Minute)
	for _, u := range []*servertest.User{&w.owner, &w.member, &w.other, &w.third, &w.staff, &w.gone, &w.deleted, &w.blocked} {
		r := s.Do(t, http.MethodPost, "/api/auth/token/", "", map[string]string{"username": u.Username, "password": servertest.Password})
		wantStatus(t, r, http.StatusOK)
		m := r.Map(t)
		u.Access, u.Refresh = m["access"].(string), m["refresh"].(string)
	}
	// Deactivated with a fresh access token in hand: the account, not
	// the token, is what is refused.
	wantStatus(t, s.Do(t, http.MethodPost, p("/api/admin/users/%d/deactivate/", w.gone.ID), w.staff.Access,
		map[string]string{"reason": "matrix"}), http.StatusOK)
	// Its tokens are fresh: only the deletion makes them worthless.
	wantStatus(t, s.Do(t, http.MethodDelete, "/api/users/me/", w.deleted.Access, map[string]string{"password": servertest.Password}),
		http.StatusNoContent)
	w.events = &recorder{}
	for _, topic := range []hub.Topic{hub.ConversationTopic(w.group), hub.ConversationTopic(w.direct),
		hub.ConversationTopic(w.blockedDirect), hub.ConversationTopic(w.blockedGroup),
		hub.UserTopic(w.owner.ID), hub.UserTopic(w.member.ID), hub.UserTopic(w.other.ID), hub.UserTopic(w.third.ID),
		hub.UserTopic(w.staff.ID), hub.UserTopic(w.gone.ID), hub.UserTopic(w.blocked.ID)} {
		s.Hub.Subscribe(topic, w.events)
	}
	return w
}

// token is what a caller of role sends as its Bearer token, and who it is.
func (w *azWorld) token(role string) (string, servertest.User) {
	switch role {
	case asOwner:
		return w.owner.Access, w.owner
	case asParticipant:
		return w.member.Access, w.member
	case asOther:
		return w.other.Access, w.other
	case asStaff:
		return w.staff.Access, w.staff
	case asDeactivated:
		return w.gone.Access, w.gone
	case asBlocked:
		return w.blocked.Access, w.blocked
	case asExpired:
		return w.expired, w.owner
	case asRefresh:
		return w.owner.Refresh, w.owner
	case asDeleted:
		return w.deleted.Access, w.deleted
	}
	return "", w.member
}

// snapshot is everything a request could change, as text.
func (w *azWorld) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	sqlDB := w.s.DB(t)
	for _, q := range []string{
		`SELECT id, title, is_group, updated_at, last_message_id FROM conversations ORDER BY id`,
		`SELECT conversation_id, user_id, role, last_read_message_id, muted_until FROM participants ORDER BY conversation_id, user_id`,
		`SELECT id, conversation_id, sender_id, content, edited_at, deleted_at FROM messages ORDER BY id`,
		`SELECT id, username, display_name, password_hash, is_staff, deactivated_at, token_epoch FROM users ORDER BY id`,
		`SELECT id, reporter_id, message_id, user_id, reason, status, action, resolved_by FROM reports ORDER BY id`,
		`SELECT id, actor_id, action, target_type, target_id, report_id, reason FROM audit_log ORDER BY id`,
		`SELECT message_id, emoji, user_id FROM reactions ORDER BY message_id, emoji, user_id`,
		`SELECT id, owner_id, message_id, conversation_id, sha256 FROM uploads ORDER BY id`,
		`SELECT id, user_id, platform, token, p256dh, auth, created_at, updated_at FROM devices ORDER BY id`,
		`SELECT blocker_id, blocked_id, created_at FROM blocks ORDER BY blocker_id, blocked_id`,
	} {
		rows, err := sqlDB.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "%q ", v)
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

// azRow is one route of the matrix: how to call it as a caller, and what
// each role gets. A role missing from want is refused with 401 (no valid
// access token), or 404 (the other user, for anything inside a
// conversation they are not in).
type azRow struct {
	method string
	// path and body for the caller u.
	path func(w *azWorld, u servertest.User) string
	body func(w *azWorld) any
	want map[string]int
	// scoped: a non-participant must get exactly a missing id's 404.
	scoped bool
	note   string // tells rows of one route apart
	// code is the refusal's code for every role refused, when not the
	// role's usual one (forbidden, or blocked for the blocked user).
	code string
}

// route is the row's route as the route table spells it.
func (r azRow) route() string {
	path, _, _ := strings.Cut(r.path(&azWorld{}, servertest.User{}), "?")
	return idPattern(routeKey(r.method, path))
}

func fixed(format string, ids ...func(w *azWorld) int64) func(w *azWorld, u servertest.User) string {
	return func(w *azWorld, _ servertest.User) string {
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id(w)
		}
		return fmt.Sprintf(format, args...)
	}
}

func group(w *azWorld) int64         { return w.group }
func direct(w *azWorld) int64        { return w.direct }
func ownerMsg(w *azWorld) int64      { return w.ownerMsg }
func memberMsg(w *azWorld) int64     { return w.memberMsg }
func directMsg(w *azWorld) int64     { return w.directMsg }
func third(w *azWorld) int64         { return w.third.ID }
func attachment(w *azWorld) int64    { return w.attachment }
func unsent(w *azWorld) int64        { return w.unsent }
func device(w *azWorld) int64        { return w.device }
func thirdMsg(w *azWorld) int64      { return w.thirdMsg }
func theReport(w *azWorld) int64     { return w.report }
func deactivated(w *azWorld) int64   { return w.gone.ID }
func blockedDirect(w *azWorld) int64 { return w.blockedDirect }
func blockedGroup(w *azWorld) int64  { return w.blockedGroup }
func blockedUser(w *azWorld) int64   { return w.blocked.ID }

func noBody(*azWorld) any { return nil }

func body(v any) func(*azWorld) any { return func(*azWorld) any { return v } }

const (
	ok      = http.StatusOK
	created = http.StatusCreated
	gone    = http.StatusNoContent
	refused = http.StatusForbidden
)

// everyone is the answer of a route any signed-in user may call.
func everyone(status int) map[string]int {
	return map[string]int{asOwner: status, asParticipant: status, asOther: status, asStaff: status, asBlocked: status}
}

// but is want with the answers of some roles changed.
func but(want map[string]int, role string, status int, more ...any) map[string]int {
	out := map[string]int{role: status}
	for i := 0; i+1 < len(more); i += 2 {
		out[more[i].(string)] = more[i+1].(int)
	}
	for k, v := range want {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// staffOnly is the answer of a staff route: to anyone else it does not
// exist.
func staffOnly(status int) map[string]int { return map[string]int{asStaff: status} }

func azRows() []azRow {
	return []azRow{
		{method: http.MethodPost, path: fixed("/api/auth/ws-ticket/"), body: noBody, want: everyone(ok)},
		{method: http.MethodGet, path: fixed("/api/users/me/"), body: noBody, want: everyone(ok)},
		{method: http.MethodPatch, path: fixed("/api/users/me/"), body: body(map[string]string{"display_name": "Renamed"}), want: everyone(ok)},
		{method: http.MethodGet, path: fixed("/api/users/me/export/"), body: noBody, want: everyone(ok)},
		// Each deletes their own account, with its password; a wrong one
		// is refused and changes nothing.
		{method: http.MethodDelete, path: fixed("/api/users/me/"), body: body(map[string]string{"password": servertest.Password}),
			want: everyone(gone), note: "right password"},
		{method: http.MethodDelete, path: fixed("/api/users/me/"), body: body(map[string]string{"password": "not the password"}),
			want: map[string]int{asOwner: refused, asParticipant: refused, asOther: refused, asStaff: refused, asBlocked: refused}, note: "wrong password",
			scoped: true, code: "forbidden"}, // nobody may: a refusal for everyone
		{method: http.MethodGet, path: fixed("/api/users/?search=o"), body: noBody, want: everyone(ok)},
		{method: http.MethodGet, path: fixed("/api/conversations/"), body: noBody, want: everyone(ok)},
		{method: http.MethodGet, path: fixed("/api/sync/"), body: noBody, want: everyone(ok), note: "each their own feed"},
		{method: http.MethodPost, path: fixed("/api/conversations/"), body: func(w *azWorld) any {
			return map[string]any{"participant_ids": []int64{w.third.ID, w.other.ID}, "is_group": true}
		}, want: everyone(created)},

		{method: http.MethodGet, path: fixed("/api/conversations/%d/", group), body: noBody, scoped: true, note: "group",
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodGet, path: fixed("/api/conversations/%d/", direct), body: noBody, scoped: true, note: "direct",
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodGet, path: fixed("/api/conversations/%d/participants/", group), body: noBody, scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodPatch, path: fixed("/api/conversations/%d/", group), body: body(map[string]string{"title": "mine now"}), scoped: true, note: "group",
			want: map[string]int{asOwner: ok, asParticipant: refused}},
		{method: http.MethodPatch, path: fixed("/api/conversations/%d/", direct), body: body(map[string]string{"title": "mine now"}), scoped: true, note: "direct",
			want: map[string]int{asOwner: refused, asParticipant: refused}},
		{method: http.MethodPost, path: fixed("/api/conversations/%d/participants/", group), scoped: true, note: "group",
			body: func(w *azWorld) any { return map[string]any{"user_id": w.other.ID} },
			want: map[string]int{asOwner: created, asParticipant: refused}},
		{method: http.MethodPost, path: fixed("/api/conversations/%d/participants/", direct), scoped: true, note: "direct",
			body: func(w *azWorld) any { return map[string]any{"user_id": w.other.ID} },
			want: map[string]int{asOwner: refused, asParticipant: refused}},
		{method: http.MethodDelete, path: fixed("/api/conversations/%d/participants/%d/", group, third), body: noBody, scoped: true, note: "someone else",
			want: map[string]int{asOwner: gone, asParticipant: refused}},
		{method: http.MethodDelete, path: func(w *azWorld, u servertest.User) string {
			return p("/api/conversations/%d/participants/%d/", w.group, u.ID)
		}, body: noBody, scoped: true, note: "oneself", want: map[string]int{asOwner: gone, asParticipant: gone}},
		{method: http.MethodGet, path: fixed("/api/conversations/%d/messages/", group), body: noBody, scoped: true, note: "group",
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodGet, path: fixed("/api/conversations/%d/messages/", direct), body: noBody, scoped: true, note: "direct",
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodPost, path: fixed("/api/conversations/%d/messages/", group), body: body(map[string]string{"content": "hello"}), scoped: true,
			want: map[string]int{asOwner: created, asParticipant: created}},
		{method: http.MethodPost, path: fixed("/api/conversations/%d/read/", group), scoped: true,
			body: func(w *azWorld) any { return map[string]any{"message_id": w.memberMsg} },
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodPatch, path: fixed("/api/messages/%d/", ownerMsg), body: body(map[string]string{"content": "edited"}), scoped: true, note: "the owner's",
			want: map[string]int{asOwner: ok, asParticipant: refused}},
		{method: http.MethodPatch, path: fixed("/api/messages/%d/", memberMsg), body: body(map[string]string{"content": "edited"}), scoped: true, note: "the participant's",
			want: map[string]int{asOwner: refused, asParticipant: ok}},
		{method: http.MethodDelete, path: fixed("/api/messages/%d/", ownerMsg), body: noBody, scoped: true, note: "the owner's",
			want: map[string]int{asOwner: gone, asParticipant: refused}},
		// A group admin may delete anyone's message (the author first,
		// then the admin again: a harmless 204); a direct conversation
		// has no admin.
		{method: http.MethodDelete, path: fixed("/api/messages/%d/", memberMsg), body: noBody, scoped: true, note: "the participant's in the group",
			want: map[string]int{asParticipant: gone, asOwner: gone}},
		{method: http.MethodDelete, path: fixed("/api/messages/%d/", directMsg), body: noBody, scoped: true, note: "the participant's in a direct one",
			want: map[string]int{asOwner: refused, asParticipant: gone}},
		// Search: anyone, in their own conversations; one conversation
		// only by its participants.
		{method: http.MethodGet, path: fixed("/api/search/messages/?q=the"), body: noBody, note: "everywhere", want: everyone(ok)},
		{method: http.MethodGet, path: fixed("/api/search/messages/?q=the&conversation_id=%d", group), body: noBody, scoped: true, note: "one conversation",
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		// Any participant reacts to any message of theirs, and takes
		// back their own reaction (a removal of none is a harmless 200).
		{method: http.MethodPut, path: fixed("/api/messages/%d/reactions/%%F0%%9F%%91%%8D/", memberMsg), body: noBody, scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodDelete, path: fixed("/api/messages/%d/reactions/%%F0%%9F%%91%%8D/", memberMsg), body: noBody, scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		// Anyone uploads (a file of their own until they send it); an
		// attached file is read by the participants of its conversation.
		{method: http.MethodPost, path: fixed("/api/uploads/?name=notes.txt"), body: body(map[string]string{"a": "file"}), want: everyone(created)},
		// An upload is taken back by its uploader only, before it is sent.
		{method: http.MethodDelete, path: fixed("/api/uploads/%d/", unsent), body: noBody, scoped: true, note: "not sent",
			want: map[string]int{asOwner: gone}},
		{method: http.MethodGet, path: fixed("/api/attachments/%d/", attachment), body: noBody, scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodGet, path: fixed("/api/attachments/%d/thumbnail/", attachment), body: noBody, scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		// Devices are each user's own: anyone registers and lists theirs
		// (the same token registered by each in turn moves to each), and
		// deletes only theirs. Mutes are per participant.
		{method: http.MethodPost, path: fixed("/api/devices/"), body: body(map[string]string{"platform": "apns", "token": "passed-around"}),
			want: everyone(created)},
		{method: http.MethodGet, path: fixed("/api/devices/"), body: noBody, want: everyone(ok)},
		{method: http.MethodDelete, path: fixed("/api/devices/%d/", device), body: noBody, scoped: true,
			want: map[string]int{asOwner: gone}},
		{method: http.MethodGet, path: fixed("/api/push/vapid-public-key/"), body: noBody, want: everyone(ok)},
		{method: http.MethodPut, path: fixed("/api/conversations/%d/notifications/", group), body: body(map[string]string{"muted_until": "forever"}), scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		{method: http.MethodGet, path: fixed("/api/conversations/%d/notifications/", group), body: noBody, scoped: true,
			want: map[string]int{asOwner: ok, asParticipant: ok}},
		// Anyone reads their own push outbox, and only theirs.
		{method: http.MethodGet, path: fixed("/api/push/deliveries/"), body: noBody, want: everyone(ok)},
		// Reports: of a message, by those who see it; of a user, by
		// anyone.
		{method: http.MethodPost, path: fixed("/api/reports/"), scoped: true, note: "a message",
			body: func(w *azWorld) any { return map[string]any{"message_id": w.thirdMsg, "reason": "abuse"} },
			want: map[string]int{asOwner: created, asParticipant: ok}}, // the participant's report is there already
		{method: http.MethodPost, path: fixed("/api/reports/"), note: "a user",
			body: func(w *azWorld) any { return map[string]any{"user_id": w.third.ID, "reason": "other"} }, want: everyone(created)},
		// Staff routes: staff only, a 404 to everyone else.
		{method: http.MethodGet, path: fixed("/api/admin/reports/"), body: noBody, scoped: true, want: staffOnly(ok)},
		{method: http.MethodPost, path: fixed("/api/admin/reports/%d/resolve/", theReport), body: body(map[string]string{"action": "dismiss"}), scoped: true,
			want: staffOnly(ok)},
		{method: http.MethodGet, path: fixed("/api/admin/users/?search=o"), body: noBody, scoped: true, want: staffOnly(ok)},
		{method: http.MethodPost, path: fixed("/api/admin/users/%d/deactivate/", third), body: body(map[string]string{"reason": "matrix"}), scoped: true,
			want: staffOnly(ok)},
		{method: http.MethodPost, path: fixed("/api/admin/users/%d/reactivate/", deactivated), body: body(map[string]string{"reason": "matrix"}), scoped: true,
			want: staffOnly(ok)},
		{method: http.MethodGet, path: fixed("/api/admin/audit/"), body: noBody, scoped: true, want: staffOnly(ok)},

		// Blocks: anyone blocks and unblocks anyone but themselves, and
		// reads only their own list.
		{method: http.MethodPut, path: fixed("/api/users/%d/block/", third), body: noBody, want: everyone(gone)},
		{method: http.MethodPut, path: fixed("/api/users/%d/block/", blockedUser), body: noBody, note: "the blocked user",
			want: but(everyone(gone), asBlocked, http.StatusBadRequest)},
		{method: http.MethodDelete, path: fixed("/api/users/%d/block/", blockedUser), body: noBody, note: "the owner's block",
			want: but(everyone(gone), asBlocked, http.StatusBadRequest)},
		{method: http.MethodGet, path: fixed("/api/users/blocked/"), body: noBody, want: everyone(ok)},
		// What the blocked user may not do to the owner (403 blocked),
		// and what everyone else still may.
		{method: http.MethodPost, path: fixed("/api/conversations/%d/messages/", blockedDirect), body: body(map[string]string{"content": "let me"}), scoped: true,
			note: "the blocked user's direct one", want: map[string]int{asOwner: created, asBlocked: refused}},
		{method: http.MethodPost, path: fixed("/api/conversations/"), note: "direct with the owner",
			body: func(w *azWorld) any { return map[string]any{"participant_ids": []int64{w.owner.ID}} },
			want: map[string]int{asOwner: http.StatusBadRequest, asParticipant: ok, asOther: created, asStaff: created, asBlocked: refused}},
		{method: http.MethodPost, path: fixed("/api/conversations/"), note: "a group with the owner",
			body: func(w *azWorld) any {
				return map[string]any{"participant_ids": []int64{w.owner.ID, w.third.ID}, "is_group": true}
			},
			want: but(everyone(created), asBlocked, refused)},
		{method: http.MethodPost, path: fixed("/api/conversations/%d/participants/", blockedGroup), scoped: true, note: "the owner to the blocked user's group",
			body: func(w *azWorld) any { return map[string]any{"user_id": w.owner.ID} },
			want: map[string]int{asParticipant: refused, asBlocked: refused}},
	}
}

// missing turns a path about the world's conversations and messages into
// the same path about ids that do not exist.
func (w *azWorld) missing(path string) string {
	r := strings.NewReplacer(
		p("/conversations/%d/", w.group), "/conversations/999999/",
		p("/conversations/%d/", w.direct), "/conversations/999999/",
		p("/messages/%d/", w.ownerMsg), "/messages/999999/",
		p("/messages/%d/", w.memberMsg), "/messages/999999/",
		p("/messages/%d/", w.directMsg), "/messages/999999/",
		p("conversation_id=%d", w.group), "conversation_id=999999",
		p("/attachments/%d/", w.attachment), "/attachments/999999/",
		p("/uploads/%d/", w.attachment), "/uploads/999999/",
		p("/uploads/%d/", w.unsent), "/uploads/999999/",
		p("/devices/%d/", w.device), "/devices/999999/",
		p(`"message_id":%d`, w.thirdMsg), `"message_id":999999`,
		p("/reports/%d/", w.report), "/reports/999999/",
		p("/users/%d/", w.third.ID), "/users/999999/",
		p("/users/%d/", w.gone.ID), "/users/999999/",
		p("/conversations/%d/", w.blockedDirect), "/conversations/999999/",
		p("/conversations/%d/", w.blockedGroup), "/conversations/999999/",
	)
	return r.Replace(path)
}

// missingBody is body with the same ids missing replaces, as JSON.
func (w *azWorld) missingBody(t *testing.T, body any) any {
	if body == nil {
		return nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(w.missing(string(b)))
}

// Every REST route × every kind of caller: nobody reads, writes, edits,
// deletes or joins where they do not belong, a refusal changes nothing and
// tells no one, and a non-participant cannot tell a conversation or
// message that exists from one that does not.
func TestAuthorizationMatrix_REST(t *testing.T) {
	rows := azRows()
	t.Run("covers every route", func(t *testing.T) {
		covered := map[string]bool{}
		for _, r := range rows {
			covered[r.route()] = true
		}
		e := servertest.Start(t).Handler().(*echo.Echo)
		public := map[string]bool{"POST /api/auth/register/": true, "POST /api/auth/token/": true,
			"POST /api/auth/token/refresh/": true, "POST /api/auth/logout/": true, "GET /api/openapi.json/": true}
		for _, rt := range e.Routes() {
			if !strings.HasPrefix(rt.Path, "/api/") || strings.HasSuffix(rt.Path, "*") || rt.Name == server.MethodNotAllowedRoute {
				continue
			}
			k := routeKey(rt.Method, rt.Path)
			if !public[k] && !covered[idPattern(k)] {
				t.Errorf("route %s is not in the authorization matrix", k)
			}
		}
	})

	for _, row := range rows {
		t.Run(strings.TrimSpace(row.route()+" "+row.note), func(t *testing.T) {
			t.Parallel() // a server each
			w := newAZWorld(t)
			s := w.s
			before := w.snapshot(t)
			// Refusals first, on the untouched world: each must leave it
			// exactly as it was, with no event published.
			var allowed []string
			for _, role := range roles {
				want, ok := row.want[role]
				if ok && want < 300 {
					allowed = append(allowed, role)
					continue
				}
				tok, u := w.token(role)
				path := row.path(w, u)
				r := s.Do(t, row.method, path, tok, row.body(w))
				switch {
				case role == asNoToken:
					wantError(t, r, http.StatusUnauthorized, "not_authenticated")
				case role == asExpired || role == asRefresh || role == asDeleted:
					wantError(t, r, http.StatusUnauthorized, "token_not_valid")
				case role == asDeactivated:
					wantError(t, r, http.StatusUnauthorized, "account_disabled")
				case ok && want == http.StatusBadRequest:
					wantError(t, r, want, "invalid")
				case ok && row.code != "":
					wantError(t, r, want, row.code)
				case ok && role == asBlocked: // what the owner's block refuses them
					wantError(t, r, want, "blocked")
				case ok: // a participant who may not: 403
					wantError(t, r, want, "forbidden")
				default:
					wantError(t, r, http.StatusNotFound, "not_found")
					// Exactly what a missing id gets.
					miss := s.Do(t, row.method, w.missing(path), w.owner.Access, w.missingBody(t, row.body(w)))
					if miss.Status != r.Status || !bytes.Equal(miss.Body, r.Body) {
						t.Errorf("%s: %d %s for a conversation they are not in, %d %s for one that does not exist",
							role, r.Status, r.Body, miss.Status, miss.Body)
					}
				}
				if after := w.snapshot(t); after != before {
					t.Errorf("%s was refused, but the data changed:\nbefore:\n%s\nafter:\n%s", role, before, after)
				}
				if n := w.published(); n != 0 {
					t.Errorf("%s was refused, but %d events were published", role, n)
				}
			}
			if !row.scoped && len(allowed) == 0 {
				t.Fatal("a row nobody may call")
			}
			for _, role := range allowed {
				tok, u := w.token(role)
				r := s.Do(t, row.method, row.path(w, u), tok, row.body(w))
				wantStatus(t, r, row.want[role])
				w.checkAllowed(t, row, role, r)
			}
		})
	}
}

// checkAllowed checks that an allowed call answered about the caller and
// their own conversations only.
func (w *azWorld) checkAllowed(t *testing.T, row azRow, role string, r servertest.Response) {
	t.Helper()
	_, u := w.token(role)
	switch path := row.path(w, u); {
	case path == "/api/users/me/" && row.method == http.MethodDelete:
		// Their own account went, and only theirs.
		wantError(t, w.s.Do(t, http.MethodGet, "/api/users/me/", u.Access, nil), http.StatusUnauthorized, "token_not_valid")
		wantStatus(t, w.s.Do(t, http.MethodGet, "/api/users/me/", w.third.Access, nil), http.StatusOK)
	case path == "/api/users/me/":
		if id := num(r.Map(t)["id"]); id != u.ID {
			t.Errorf("%s %s as %s: user %d, want %d", row.method, path, role, id, u.ID)
		}
	case path == "/api/users/me/export/":
		if id := num(r.Map(t)["user"].(map[string]any)["id"]); id != u.ID {
			t.Errorf("%s exports user %d", role, id)
		}
	case path == "/api/users/blocked/":
		got := ids(r.Map(t)["results"].([]any))
		if want := []int64{}; role == asOwner {
			if len(got) != 1 || got[0] != w.blocked.ID {
				t.Errorf("the owner's block list %v, want the blocked user", got)
			}
		} else if len(got) != len(want) {
			t.Errorf("%s's block list %v, want empty: nobody reads who blocks them", role, got)
		}
	case path == "/api/devices/" && row.method == http.MethodGet:
		for _, id := range ids(r.Map(t)["results"].([]any)) {
			if id == w.device && role != asOwner {
				t.Errorf("%s sees the owner's device", role)
			}
		}
	case path == "/api/conversations/" && row.method == http.MethodGet:
		got := ids(r.Map(t)["results"].([]any))
		for _, id := range got {
			if role == asOther && (id == w.group || id == w.direct) {
				t.Errorf("the other user's list shows conversation %d", id)
			}
		}
		if (role == asOwner || role == asParticipant) && len(got) != 3 {
			t.Errorf("%s sees conversations %v, want the group, the direct one and the blocked user's", role, got)
		}
	}
}

// published counts the events published since the world was made.
func (w *azWorld) published() int {
	w.events.mu.Lock()
	defer w.events.mu.Unlock()
	return len(w.events.events)
}

// idPattern turns the ids of a route key ("/api/messages/7/") into the
// route table's parameters ("/api/messages/{id}/").
func idPattern(key string) string {
	method, path, _ := strings.Cut(key, " ")
	parts := strings.Split(path, "/")
	for i, part := range parts {
		if i > 0 && parts[i-1] == "reactions" {
			parts[i] = "{emoji}"
		} else if part != "" && strings.Trim(part, "0123456789") == "" {
			if i > 0 && parts[i-1] == "participants" {
				parts[i] = "{user_id}"
			} else {
				parts[i] = "{id}"
			}
		}
	}
	return method + " " + strings.Join(parts, "/")
}
