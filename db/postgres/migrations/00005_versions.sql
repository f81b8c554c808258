-- Versions: the order of every change a participant can see, for complete
-- sync (join_conversation's since_version, GET /api/sync/) and for the
-- hub's ordered delivery across nodes.
--
--   feed_clock.version       the last version handed out. Every
--                            transaction that changes what participants
--                            see takes its versions here: one number per
--                            change, in commit order (one writer in SQLite;
--                            PostgreSQL holds the row's lock to commit).
--   conversations.version    the version of the conversation's last change
--                            (a message created, edited, deleted or
--                            reacted to; its title; a member added,
--                            removed or gone).
--   messages.version         the version of the message's last change;
--   messages.created_version the version it was created with.
--   departures               a user's last departure from a conversation
--                            (left or removed), so that their sync learns
--                            it; a row stays after a rejoin, which the
--                            conversation's newer version supersedes.
--
-- Rows older than this migration have version 0: they are what a client
-- loads in pages before it first asks for a cursor.

-- +goose Up
CREATE TABLE feed_clock (
    id      SMALLINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO feed_clock (id, version) VALUES (1, 0);
ALTER TABLE conversations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN created_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_version ON messages (conversation_id, version);
CREATE TABLE departures (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX departures_version ON departures (user_id, version);

-- +goose Down
DROP TABLE departures;
DROP INDEX messages_version;
ALTER TABLE messages DROP COLUMN created_version;
ALTER TABLE messages DROP COLUMN version;
ALTER TABLE conversations DROP COLUMN version;
DROP TABLE feed_clock;
