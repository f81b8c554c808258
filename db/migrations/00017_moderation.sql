-- Moderation: reports, staff, deactivated accounts and the audit log
-- (app/moderate).
--
-- users.is_staff        1 for a staff account (confab createuser --staff,
--                       confab staff grant): it may use /api/admin/.
-- users.deactivated_at  when staff deactivated the account (Unix ms);
--                       NULL while it is active. A deactivated account
--                       cannot log in, refresh or use a token.
-- messages.moderated_at when staff removed the message (Unix ms): its
--                       tombstone then says removed_by_moderator.
--
-- reports: what users flag to staff, one row per report.
--   reporter_id  who reported; their reports go with their account.
--   message_id   the message reported, or
--   user_id      the user reported: exactly one of the two is set. Either
--                going (the author's account deleted) takes the report.
--   reason       spam, abuse, illegal or other; note the reporter's words.
--   status       open until staff resolve it; action, resolved_by,
--                resolved_at and resolution_note say how. A reporter has
--                at most one open report per target (reports_open_*).
--
-- audit_log: every staff action, append-only (triggers refuse UPDATE and
-- DELETE). It has no foreign keys on purpose: a row outlives the accounts,
-- messages and reports it names, and keeps the names they had.
--   actor_id, actor_name  the staff account (0 and '' for the command line)
--   action                dismiss_report, remove_message, deactivate_user,
--                         reactivate_user, grant_staff, revoke_staff
--   target_type, target_id, target_name  what it acted on
--   report_id             the report it resolved, 0 for none
--   reason                the staff member's words

-- +goose Up
ALTER TABLE users ADD COLUMN is_staff INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
ALTER TABLE messages ADD COLUMN moderated_at INTEGER;

CREATE TABLE reports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id      INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    user_id         INTEGER REFERENCES users (id) ON DELETE CASCADE,
    reason          TEXT    NOT NULL CHECK (reason IN ('spam', 'abuse', 'illegal', 'other')),
    note            TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    action          TEXT    NOT NULL DEFAULT '',
    resolved_by     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    resolved_at     INTEGER,
    resolution_note TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    CHECK ((message_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX reports_status ON reports (status, id);
CREATE UNIQUE INDEX reports_open_message ON reports (reporter_id, message_id) WHERE status = 'open' AND message_id IS NOT NULL;
CREATE UNIQUE INDEX reports_open_user ON reports (reporter_id, user_id) WHERE status = 'open' AND user_id IS NOT NULL;
CREATE INDEX reports_reporter ON reports (reporter_id, id);
CREATE INDEX reports_message ON reports (message_id);
CREATE INDEX reports_user ON reports (user_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor_id    INTEGER NOT NULL,
    actor_name  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   INTEGER NOT NULL,
    target_name TEXT    NOT NULL DEFAULT '',
    report_id   INTEGER NOT NULL DEFAULT 0,
    reason      TEXT    NOT NULL DEFAULT ''
);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
DROP TABLE reports;
ALTER TABLE messages DROP COLUMN moderated_at;
ALTER TABLE users DROP COLUMN deactivated_at;
ALTER TABLE users DROP COLUMN is_staff;
