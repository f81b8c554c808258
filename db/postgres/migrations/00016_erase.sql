-- Deleting an account (DELETE /api/users/me/): the users row stays as a
-- tombstone, so that every message, conversation and reaction that points
-- at it stays coherent, with its profile erased ("Deleted user").
--
--   users.deleted_at      when the account was deleted; NULL for a live
--                         one. A tombstone is never found by id, by
--                         username or by a search, and takes no login.
--   users.reserved_until  until when its username stays reserved: the
--                         tombstone keeps username_key (the folded
--                         username, nothing else of the profile) until
--                         then, so the unique key itself refuses a
--                         registration of the name; after it the key is
--                         replaced by '#' and the id (never a valid
--                         username) and the name is free again.
--   users.erased_at       when every message of the account had been
--                         tombstoned; NULL while that is still under way
--                         (the durable marker the server's eraser resumes
--                         from after a restart, users_erasing).
--
-- The numbers 00012..00015 are other branches'.

-- +goose Up
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
ALTER TABLE users ADD COLUMN reserved_until BIGINT;
ALTER TABLE users ADD COLUMN erased_at BIGINT;
CREATE INDEX users_erasing ON users (id) WHERE deleted_at IS NOT NULL AND erased_at IS NULL;

-- +goose Down
DROP INDEX users_erasing;
ALTER TABLE users DROP COLUMN erased_at;
ALTER TABLE users DROP COLUMN reserved_until;
ALTER TABLE users DROP COLUMN deleted_at;
