-- The users table of the PostgreSQL store: display_key is display_name
-- folded the way every store folds names (Go's strings.ToLower), so that a
-- search is a LIKE on the key, the same query in both stores.
--
-- SQLite's lower() folds ASCII letters only, which is exactly Go's folding
-- of a name with no other letters; a name with any non-ASCII character
-- keeps '' here, and Store.Migrate folds it in Go (foldDisplayKeys) right
-- after, and again on any later start if that was interrupted.

-- +goose Up
ALTER TABLE users ADD COLUMN display_key TEXT NOT NULL DEFAULT '';
UPDATE users SET display_key = lower(display_name)
WHERE length(display_name) = length(CAST(display_name AS BLOB)); -- as many bytes as characters: ASCII only

DROP INDEX users_display_name;
CREATE INDEX users_display_prefix ON users (display_key);

-- +goose Down
DROP INDEX users_display_prefix;
CREATE INDEX users_display_name ON users (lower(display_name));
ALTER TABLE users DROP COLUMN display_key;
