-- Message search: messages_fts is an FTS5 index of messages.content
-- (external content: the text is stored once, in messages), folded by the
-- unicode61 tokenizer without case or diacritics, and of
-- messages.conversation_id, so that a search names the viewer's
-- conversations in its query and the index keeps only their messages.
-- prefix = '3' keeps every word's first three characters as well, so
-- that a search's last word, a prefix, is read newest first and lazily:
-- one of three characters from that index, a longer one by its first
-- three, the rows checked against the whole word (db/search.go).
--
-- The index follows the messages in transactions of its own, not in the
-- send's: search_indexed.id is its high-water mark, every message with an
-- id up to it is in the index and none above it. The store's indexer
-- (db/searchindex.go) adds the messages above the mark after their commit,
-- a batch at a time, and moves the mark in the same transaction; a search
-- first does the same for whatever is left, so a message is found as soon
-- as its send was answered. Ids only grow (AUTOINCREMENT), so a message is
-- never stored below the mark.
--
-- An edit or a deletion of a message at or below the mark updates the
-- index through the triggers below, which delete the old terms and add
-- the new; a message above the mark is not in the index yet, and is
-- indexed later with its content of then. A deleted message's content is
-- '' (it has no words to find), and the search also filters on
-- deleted_at. Anything else that inserts into messages (confab bench
-- seed) rebuilds the index and sets the mark once it is done.

-- +goose Up
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    conversation_id,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '3',
    columnsize = 0
);

-- One row: the id up to which every message is indexed.
CREATE TABLE search_indexed (
    id INTEGER NOT NULL
);

-- Index the messages already stored.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
INSERT INTO search_indexed (id) SELECT coalesce(max(id), 0) FROM messages;

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.id <= (SELECT id FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, conversation_id) VALUES ('delete', old.id, old.content, old.conversation_id);
    INSERT INTO messages_fts (rowid, content, conversation_id) VALUES (new.id, new.content, new.conversation_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT id FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, conversation_id) VALUES ('delete', old.id, old.content, old.conversation_id);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE search_indexed;
DROP TABLE messages_fts;
