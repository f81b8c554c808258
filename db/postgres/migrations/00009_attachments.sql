-- Attachments, as db/migrations/00011 for the SQLite store: blobs are the
-- stored files by SHA-256, uploads what users sent, each holding one blob
-- and attached to at most one message. See that migration for the rules
-- the garbage collector follows.

-- +goose Up
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    stored     BOOLEAN NOT NULL DEFAULT false,
    updated_at BIGINT NOT NULL
);

CREATE TABLE uploads (
    id              BIGSERIAL PRIMARY KEY,
    owner_id        BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    mime            TEXT    NOT NULL,
    size            BIGINT  NOT NULL,
    sha256          TEXT    NOT NULL REFERENCES blobs (sha256),
    width           INTEGER NOT NULL DEFAULT 0,
    height          INTEGER NOT NULL DEFAULT 0,
    thumb_mime      TEXT    NOT NULL DEFAULT '',
    thumb_width     INTEGER NOT NULL DEFAULT 0,
    thumb_height    INTEGER NOT NULL DEFAULT 0,
    message_id      BIGINT REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id BIGINT,
    position        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX uploads_message ON uploads (message_id, position) WHERE message_id IS NOT NULL;
CREATE INDEX uploads_unattached ON uploads (created_at) WHERE message_id IS NULL;
CREATE INDEX uploads_owner ON uploads (owner_id);
CREATE INDEX uploads_sha256 ON uploads (sha256);

-- +goose Down
DROP TABLE uploads;
DROP TABLE blobs;
