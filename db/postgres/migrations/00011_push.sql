-- Push notifications, as db/migrations/00013 does for the SQLite store:
-- decided and delivered after the messages commit
-- (app/notify/dispatch.go), never in the send's transaction.
--
-- push_mark.id is the dispatcher's high-water mark, as search_indexed.id
-- is the search index's (migration 00009): every message with an id up to
-- it has been decided (its deliveries made, or none needed), none above
-- it has. The dispatcher reads a batch above the mark, stores the batch's
-- deliveries and moves the mark in one transaction, so a crash redoes a
-- batch or nothing of it. The mark's row is also the nodes' lock: a
-- dispatcher takes it FOR UPDATE SKIP LOCKED, so exactly one node decides
-- each batch and the others skip their round. An id mark is safe here for
-- the reason migration 00008 gives: ids are taken under the feed clock's
-- row lock, held to commit, so no message is ever committed below it. It
-- starts at the newest message: history is
-- never pushed.
--
-- deliveries: one row per push to one device.
--   device_id   the device; its deliveries go with it.
--   user_id,    whose device, which conversation, and the newest message
--   conversation_id,  the push tells of (see coalescing).
--   message_id
--   collapse    the provider's collapse key, "conv-<conversation id>".
--   payload     the notification as JSON (title, body, badge, data), built
--               when decided: a send needs no other table than devices.
--   state       'pending' until sent ('sent'), given up ('failed': refused,
--               no provider, or older than the dispatcher's maximum age),
--               or the device was gone ('gone'; written in the
--               transaction that deletes the device, so the cascade takes
--               the row with it: kept as a state for the outbox's other
--               kinds, webhooks, whose endpoints may go).
--   attempts    sends tried so far (a claim counts one).
--   next_at     when a pending delivery is due; a claim moves it on by a
--               lease, so a sender that died mid-send is retried after it.
--   last_error  the last send's error, for operators.
--
-- Coalescing: a device has at most one pending delivery per conversation
-- (deliveries_pending). A newer message while one is pending replaces its
-- payload and message_id (an upsert on that index) rather than adding a
-- second, so a burst is one push per device.
--
-- Sent and failed rows are kept; pruning them is left to a later
-- migration or job.

-- +goose Up
CREATE TABLE push_mark (
    id BIGINT  NOT NULL
);
INSERT INTO push_mark (id) SELECT coalesce(max(id), 0) FROM messages;

CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id       BIGINT  NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id         BIGINT  NOT NULL,
    conversation_id BIGINT  NOT NULL,
    message_id      BIGINT  NOT NULL,
    collapse        TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed', 'gone')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         BIGINT  NOT NULL,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- The sender's pick: pending rows by next_at.
CREATE INDEX deliveries_due ON deliveries (state, next_at);
CREATE UNIQUE INDEX deliveries_pending ON deliveries (device_id, conversation_id) WHERE state = 'pending';

-- +goose Down
DROP TABLE deliveries;
DROP TABLE push_mark;
