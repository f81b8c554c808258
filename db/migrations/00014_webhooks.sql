-- Webhook events (app/notify/webhooks.go): the outbox of the events sent
-- to WEBHOOK_URL. Unlike pushes, an event is written in the transaction
-- of the change that causes it (a message's insert, an edit, a new
-- participant…), so it exists exactly when the change does; only the
-- types WEBHOOK_EVENTS chooses are written, none with WEBHOOK_URL unset.
--
--   webhook_id  the event's id (webhook-id), made when written: every
--               attempt carries the same one, so receivers deduplicate.
--   type        one of webhook.Events.
--   data        the event's object as JSON, as it was at the change.
--   state       'pending' until the receiver accepted it ('sent') or the
--               dispatcher gave up ('given_up': refused, or still failing
--               at WEBHOOK_MAX_AGE).
--   attempts    attempts so far (a claim counts one).
--   next_at     when a pending event is due; a claim moves it on by a
--               lease, so an attempt cut short by a crash is made again.
--   created_at  when the change happened: the body's timestamp.
--   updated_at  the last attempt's time.
--
-- Sent and given-up rows keep the end of their last attempt in next_at,
-- and are pruned WEBHOOK_RETENTION after it.

-- +goose Up
CREATE TABLE webhook_events (
    id         INTEGER PRIMARY KEY, -- no AUTOINCREMENT: one write less per event; webhook_id is the identity
    webhook_id TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'given_up')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- The dispatcher's pick (pending by next_at), and its pruning (sent and
-- given up by next_at, which an attempt's end sets to its time). The one
-- index a change's insert updates besides the key; webhook_id (128 random
-- bits) is not indexed, so the send path pays for no random B-tree insert.
CREATE INDEX webhook_events_due ON webhook_events (state, next_at);

-- +goose Down
DROP TABLE webhook_events;
