package moderate

import (
	"context"
	"time"

	"github.com/confab/confab/app/chat"
)

// Reasons a report gives.
const (
	ReasonSpam    = "spam"
	ReasonAbuse   = "abuse"
	ReasonIllegal = "illegal"
	ReasonOther   = "other"
)

// Statuses of a report.
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
)

// Actions that resolve a report.
const (
	ActionDismiss        = "dismiss"
	ActionRemoveMessage  = "remove_message"
	ActionDeactivateUser = "deactivate_user"
)

// What an audit entry records staff did (AuditEntry.Action).
const (
	AuditDismissReport  = "dismiss_report"
	AuditRemoveMessage  = "remove_message"
	AuditDeactivateUser = "deactivate_user"
	AuditReactivateUser = "reactivate_user"
	AuditGrantStaff     = "grant_staff"
	AuditRevokeStaff    = "revoke_staff"
)

// Kinds of target an audit entry names (AuditEntry.TargetType).
const (
	TargetReport  = "report"
	TargetMessage = "message"
	TargetUser    = "user"
)

// Limits, in code points.
const (
	MaxNote   = 1000
	MaxReason = 500
)

// NewReport is a report to store: of exactly one of MessageID and
// UserID.
type NewReport struct {
	ReporterID int64
	MessageID  int64
	UserID     int64
	Reason     string
	Note       string
	At         time.Time
}

// Report is a stored report.
type Report struct {
	ID         int64
	ReporterID int64
	// MessageID or UserID is the target: the other is zero.
	MessageID int64
	UserID    int64
	Reason    string
	Note      string
	Status    string
	CreatedAt time.Time
	// Set once resolved: the action taken, by whom (zero once that
	// account is gone), when, and the staff member's note.
	Action         string
	ResolvedBy     int64
	ResolvedAt     time.Time
	ResolutionNote string
}

// Actor is who did something the audit log records: a staff account, or
// the zero Actor for the command line (confab staff, createuser).
type Actor struct {
	ID   int64
	Name string
}

// Resolution is a staff member's decision on a report.
type Resolution struct {
	ReportID int64
	Staff    Actor
	Action   string
	Note     string
	At       time.Time
}

// Resolved is what ResolveReport did.
type Resolved struct {
	Report Report
	// Removed is the message's tombstone when the action removed it (and
	// it was not deleted already): its change to publish.
	Removed *chat.Message
	// Deactivated is the user the action deactivated; zero when none (or
	// they already were).
	Deactivated int64
}

// AuditEntry is one staff action, as the audit log keeps it for good.
type AuditEntry struct {
	ID         int64
	At         time.Time
	Actor      Actor
	Action     string
	TargetType string
	TargetID   int64
	// TargetName is the target's name when it was acted on: a user's
	// username, a message's sender's.
	TargetName string
	ReportID   int64
	Reason     string
}

// Store keeps reports, staff, deactivations and the audit log.
// db.Store and postgres.Store implement it; storetest holds the behaviour
// both share.
type Store interface {
	// CreateReport stores r, unless its reporter has an open report of
	// the same target: then it returns that one, and created is false.
	CreateReport(ctx context.Context, r NewReport) (rep Report, created bool, err error)
	// Report returns chat.ErrNotFound for an unknown id.
	Report(ctx context.Context, id int64) (Report, error)
	// Reports returns at most limit reports of status, newest first
	// (descending id), of ids below before when it is not zero.
	Reports(ctx context.Context, status string, before int64, limit int) ([]Report, error)
	// ReportsBy returns every report reporterID made, oldest first (for
	// the user's export).
	ReportsBy(ctx context.Context, reporterID int64) ([]Report, error)
	// ResolveReport resolves an open report in one transaction with its
	// action and its audit entry. ActionRemoveMessage tombstones the
	// report's message as chat.Store.DeleteMessage does, marked as
	// removed by staff (nothing, when it was deleted already);
	// ActionDeactivateUser deactivates the reported user, or the
	// message's sender, as SetActive does. Returns chat.ErrNotFound for
	// an unknown report, chat.CodeConflict for one resolved already,
	// and chat.CodeInvalid on "action" for remove_message on a report of
	// a user.
	ResolveReport(ctx context.Context, r Resolution) (Resolved, error)
	// SetActive deactivates (active false) or reactivates userID, with
	// an audit entry by actor giving reason, in one transaction; changed
	// is false (and nothing recorded) when it already was so.
	// Deactivating revokes every refresh token of the user, moves its
	// TokenEpoch on and clears its KeptSession, so that no token issued
	// before works again, even after a reactivation. Returns
	// chat.ErrNotFound for an unknown user.
	SetActive(ctx context.Context, userID int64, active bool, actor Actor, reason string, at time.Time) (changed bool, err error)
	// SetStaff grants (staff true) or revokes staff of the user named
	// username (compared as logins compare it), with an audit entry by
	// actor, in one transaction; changed is false (and nothing
	// recorded) when it already was so. Returns chat.ErrNotFound for an
	// unknown username.
	SetStaff(ctx context.Context, username string, staff bool, actor Actor, at time.Time) (a chat.Account, changed bool, err error)
	// Audit returns at most limit entries, newest first (descending id),
	// of ids below before when it is not zero.
	Audit(ctx context.Context, before int64, limit int) ([]AuditEntry, error)
	// Account reads the account of id from the database itself, never
	// from a cache: a staff grant or revoke made by the command line, in
	// another process, counts at once. Returns chat.ErrNotFound for an
	// unknown id.
	Account(ctx context.Context, id int64) (chat.Account, error)
	// SearchAccounts is chat.Store.SearchUsers with deactivated accounts
	// too, and what staff see of each.
	SearchAccounts(ctx context.Context, prefix string, limit int) ([]chat.Account, error)
}
