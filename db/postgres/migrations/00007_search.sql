-- Message search, as db/migrations/00009 does for the SQLite store:
-- messages.search is a tsvector of the content, generated (so that every
-- write of a message, the group commit's included, keeps it in the same
-- transaction with no code of ours), under a GIN index.
--
-- confab_search is the 'simple' configuration (no stemming and no stop
-- words, like SQLite's unicode61: words match as typed, in any language)
-- with the unaccent dictionary in front of it, so that "Café" and "cafe"
-- are one word, as with remove_diacritics there. A configuration rather
-- than unaccent() around the content: to_tsvector(regconfig, text) is
-- IMMUTABLE, as a generated column needs. (Ranking and snippets are made
-- in Go from the content, as for SQLite: chat.SearchText.)
--
-- unaccent ships in PostgreSQL's contrib (Debian's postgresql package
-- has it) and is a trusted extension: the database owner may create it.
-- Where it is not available at all (or this role may not create it),
-- confab_search is plain 'simple', and search ignores case but not
-- diacritics. The extension is created once per
-- database, wherever it already is (the tests' schemas share it).

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    schema_name text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;
        EXCEPTION
            WHEN unique_violation OR duplicate_object THEN
                NULL; -- created meanwhile by another migration (tests in parallel)
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'may not create the unaccent extension: %', SQLERRM;
        END;
    END IF;
    CREATE TEXT SEARCH CONFIGURATION confab_search (COPY = pg_catalog.simple);
    SELECT n.nspname INTO schema_name FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'unaccent';
    IF schema_name IS NOT NULL THEN
        EXECUTE format('ALTER TEXT SEARCH CONFIGURATION confab_search
            ALTER MAPPING FOR hword, hword_part, word, numhword, numword WITH %I.unaccent, simple', schema_name);
    ELSE
        RAISE NOTICE 'unaccent is not available: message search will not ignore diacritics';
    END IF;
END
$$;
-- +goose StatementEnd

-- The content is indexed with every run of characters that are not
-- letters or digits made one space: the words chat.SearchTerms makes of a
-- question and SQLite's unicode61 makes of a message. Without it the
-- default parser keeps "3.14", "a-b", e-mail addresses, hosts and paths
-- as words of their own and skips what looks like an HTML tag, and the
-- two stores would find different things. [:alnum:] knows non-ASCII
-- letters under a UTF-8 LC_CTYPE (Debian's default, C.UTF-8 included).
--
-- Adding a stored generated column rewrites the table: existing messages
-- are indexed here. A deleted message's content is '', so it has nothing
-- to find; the search also filters on deleted_at.
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('confab_search', regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))) STORED;
CREATE INDEX messages_search ON messages USING gin (search);

-- +goose Down
DROP INDEX messages_search;
ALTER TABLE messages DROP COLUMN search;
DROP TEXT SEARCH CONFIGURATION confab_search;
