-- Replies and mentions, as db/migrations/00006 does for the SQLite store:
--   messages.reply_to_id  the message this one answers (same conversation,
--                         checked in the send's transaction). No foreign
--                         key: a reply outlives its original's hard
--                         removal (with its author's account) and then
--                         shows reply_to null.
--   messages.mentions     the mentioned user ids as a JSON array in text,
--                         the same column in both stores, read by the
--                         shared scanner (nothing queries inside it).

-- +goose Up
ALTER TABLE messages ADD COLUMN reply_to_id BIGINT;
ALTER TABLE messages ADD COLUMN mentions TEXT;

-- +goose Down
ALTER TABLE messages DROP COLUMN mentions;
ALTER TABLE messages DROP COLUMN reply_to_id;
