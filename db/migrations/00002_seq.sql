-- Per-conversation sequence numbers: messages.seq is 1, 2, 3… within a
-- conversation, in commit order; conversations.last_seq is the last one
-- handed out, so that seq is never reused even after messages go away with
-- their deleted author.

-- +goose Up
ALTER TABLE conversations ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- Ids only grow and SQLite has one writer, so id order is commit order.
UPDATE messages SET seq = numbered.seq
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY id) AS seq FROM messages) AS numbered
WHERE messages.id = numbered.id;

UPDATE conversations SET last_seq = coalesce((SELECT max(seq) FROM messages WHERE conversation_id = conversations.id), 0);

CREATE UNIQUE INDEX messages_seq ON messages (conversation_id, seq);

-- +goose Down
DROP INDEX messages_seq;
ALTER TABLE messages DROP COLUMN seq;
ALTER TABLE conversations DROP COLUMN last_seq;
