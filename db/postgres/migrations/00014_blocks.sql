-- Blocks: one row per (blocker, blocked), the blocker's block of that
-- user. A blocked user cannot start a direct conversation with the
-- blocker, send in their direct conversation, or add the blocker to a
-- group; the blocker gets no typing, mentions or pushes from them.
--
--   created_at  when the block was made (Unix milliseconds): the block
--               list shows the newest first.
--
-- The key leads with blocker_id: it reads a user's block list, and
-- answers "has A blocked B" in one lookup (the send path's check on a
-- direct conversation). blocks_blocked serves the other direction: who
-- of a message's recipients blocked its sender (the push decision), and
-- the cascade when an account is removed. Either account's removal takes
-- the row with it.
--
-- The numbers 00012 and 00013 are other branches'.

-- +goose Up
CREATE TABLE blocks (
    blocker_id BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id);

-- +goose Down
DROP TABLE blocks;
