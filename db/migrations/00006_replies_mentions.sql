-- Replies and mentions:
--   messages.reply_to_id  the message this one answers (same conversation,
--                         checked by the writer when it is stored). No
--                         foreign key: a reply outlives its original's
--                         hard removal (with its author's account) and
--                         then shows reply_to null; and a key would make
--                         deleting a user scan messages for replies.
--   messages.mentions     the user ids the content mentions, as a JSON
--                         array (the same text in both stores, read by
--                         the shared scanner), resolved when stored; NULL
--                         for none, which a plain send binds without a
--                         string to allocate and copy.

-- +goose Up
ALTER TABLE messages ADD COLUMN reply_to_id INTEGER;
ALTER TABLE messages ADD COLUMN mentions TEXT;

-- +goose Down
ALTER TABLE messages DROP COLUMN mentions;
ALTER TABLE messages DROP COLUMN reply_to_id;
