-- Reactions: one row per (message, emoji, user), the user's reaction with
-- that emoji to that message.
--
--   emoji       one grapheme cluster, as the service validated it.
--   created_at  when the user reacted (Unix milliseconds): a message's
--               reactions are listed by the first use of each emoji.
--
-- The key leads with message_id: it is the index that reads the reactions
-- of a page of messages, and counts one emoji of a message. reactions_user
-- serves the cascade when an account is removed. A deleted message keeps
-- no reactions (its delete removes them); a message removed with its
-- author's account takes its rows along by the cascade.

-- +goose Up
CREATE TABLE reactions (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;
CREATE INDEX reactions_user ON reactions (user_id);

-- +goose Down
DROP TABLE reactions;
