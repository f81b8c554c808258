package server

import (
	"context"
	"time"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/moderate"
)

// classifyModerate passes the errors of s through classify, as
// classifyNotify does for devices, so that a Postgres outage answers 503
// on the report and staff routes too. Nil classify: s itself. The calls
// are not timed, for the reason classifyNotify gives.
func classifyModerate(s moderate.Store, classify func(error) error) moderate.Store {
	if classify == nil {
		return s
	}
	return classifiedModerate{s, classify}
}

type classifiedModerate struct {
	s        moderate.Store
	classify func(error) error
}

func (c classifiedModerate) err(err error) error {
	if err != nil {
		return c.classify(err)
	}
	return nil
}

func (c classifiedModerate) CreateReport(ctx context.Context, r moderate.NewReport) (moderate.Report, bool, error) {
	rep, created, err := c.s.CreateReport(ctx, r)
	return rep, created, c.err(err)
}

func (c classifiedModerate) Report(ctx context.Context, id int64) (moderate.Report, error) {
	rep, err := c.s.Report(ctx, id)
	return rep, c.err(err)
}

func (c classifiedModerate) Reports(ctx context.Context, status string, before int64, limit int) ([]moderate.Report, error) {
	list, err := c.s.Reports(ctx, status, before, limit)
	return list, c.err(err)
}

func (c classifiedModerate) ReportsBy(ctx context.Context, reporterID int64) ([]moderate.Report, error) {
	list, err := c.s.ReportsBy(ctx, reporterID)
	return list, c.err(err)
}

func (c classifiedModerate) ResolveReport(ctx context.Context, r moderate.Resolution) (moderate.Resolved, error) {
	res, err := c.s.ResolveReport(ctx, r)
	return res, c.err(err)
}

func (c classifiedModerate) SetActive(ctx context.Context, userID int64, active bool, actor moderate.Actor, reason string, at time.Time) (bool, error) {
	changed, err := c.s.SetActive(ctx, userID, active, actor, reason, at)
	return changed, c.err(err)
}

func (c classifiedModerate) SetStaff(ctx context.Context, username string, staff bool, actor moderate.Actor, at time.Time) (chat.Account, bool, error) {
	a, changed, err := c.s.SetStaff(ctx, username, staff, actor, at)
	return a, changed, c.err(err)
}

func (c classifiedModerate) Audit(ctx context.Context, before int64, limit int) ([]moderate.AuditEntry, error) {
	list, err := c.s.Audit(ctx, before, limit)
	return list, c.err(err)
}

func (c classifiedModerate) SearchAccounts(ctx context.Context, prefix string, limit int) ([]chat.Account, error) {
	list, err := c.s.SearchAccounts(ctx, prefix, limit)
	return list, c.err(err)
}

func (c classifiedModerate) Account(ctx context.Context, id int64) (chat.Account, error) {
	a, err := c.s.Account(ctx, id)
	return a, c.err(err)
}
