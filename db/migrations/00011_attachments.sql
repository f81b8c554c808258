-- Attachments: the files messages carry (docs/API.md, "Attachments").
--
-- blobs are the stored files, by the SHA-256 of their bytes (as stored:
-- images re-encoded without their metadata), so that the same file sent
-- twice is kept once: the file "f/<sha256>" and, for an image, its
-- thumbnail "t/<sha256>" in the server's file store, stored once those
-- are durable (an upload stores them first, then its row). updated_at is when
-- the blob was last taken (an upload of it began) or let go of (an upload
-- of it removed): the garbage collector deletes a blob only once no
-- upload holds it and updated_at is older than the grace period, so that
-- an upload in progress and a backup made within that period always find
-- their files. Whatever removes uploads (an expiry, a deleted message, a
-- deleted account) sets the updated_at of their blobs in the same
-- transaction.
--
-- uploads are what users sent: each holds one blob, belongs to its owner
-- until it is attached to a message (message_id, conversation_id and its
-- place among the message's attachments), and goes with the message.
-- Unattached uploads older than the grace period are removed.

-- +goose Up
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    stored     INTEGER NOT NULL DEFAULT 0, -- 1 once its files are durable
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE uploads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    mime            TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL REFERENCES blobs (sha256),
    width           INTEGER NOT NULL DEFAULT 0,
    height          INTEGER NOT NULL DEFAULT 0,
    thumb_mime      TEXT    NOT NULL DEFAULT '', -- '': no thumbnail
    thumb_width     INTEGER NOT NULL DEFAULT 0,
    thumb_height    INTEGER NOT NULL DEFAULT 0,
    message_id      INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id INTEGER,
    position        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX uploads_message ON uploads (message_id, position) WHERE message_id IS NOT NULL;
CREATE INDEX uploads_unattached ON uploads (created_at) WHERE message_id IS NULL;
CREATE INDEX uploads_owner ON uploads (owner_id);
CREATE INDEX uploads_sha256 ON uploads (sha256);

-- +goose Down
DROP TABLE uploads;
DROP TABLE blobs;
