-- Message search: messages_fts is an FTS5 index of messages.content
-- (external content: the text is stored once, in messages), folded by the
-- unicode61 tokenizer without case or diacritics, and of
-- messages.conversation_id, so that a search names the viewer's
-- conversations in its query and the index keeps only their messages.
--
-- The index is kept in the same transaction as every write of a message,
-- so it never lags behind what is stored: a send is indexed by the writer
-- itself (db/message.go, sqlIndexMessage), which already holds the
-- content; an edit or a deletion (off the send path) by the triggers
-- below, which delete the old terms and add the new. A deleted message's
-- content is '' (it has no words to find), and the search also filters on
-- deleted_at. Anything else that inserts into messages (confab bench seed)
-- rebuilds the index once it is done.

-- +goose Up
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    conversation_id,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    columnsize = 0
);

-- Index the messages already stored.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, conversation_id) VALUES ('delete', old.id, old.content, old.conversation_id);
    INSERT INTO messages_fts (rowid, content, conversation_id) VALUES (new.id, new.content, new.conversation_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, conversation_id) VALUES ('delete', old.id, old.content, old.conversation_id);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
