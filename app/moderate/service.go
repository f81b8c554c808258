package moderate

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/confab/confab/app/chat"
)

// Users is what the service reads of users and messages: chat.Store.
type Users interface {
	UserByID(ctx context.Context, id int64) (chat.Account, error)
	Message(ctx context.Context, id int64) (chat.Message, error)
	Membership(ctx context.Context, convID, userID int64) (role string, isGroup bool, err error)
	MessagesBySeq(ctx context.Context, convID, afterSeq, beforeSeq int64, limit int) ([]chat.Message, error)
}

// Live is how moderation reaches sockets: the chat service, which orders
// a removed message's tombstone with every other change.
type Live interface {
	// Moderate runs commit and publishes the changes of the messages
	// it returns, in one critical section with every other write.
	Moderate(ctx context.Context, commit func(ctx context.Context) ([]chat.Message, error)) error
	// AccountDisabled closes every socket of userID, on every node.
	AccountDisabled(userID int64)
}

// Options configure a Service. Each zero value is a working default.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what the service cannot return; nil discards it.
	Log *slog.Logger
}

// Service holds the rules of reports and staff. Every edge (REST, the
// command line) calls it.
type Service struct {
	store Store
	users Users
	live  Live
	now   func() time.Time
	log   *slog.Logger
}

// NewService returns a Service.
func NewService(store Store, users Users, live Live, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, users: users, live: live, now: opt.Now, log: opt.Log}
}

// ContextSize is how many messages before and after a reported message
// its report shows (ReportView.Context).
const ContextSize = 3

// Page sizes of Reports and Audit.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
)

// Report files a report by reporter of a message (messageID) or a user
// (userID): exactly one of the two. The message must be one reporter can
// see (else chat.ErrNotFound, as every message route answers), and not
// theirs; the user must exist, and not be them. A reporter's second
// report of a target while the first is open returns the first, with
// created false.
func (s *Service) Report(ctx context.Context, reporter, messageID, userID int64, reason, note string) (Report, bool, error) {
	v := chat.Invalid{}
	switch {
	case messageID == 0 && userID == 0:
		v.Add("non_field_errors", "Give message_id or user_id.")
	case messageID != 0 && userID != 0:
		v.Add("non_field_errors", "Give message_id or user_id, not both.")
	case messageID < 0:
		v.Add("message_id", "Must be a message id.")
	case userID < 0:
		v.Add("user_id", "Must be a user id.")
	}
	validReason(v, reason)
	note = strings.TrimSpace(note)
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > MaxNote {
		v.Add("note", "Must be at most 1000 characters.")
	}
	if err := v.Err(); err != nil {
		return Report{}, false, err
	}
	if messageID != 0 {
		m, err := s.users.Message(ctx, messageID)
		if err != nil {
			return Report{}, false, err
		}
		if _, _, err := s.users.Membership(ctx, m.ConversationID, reporter); err != nil {
			return Report{}, false, err
		}
		if m.Sender.ID == reporter {
			return Report{}, false, chat.InvalidField("message_id", "You cannot report your own message.")
		}
		if m.IsDeleted {
			return Report{}, false, chat.InvalidField("message_id", "This message was deleted.")
		}
	} else {
		if _, err := s.users.UserByID(ctx, userID); err != nil {
			return Report{}, false, err
		}
		if userID == reporter {
			return Report{}, false, chat.InvalidField("user_id", "You cannot report yourself.")
		}
	}
	return s.store.CreateReport(ctx, NewReport{ReporterID: reporter, MessageID: messageID, UserID: userID,
		Reason: reason, Note: note, At: s.now()})
}

func validReason(v chat.Invalid, reason string) {
	switch reason {
	case ReasonSpam, ReasonAbuse, ReasonIllegal, ReasonOther:
	case "":
		v.Add("reason", "This field is required.")
	default:
		v.Add("reason", `Must be one of "spam", "abuse", "illegal", "other".`)
	}
}

// ReportsBy returns every report userID made, oldest first (their data
// export).
func (s *Service) ReportsBy(ctx context.Context, userID int64) ([]Report, error) {
	return s.store.ReportsBy(ctx, userID)
}

// Staff returns the account of userID when it is an active staff
// account, and chat.ErrNotFound otherwise: to everyone else, staff
// routes do not exist. It reads the database itself, so that a grant or
// revoke by the command line counts at once.
func (s *Service) Staff(ctx context.Context, userID int64) (Actor, error) {
	a, err := s.store.Account(ctx, userID)
	if err != nil {
		return Actor{}, err
	}
	if !a.IsStaff || !a.Active() {
		return Actor{}, chat.ErrNotFound
	}
	return Actor{ID: a.ID, Name: a.Username}, nil
}

// ReportList is one page of reports, as staff see them: Next is the
// cursor of the next page, nil on the last.
type ReportList struct {
	Results []ReportView `json:"results"`
	Next    *string      `json:"next"`
}

// ReportView is a report as staff see it: what was reported, in its
// context, by whom, and how it was resolved.
type ReportView struct {
	ID         int64          `json:"id"`
	Status     string         `json:"status"`
	Reason     string         `json:"reason"`
	Note       string         `json:"note"`
	CreatedAt  chat.Time      `json:"created_at"`
	Reporter   *chat.UserLite `json:"reporter"`
	TargetType string         `json:"target_type"`
	// Message is the reported message as it is now (a tombstone once
	// deleted); nil for a report of a user.
	Message *chat.Message `json:"message"`
	// User is the reported user, or the reported message's sender: whom
	// deactivate_user deactivates.
	User *Account `json:"user"`
	// Context is the reported message with up to ContextSize messages
	// on each side, in order; empty for a report of a user.
	Context    []chat.Message  `json:"context"`
	Resolution *ResolutionView `json:"resolution"`
}

// ResolutionView is how a report was resolved.
type ResolutionView struct {
	Action     string         `json:"action"`
	Note       string         `json:"note"`
	ResolvedBy *chat.UserLite `json:"resolved_by"`
	ResolvedAt chat.Time      `json:"resolved_at"`
}

// Account is a user as staff see them: with is_staff and is_active.
type Account struct {
	chat.User
	IsStaff       bool       `json:"is_staff"`
	IsActive      bool       `json:"is_active"`
	DeactivatedAt *chat.Time `json:"deactivated_at"`
}

// AccountOf returns a as staff see it.
func AccountOf(a chat.Account) Account {
	v := Account{User: a.User, IsStaff: a.IsStaff, IsActive: a.Active()}
	if a.DeactivatedAt != nil {
		v.DeactivatedAt = &chat.Time{Time: *a.DeactivatedAt}
	}
	return v
}

// Reports lists a page of reports of status (open or resolved), newest
// first, after the cursor before ("" for the first page), for staff.
func (s *Service) Reports(ctx context.Context, status string, limit int, before string) (ReportList, error) {
	v := chat.Invalid{}
	if status != StatusOpen && status != StatusResolved {
		v.Add("status", `Must be "open" or "resolved".`)
	}
	size, cursor := page(v, limit, before, "before")
	if err := v.Err(); err != nil {
		return ReportList{}, err
	}
	reps, err := s.store.Reports(ctx, status, cursor, size+1)
	if err != nil {
		return ReportList{}, err
	}
	list := ReportList{Results: []ReportView{}}
	if len(reps) > size {
		reps = reps[:size]
		next := itoa(reps[size-1].ID)
		list.Next = &next
	}
	names := map[int64]*chat.Account{}
	for _, r := range reps {
		view, err := s.view(ctx, r, names)
		if err != nil {
			return ReportList{}, err
		}
		list.Results = append(list.Results, view)
	}
	return list, nil
}

// account looks up a user once per listing; nil when gone.
func (s *Service) account(ctx context.Context, id int64, seen map[int64]*chat.Account) (*chat.Account, error) {
	if id == 0 {
		return nil, nil
	}
	if a, ok := seen[id]; ok {
		return a, nil
	}
	a, err := s.users.UserByID(ctx, id)
	if errors.Is(err, chat.ErrNotFound) {
		seen[id] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen[id] = &a
	return &a, nil
}

func lite(a *chat.Account) *chat.UserLite {
	if a == nil {
		return nil
	}
	l := a.Lite()
	return &l
}

// view returns r as staff see it.
func (s *Service) view(ctx context.Context, r Report, seen map[int64]*chat.Account) (ReportView, error) {
	v := ReportView{ID: r.ID, Status: r.Status, Reason: r.Reason, Note: r.Note,
		CreatedAt: chat.Time{Time: r.CreatedAt}, TargetType: TargetUser, Context: []chat.Message{}}
	reporter, err := s.account(ctx, r.ReporterID, seen)
	if err != nil {
		return ReportView{}, err
	}
	v.Reporter = lite(reporter)
	target := r.UserID
	if r.MessageID != 0 {
		v.TargetType = TargetMessage
		m, err := s.users.Message(ctx, r.MessageID)
		if err != nil {
			return ReportView{}, err
		}
		v.Message = &m
		target = m.Sender.ID
		around, err := s.users.MessagesBySeq(ctx, m.ConversationID, m.Seq-ContextSize-1, m.Seq+ContextSize+1, 2*ContextSize+1)
		if err != nil {
			return ReportView{}, err
		}
		v.Context = around
	}
	user, err := s.account(ctx, target, seen)
	if err != nil {
		return ReportView{}, err
	}
	if user != nil {
		a := AccountOf(*user)
		v.User = &a
	}
	if r.Status == StatusResolved {
		by, err := s.account(ctx, r.ResolvedBy, seen)
		if err != nil {
			return ReportView{}, err
		}
		v.Resolution = &ResolutionView{Action: r.Action, Note: r.ResolutionNote, ResolvedBy: lite(by),
			ResolvedAt: chat.Time{Time: r.ResolvedAt}}
	}
	return v, nil
}

// Resolve resolves report id with action (dismiss, remove_message or
// deactivate_user) and an optional note, as staff: removing the message
// publishes its tombstone (message_deleted, removed_by_moderator) to its
// conversation, and deactivating the user closes their sockets. A report
// resolved already is chat.CodeConflict.
func (s *Service) Resolve(ctx context.Context, staff Actor, id int64, action, note string) (ReportView, error) {
	v := chat.Invalid{}
	switch action {
	case ActionDismiss, ActionRemoveMessage, ActionDeactivateUser:
	case "":
		v.Add("action", "This field is required.")
	default:
		v.Add("action", `Must be one of "dismiss", "remove_message", "deactivate_user".`)
	}
	note = validText(v, "note", note, MaxNote, false)
	if err := v.Err(); err != nil {
		return ReportView{}, err
	}
	r, err := s.store.Report(ctx, id)
	if err != nil {
		return ReportView{}, err
	}
	if r.Status != StatusOpen {
		return ReportView{}, ErrResolved
	}
	switch action {
	case ActionRemoveMessage:
		if r.MessageID == 0 {
			return ReportView{}, chat.InvalidField("action", "This report is of a user, not a message.")
		}
	case ActionDeactivateUser:
		target := r.UserID
		if r.MessageID != 0 {
			m, err := s.users.Message(ctx, r.MessageID)
			if err != nil {
				return ReportView{}, err
			}
			target = m.Sender.ID
		}
		if target == staff.ID {
			return ReportView{}, chat.InvalidField("action", "You cannot deactivate your own account.")
		}
	}
	var res Resolved
	err = s.live.Moderate(ctx, func(ctx context.Context) ([]chat.Message, error) {
		var err error
		res, err = s.store.ResolveReport(ctx, Resolution{ReportID: id, Staff: staff, Action: action, Note: note, At: s.now()})
		if err != nil || res.Removed == nil {
			return nil, err
		}
		return []chat.Message{*res.Removed}, nil
	})
	if err != nil {
		return ReportView{}, err
	}
	if res.Deactivated != 0 {
		s.live.AccountDisabled(res.Deactivated)
	}
	return s.view(ctx, res.Report, map[int64]*chat.Account{})
}

// ErrResolved is the answer to resolving a report resolved already
// (chat.CodeConflict).
var ErrResolved = &chat.Error{Code: chat.CodeConflict, Detail: "This report is resolved already."}

// SetActive deactivates (active false) or reactivates userID, as staff,
// for reason (required). Deactivating ends every session of the user,
// on every node; reactivating lets them log in again (their old sessions
// stay ended). Staff cannot deactivate themselves. Returns the account
// as it is now.
func (s *Service) SetActive(ctx context.Context, staff Actor, userID int64, active bool, reason string) (Account, error) {
	v := chat.Invalid{}
	reason = validText(v, "reason", reason, MaxReason, true)
	if err := v.Err(); err != nil {
		return Account{}, err
	}
	if !active && userID == staff.ID {
		return Account{}, chat.InvalidField("non_field_errors", "You cannot deactivate your own account.")
	}
	changed, err := s.store.SetActive(ctx, userID, active, staff, reason, s.now())
	if err != nil {
		return Account{}, err
	}
	if changed && !active {
		s.live.AccountDisabled(userID)
	}
	a, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return Account{}, err
	}
	return AccountOf(a), nil
}

// SetStaff grants (staff true) or revokes staff of username, as the
// command line does: the audit log records it with no actor.
func (s *Service) SetStaff(ctx context.Context, username string, staff bool) (Account, bool, error) {
	a, changed, err := s.store.SetStaff(ctx, username, staff, Actor{}, s.now())
	if err != nil {
		return Account{}, false, err
	}
	return AccountOf(a), changed, nil
}

// AccountList is a list of accounts as staff see them.
type AccountList struct {
	Results []Account `json:"results"`
}

// SearchAccounts finds accounts by username or display-name prefix,
// deactivated ones too, for staff.
func (s *Service) SearchAccounts(ctx context.Context, prefix string, limit int) (AccountList, error) {
	if limit == 0 {
		limit = 20
	}
	if limit < 1 || limit > MaxPageSize {
		return AccountList{}, chat.InvalidField("limit", "Must be between 1 and 100.")
	}
	list, err := s.store.SearchAccounts(ctx, strings.TrimSpace(prefix), limit)
	if err != nil {
		return AccountList{}, err
	}
	out := AccountList{Results: make([]Account, len(list))}
	for i := range list {
		out.Results[i] = AccountOf(list[i])
	}
	return out, nil
}

// AuditList is one page of the audit log: Next is the cursor of the next
// page, nil on the last.
type AuditList struct {
	Results []AuditView `json:"results"`
	Next    *string     `json:"next"`
}

// AuditView is an audit entry as staff read it.
type AuditView struct {
	ID int64     `json:"id"`
	At chat.Time `json:"at"`
	// Actor is the staff account, by the username it had then; nil for
	// the command line.
	Actor      *AuditActor `json:"actor"`
	Action     string      `json:"action"`
	TargetType string      `json:"target_type"`
	TargetID   int64       `json:"target_id"`
	TargetName string      `json:"target_name"`
	ReportID   chat.OptID  `json:"report_id"`
	Reason     string      `json:"reason"`
}

// AuditActor is who did what an audit entry records.
type AuditActor struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// Audit lists a page of the audit log, newest first, after the cursor
// before ("" for the first page).
func (s *Service) Audit(ctx context.Context, limit int, before string) (AuditList, error) {
	v := chat.Invalid{}
	size, cursor := page(v, limit, before, "before")
	if err := v.Err(); err != nil {
		return AuditList{}, err
	}
	entries, err := s.store.Audit(ctx, cursor, size+1)
	if err != nil {
		return AuditList{}, err
	}
	list := AuditList{Results: []AuditView{}}
	if len(entries) > size {
		entries = entries[:size]
		next := itoa(entries[size-1].ID)
		list.Next = &next
	}
	for _, e := range entries {
		av := AuditView{ID: e.ID, At: chat.Time{Time: e.At}, Action: e.Action, TargetType: e.TargetType,
			TargetID: e.TargetID, TargetName: e.TargetName, ReportID: chat.OptID(e.ReportID), Reason: e.Reason}
		if e.Actor.ID != 0 {
			av.Actor = &AuditActor{ID: e.Actor.ID, Username: e.Actor.Name}
		}
		list.Results = append(list.Results, av)
	}
	return list, nil
}

// validText trims s and checks it against max code points (and that it
// is there, when required), returning it trimmed.
func validText(v chat.Invalid, field, s string, max int, required bool) string {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > max:
		v.Add(field, "Must be at most "+strconv.Itoa(max)+" characters.")
	case required && s == "":
		v.Add(field, "This field is required.")
	}
	return s
}

// page checks a page's limit (0: DefaultPageSize; -1: out of range) and
// its cursor, an id as text.
func page(v chat.Invalid, limit int, cursor, name string) (int, int64) {
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 1 || limit > MaxPageSize:
		v.Add("limit", "Must be an integer between 1 and 100.")
	}
	if cursor == "" {
		return limit, 0
	}
	var id int64
	for _, c := range cursor {
		if c < '0' || c > '9' || id > 1e15 {
			v.Add(name, "Not a cursor of this server.")
			return limit, 0
		}
		id = id*10 + int64(c-'0')
	}
	if id == 0 {
		v.Add(name, "Not a cursor of this server.")
	}
	return limit, id
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
