package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/moderate"
	"github.com/confab/confab/db/sqlq"
)

var _ moderate.Store = (*Store)(nil)

// CreateReport implements moderate.Store.
func (s *Store) CreateReport(ctx context.Context, r moderate.NewReport) (moderate.Report, bool, error) {
	var rep moderate.Report
	created := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		rep, err = sqlq.ScanReport(tx.QueryRowContext(ctx, sqlq.InsertReport, r.ReporterID, sqlq.NullID(r.MessageID),
			sqlq.NullID(r.UserID), r.Reason, r.Note, ms(r.At)))
		if err == nil {
			created = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// The reporter's open report of the target was there already.
		rep, err = sqlq.ScanReport(tx.QueryRowContext(ctx, sqlq.OpenReport, r.ReporterID, sqlq.NullID(r.MessageID), sqlq.NullID(r.UserID)))
		return err
	})
	if err != nil {
		return moderate.Report{}, false, fmt.Errorf("create report: %w", err)
	}
	return rep, created, nil
}

// ResolveReport implements moderate.Store.
func (s *Store) ResolveReport(ctx context.Context, r moderate.Resolution) (moderate.Resolved, error) {
	var res moderate.Resolved
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rep, err := sqlq.ScanReport(tx.QueryRowContext(ctx, sqlq.ResolveReport, r.Action, sqlq.NullID(r.Staff.ID), ms(r.At), r.Note, r.ReportID))
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := sqlq.ScanReport(tx.QueryRowContext(ctx, sqlq.ReportByID, r.ReportID)); err != nil {
				return notFound(err)
			}
			return moderate.ErrResolved
		}
		if err != nil {
			return err
		}
		res.Report = rep
		e := moderate.AuditEntry{At: r.At, Actor: r.Staff, ReportID: rep.ID, Reason: r.Note}
		switch r.Action {
		case moderate.ActionDismiss:
			e.Action, e.TargetType, e.TargetID = moderate.AuditDismissReport, moderate.TargetReport, rep.ID
		case moderate.ActionRemoveMessage:
			if rep.MessageID == 0 {
				return chat.InvalidField("action", "This report is of a user, not a message.")
			}
			m, changed, err := deleteMessage(ctx, tx, rep.MessageID, r.At, true)
			if err != nil {
				return err
			}
			if changed {
				res.Removed = &m
				if err := s.keepWebhook(ctx, tx, "message.deleted", r.At, &m); err != nil {
					return err
				}
			}
			e.Action, e.TargetType, e.TargetID, e.TargetName = moderate.AuditRemoveMessage, moderate.TargetMessage, m.ID, m.Sender.Username
		case moderate.ActionDeactivateUser:
			target := rep.UserID
			if rep.MessageID != 0 {
				if err := tx.QueryRowContext(ctx, `SELECT sender_id FROM messages WHERE id = ?`, rep.MessageID).Scan(&target); err != nil {
					return notFound(err)
				}
			}
			name, changed, err := deactivate(ctx, tx, target, r.At)
			if err != nil {
				return err
			}
			if changed {
				res.Deactivated = target
			}
			e.Action, e.TargetType, e.TargetID, e.TargetName = moderate.AuditDeactivateUser, moderate.TargetUser, target, name
		default:
			return chat.InvalidField("action", "Unknown action.")
		}
		_, err = tx.ExecContext(ctx, sqlq.InsertAudit, sqlq.AuditArgs(e)...)
		return err
	})
	if res.Deactivated != 0 {
		s.users.forget(res.Deactivated)
	}
	if err != nil {
		return moderate.Resolved{}, fmt.Errorf("resolve report: %w", err)
	}
	return res, nil
}

// deactivate deactivates userID in tx and revokes its refresh tokens;
// changed is false when it was deactivated already.
func deactivate(ctx context.Context, tx *sql.Tx, userID int64, at time.Time) (name string, changed bool, err error) {
	err = tx.QueryRowContext(ctx, sqlq.Deactivate, ms(at), userID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, sqlq.UsernameOf, userID).Scan(&name)
		return name, false, notFound(err)
	}
	if err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx, sqlq.RevokeAllRefresh, ms(at), userID); err != nil {
		return "", false, fmt.Errorf("revoke refresh tokens: %w", err)
	}
	return name, true, nil
}

// SetActive implements moderate.Store.
func (s *Store) SetActive(ctx context.Context, userID int64, active bool, actor moderate.Actor, reason string, at time.Time) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var name string
		var err error
		e := moderate.AuditEntry{At: at, Actor: actor, TargetType: moderate.TargetUser, TargetID: userID, Reason: reason}
		if active {
			e.Action = moderate.AuditReactivateUser
			err = tx.QueryRowContext(ctx, sqlq.Reactivate, userID).Scan(&name)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound(tx.QueryRowContext(ctx, sqlq.UsernameOf, userID).Scan(&name))
			}
			if err != nil {
				return err
			}
		} else {
			e.Action = moderate.AuditDeactivateUser
			if name, changed, err = deactivate(ctx, tx, userID, at); err != nil || !changed {
				return err
			}
		}
		changed = true
		e.TargetName = name
		_, err = tx.ExecContext(ctx, sqlq.InsertAudit, sqlq.AuditArgs(e)...)
		return err
	})
	s.users.forget(userID)
	if err != nil {
		return false, fmt.Errorf("set active: %w", err)
	}
	return changed, nil
}

// SetStaff implements moderate.Store.
func (s *Store) SetStaff(ctx context.Context, username string, staff bool, actor moderate.Actor, at time.Time) (chat.Account, bool, error) {
	var a chat.Account
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = sqlq.ScanAccount(tx.QueryRowContext(ctx, sqlq.SetStaff, staff, sqlq.Fold(username)))
		if errors.Is(err, sql.ErrNoRows) {
			a, err = sqlq.ScanAccount(tx.QueryRowContext(ctx, sqlq.AccountByUsername, sqlq.Fold(username)))
			return notFound(err)
		}
		if err != nil {
			return err
		}
		changed = true
		_, err = tx.ExecContext(ctx, sqlq.InsertAudit, sqlq.AuditArgs(sqlq.StaffAudit(a, staff, actor, at))...)
		return err
	})
	if a.ID != 0 {
		s.users.forget(a.ID)
	}
	if err != nil {
		return chat.Account{}, false, fmt.Errorf("set staff: %w", err)
	}
	return a, changed, nil
}
