package server

import (
	"context"

	"github.com/confab/confab/app/notify"
)

// classifyNotify passes the errors of s through classify, as timeStore
// does for chat.Store, so that a Postgres outage answers 503 on the
// device routes too. Nil classify: s itself. The calls are not timed:
// the op label set of confab_db_query_duration_seconds is closed, and
// these are rare requests off the send path.
func classifyNotify(s notify.Store, classify func(error) error) notify.Store {
	if classify == nil {
		return s
	}
	return classifiedNotify{s, classify}
}

type classifiedNotify struct {
	s        notify.Store
	classify func(error) error
}

func (c classifiedNotify) err(err error) error {
	if err != nil {
		return c.classify(err)
	}
	return nil
}

func (c classifiedNotify) RegisterDevice(ctx context.Context, d notify.Device, max int) (notify.Device, bool, error) {
	d, created, err := c.s.RegisterDevice(ctx, d, max)
	return d, created, c.err(err)
}

func (c classifiedNotify) Devices(ctx context.Context, userID int64) ([]notify.Device, error) {
	list, err := c.s.Devices(ctx, userID)
	return list, c.err(err)
}

func (c classifiedNotify) DeleteDevice(ctx context.Context, userID, id int64) error {
	return c.err(c.s.DeleteDevice(ctx, userID, id))
}

func (c classifiedNotify) SetMuted(ctx context.Context, userID, conversationID, until int64) error {
	return c.err(c.s.SetMuted(ctx, userID, conversationID, until))
}

func (c classifiedNotify) MutedUntil(ctx context.Context, userID, conversationID int64) (int64, error) {
	v, err := c.s.MutedUntil(ctx, userID, conversationID)
	return v, c.err(err)
}

func (c classifiedNotify) UserDeliveries(ctx context.Context, userID int64, limit int) (notify.UserOutbox, error) {
	o, err := c.s.UserDeliveries(ctx, userID, limit)
	return o, c.err(err)
}
