-- A password change ends the user's other sessions, as
-- db/migrations/00005 does for the SQLite store:
--   users.token_epoch   counts the user's password changes; tokens carry
--                       the epoch they were issued in, and one from an
--                       earlier epoch is refused...
--   users.kept_session  ...unless it belongs to this login (refresh
--                       chain): the one that changed the password.

-- +goose Up
ALTER TABLE users ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN kept_session TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN kept_session;
ALTER TABLE users DROP COLUMN token_epoch;
