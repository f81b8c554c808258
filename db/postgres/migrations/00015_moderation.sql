-- Moderation, as db/migrations/00017 does for the SQLite store: reports,
-- staff, deactivated accounts and the audit log (app/moderate). See that
-- file for what each column means.
--
-- audit_log is append-only: a trigger refuses every UPDATE and DELETE,
-- and another every TRUNCATE, whoever runs them (only a superuser or the
-- table's owner dropping the triggers gets past them). It has no foreign
-- keys on purpose: a row outlives what it names.

-- +goose Up
ALTER TABLE users ADD COLUMN is_staff BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN deactivated_at BIGINT;
ALTER TABLE messages ADD COLUMN moderated_at BIGINT;

CREATE TABLE reports (
    id              BIGSERIAL PRIMARY KEY,
    reporter_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id      BIGINT REFERENCES messages (id) ON DELETE CASCADE,
    user_id         BIGINT REFERENCES users (id) ON DELETE CASCADE,
    reason          TEXT   NOT NULL CHECK (reason IN ('spam', 'abuse', 'illegal', 'other')),
    note            TEXT   NOT NULL DEFAULT '',
    status          TEXT   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    action          TEXT   NOT NULL DEFAULT '',
    resolved_by     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    resolved_at     BIGINT,
    resolution_note TEXT   NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    CHECK ((message_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX reports_status ON reports (status, id);
CREATE UNIQUE INDEX reports_open_message ON reports (reporter_id, message_id) WHERE status = 'open' AND message_id IS NOT NULL;
CREATE UNIQUE INDEX reports_open_user ON reports (reporter_id, user_id) WHERE status = 'open' AND user_id IS NOT NULL;
CREATE INDEX reports_reporter ON reports (reporter_id, id);
CREATE INDEX reports_message ON reports (message_id);
CREATE INDEX reports_user ON reports (user_id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor_id    BIGINT NOT NULL,
    actor_name  TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target_type TEXT   NOT NULL,
    target_id   BIGINT NOT NULL,
    target_name TEXT   NOT NULL DEFAULT '',
    report_id   BIGINT NOT NULL DEFAULT 0,
    reason      TEXT   NOT NULL DEFAULT ''
);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE reports;
ALTER TABLE messages DROP COLUMN moderated_at;
ALTER TABLE users DROP COLUMN deactivated_at;
ALTER TABLE users DROP COLUMN is_staff;
