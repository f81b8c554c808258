-- Reads that do not grow with the account:
--   conversations.member_count  how many participants, so that a list can
--                               say it without reading them all;
--   participants.last_read_seq  the seq of the reader's last read message,
--                               so that unread_count is last_seq minus it;
--   participants_joined         a conversation's participants in the order
--                               they joined, for the capped list and its
--                               pages.

-- +goose Up
ALTER TABLE conversations ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE participants ADD COLUMN last_read_seq INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET member_count = (SELECT count(*) FROM participants WHERE conversation_id = conversations.id);

-- The newest message at or before the mark: the marked one itself, unless
-- it went with its deleted author. Ids grow with seq in a conversation.
UPDATE participants SET last_read_seq = coalesce((
	SELECT m.seq FROM messages m
	WHERE m.conversation_id = participants.conversation_id AND m.id <= participants.last_read_message_id
	ORDER BY m.id DESC LIMIT 1), 0)
WHERE last_read_message_id > 0;

CREATE INDEX participants_joined ON participants (conversation_id, joined_at, user_id);

-- +goose Down
DROP INDEX participants_joined;
ALTER TABLE participants DROP COLUMN last_read_seq;
ALTER TABLE conversations DROP COLUMN member_count;
