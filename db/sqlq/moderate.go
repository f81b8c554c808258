package sqlq

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/moderate"
)

// ReportColumns are the columns ScanReport reads, in its order.
const ReportColumns = `id, reporter_id, message_id, user_id, reason, note, status, created_at,
	action, resolved_by, resolved_at, resolution_note`

// Report reads.
const (
	ReportByID = `SELECT ` + ReportColumns + ` FROM reports WHERE id = $1`
	// ReportsPage: $1 status, $2 the id to stay below, $3 the limit.
	ReportsPage = `SELECT ` + ReportColumns + ` FROM reports WHERE status = $1 AND id < $2 ORDER BY id DESC LIMIT $3`
	// ReportsByReporter: every report user $1 made, oldest first.
	ReportsByReporter = `SELECT ` + ReportColumns + ` FROM reports WHERE reporter_id = $1 ORDER BY id`
	// OpenReport is the reporter's ($1) open report of a message ($2)
	// or a user ($3).
	OpenReport = `SELECT ` + ReportColumns + ` FROM reports
		WHERE reporter_id = $1 AND status = 'open' AND (message_id = $2 OR user_id = $3)`
	// InsertReport stores a report; a second open one of the same
	// reporter and target stores nothing (reports_open_*).
	InsertReport = `INSERT INTO reports (reporter_id, message_id, user_id, reason, note, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING
		RETURNING ` + ReportColumns
	// ResolveReport resolves an open report: $1 action, $2 staff id,
	// $3 when, $4 note, $5 report id.
	ResolveReport = `UPDATE reports SET status = 'resolved', action = $1, resolved_by = $2, resolved_at = $3, resolution_note = $4
		WHERE id = $5 AND status = 'open'
		RETURNING ` + ReportColumns
)

// NullID is id as a nullable column: NULL for zero.
func NullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// ScanReport reads ReportColumns.
func ScanReport(row Row) (moderate.Report, error) {
	var r moderate.Report
	var msg, user, by, resolved sql.NullInt64
	var created int64
	err := row.Scan(&r.ID, &r.ReporterID, &msg, &user, &r.Reason, &r.Note, &r.Status, &created,
		&r.Action, &by, &resolved, &r.ResolutionNote)
	if err != nil {
		return moderate.Report{}, err
	}
	r.MessageID, r.UserID, r.ResolvedBy = msg.Int64, user.Int64, by.Int64
	r.CreatedAt = msTime(created)
	if resolved.Valid {
		r.ResolvedAt = msTime(resolved.Int64)
	}
	return r, nil
}

// AuditColumns are the columns ScanAudit reads, in its order.
const AuditColumns = `id, at, actor_id, actor_name, action, target_type, target_id, target_name, report_id, reason`

// Audit log queries.
const (
	// AuditPage: $1 the id to stay below, $2 the limit.
	AuditPage = `SELECT ` + AuditColumns + ` FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2`
	// InsertAudit appends an entry: $1 at, $2 actor id, $3 actor name,
	// $4 action, $5 target type, $6 target id, $7 target name, $8
	// report id, $9 reason.
	InsertAudit = `INSERT INTO audit_log (at, actor_id, actor_name, action, target_type, target_id, target_name, report_id, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
)

// ScanAudit reads AuditColumns.
func ScanAudit(row Row) (moderate.AuditEntry, error) {
	var e moderate.AuditEntry
	var at int64
	err := row.Scan(&e.ID, &at, &e.Actor.ID, &e.Actor.Name, &e.Action, &e.TargetType, &e.TargetID, &e.TargetName, &e.ReportID, &e.Reason)
	if err != nil {
		return moderate.AuditEntry{}, err
	}
	e.At = msTime(at)
	return e, nil
}

// AuditArgs are InsertAudit's arguments for e.
func AuditArgs(e moderate.AuditEntry) []any {
	return []any{e.At.UnixMilli(), e.Actor.ID, e.Actor.Name, e.Action, e.TargetType, e.TargetID, e.TargetName, e.ReportID, e.Reason}
}

// Account changes by staff.
const (
	// Deactivate: $1 when, $2 user id; nothing when deactivated already.
	// Every token issued before stops working (token_epoch), even
	// after a reactivation.
	Deactivate = `UPDATE users SET deactivated_at = $1, token_epoch = token_epoch + 1, kept_session = ''
		WHERE id = $2 AND deactivated_at IS NULL RETURNING username`
	// Reactivate: $1 user id; nothing when active.
	Reactivate = `UPDATE users SET deactivated_at = NULL WHERE id = $1 AND deactivated_at IS NOT NULL RETURNING username`
	// RevokeAllRefresh: $1 when, $2 user id.
	RevokeAllRefresh = `UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL`
	// UsernameOf: $1 user id.
	UsernameOf = `SELECT username FROM users WHERE id = $1`
)

// Reads of moderate.Store that are one query on both stores.

// Report implements moderate.Store.
func (r Reader) Report(ctx context.Context, id int64) (moderate.Report, error) {
	return ScanReport(r.Q.QueryRow(ctx, ReportByID, id))
}

// Reports implements moderate.Store.
func (r Reader) Reports(ctx context.Context, status string, before int64, limit int) ([]moderate.Report, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	reps, err := collect(ctx, r.Q, limit, ScanReport, ReportsPage, status, before, limit)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	return reps, nil
}

// ReportsBy implements moderate.Store.
func (r Reader) ReportsBy(ctx context.Context, reporterID int64) ([]moderate.Report, error) {
	reps, err := collect(ctx, r.Q, 0, ScanReport, ReportsByReporter, reporterID)
	if err != nil {
		return nil, fmt.Errorf("reports by reporter: %w", err)
	}
	return reps, nil
}

// Audit implements moderate.Store.
func (r Reader) Audit(ctx context.Context, before int64, limit int) ([]moderate.AuditEntry, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	entries, err := collect(ctx, r.Q, limit, ScanAudit, AuditPage, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return entries, nil
}

// Account implements moderate.Store.
func (r Reader) Account(ctx context.Context, id int64) (chat.Account, error) {
	return ScanAccount(r.Q.QueryRow(ctx, AccountByID, id))
}

// SearchAccounts implements moderate.Store.
func (r Reader) SearchAccounts(ctx context.Context, prefix string, limit int) ([]chat.Account, error) {
	if limit <= 0 {
		return []chat.Account{}, nil
	}
	list, err := collect(ctx, r.Q, limit, ScanAccount, SearchAccounts(r.ByteOrder), PrefixPattern(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("search accounts: %w", err)
	}
	return list, nil
}

// SetStaff: $1 is_staff, $2 username_key; nothing when it already was.
const SetStaff = `UPDATE users SET is_staff = $1 WHERE username_key = $2 AND is_staff <> $1 RETURNING ` + AccountColumns

// StaffAudit is the audit entry of staff granted (staff true) or revoked
// to a by actor.
func StaffAudit(a chat.Account, staff bool, actor moderate.Actor, at time.Time) moderate.AuditEntry {
	e := moderate.AuditEntry{At: at, Actor: actor, Action: moderate.AuditRevokeStaff,
		TargetType: moderate.TargetUser, TargetID: a.ID, TargetName: a.Username}
	if staff {
		e.Action = moderate.AuditGrantStaff
	}
	return e
}
