-- Message search off the send path, as db/migrations/00009 does for the
-- SQLite store: the tsvectors move from messages.search (a generated
-- column, computed and put in its GIN index in every send's transaction)
-- to message_search, which follows the messages in transactions of its
-- own. search_indexed.id is its high-water mark: every message with an id
-- up to it is in message_search. The store's indexer (db/postgres/
-- searchindex.go) adds the messages above the mark after their commit, a
-- batch at a time, and moves the mark in the same transaction; a search
-- first does the same for whatever is left, so a message is found as soon
-- as its send was answered.
--
-- An id mark needs ids to become visible in the order they were handed
-- out, which a sequence alone does not promise: two transactions may take
-- ids 5 and 6 and commit 6 first, and an indexer that saw 6 would move the
-- mark past 5 for good. Here every transaction that inserts messages (the
-- group commit, InsertMessages) first takes the feed clock's row lock
-- (sqlq.TakeVersions) and holds it until it ends, and takes its ids after
-- the lock: those transactions run their inserts one after the other, and
-- a transaction's ids are all smaller than those of any that follows it.
-- A lock is released after its transaction's commit is visible, so when a
-- message is visible, so is every message with a smaller id (or it was
-- rolled back and will never be). Anything that inserts messages without
-- the clock (the tests' raw rows) must not do so while the indexer runs
-- past them, or a row may be committed below the mark and never indexed.
--
-- The tsvector is the one of migration 00007 (the confab_search
-- configuration, every run of non-alphanumerics made one space).

-- +goose Up
CREATE TABLE message_search (
    message_id bigint PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    search tsvector NOT NULL
);
CREATE INDEX message_search_search ON message_search USING gin (search);

-- One row: the id up to which every message is indexed.
CREATE TABLE search_indexed (
    id bigint NOT NULL
);

-- The messages already stored keep their tsvector, computed again.
INSERT INTO message_search (message_id, search)
SELECT id, to_tsvector('confab_search', regexp_replace(content, '[^[:alnum:]]+', ' ', 'g')) FROM messages;
INSERT INTO search_indexed (id) SELECT coalesce(max(id), 0) FROM messages;

DROP INDEX messages_search;
ALTER TABLE messages DROP COLUMN search;

-- An edit gives message_search the new content's tsvector, whether the
-- message is above the mark or not, and a deletion too (it sets content
-- to '', which has no words; the search also filters on deleted_at). A
-- message deleted for good takes its row with it (ON DELETE CASCADE).
--
-- The edit and the indexer may meet on a message, and the new content
-- wins whatever the order, because the edit upserts and the indexer
-- inserts with ON CONFLICT DO NOTHING, both under message_search's primary
-- key:
--   - the edit's upsert commits before the indexer's insert reaches the
--     row: the insert finds the row (READ COMMITTED sees a committed
--     conflict) and does nothing, even though it read the old content;
--   - the edit's upsert is not committed yet when the insert reaches the
--     row: the insert waits for the edit's transaction, then does nothing
--     (or inserts, with the content the edit's rollback left);
--   - the indexer inserts first: the edit's upsert waits for the
--     indexer's transaction if it is still open, then updates the row.
-- A transaction that changes several messages (a user's deletion, whose
-- messages go with them) may deadlock with the indexer, each waiting for
-- a row the other holds; PostgreSQL ends one of them and the store runs
-- it again.
-- +goose StatementBegin
CREATE FUNCTION message_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_search (message_id, search)
    VALUES (NEW.id, to_tsvector('confab_search', regexp_replace(NEW.content, '[^[:alnum:]]+', ' ', 'g')))
    ON CONFLICT (message_id) DO UPDATE SET search = EXCLUDED.search;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages
FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)
EXECUTE FUNCTION message_search_update();

-- +goose Down
DROP TRIGGER message_search_update ON messages;
DROP FUNCTION message_search_update();
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('confab_search', regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
DROP TABLE search_indexed;
DROP TABLE message_search;
