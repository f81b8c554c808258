-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE, -- lower-cased: usernames are unique case-insensitively
    display_name  TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL         -- Unix milliseconds, like every timestamp here
);
CREATE INDEX users_display_name ON users (lower(display_name));

CREATE TABLE refresh_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB    NOT NULL UNIQUE,    -- SHA-256 of the token: a database leak yields no usable token
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chain_id   TEXT    NOT NULL,           -- one login; every rotation stays in it
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_chain ON refresh_tokens (chain_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    title           TEXT    NOT NULL DEFAULT '',
    is_group        INTEGER NOT NULL,
    direct_key      TEXT UNIQUE,           -- "low:high" user ids of a direct conversation
    created_by      INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_message_id INTEGER
);
CREATE INDEX conversations_activity ON conversations (updated_at DESC, id DESC);

CREATE TABLE participants (
    conversation_id      INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id              INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    joined_at            INTEGER NOT NULL,
    last_read_message_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX participants_user ON participants (user_id, conversation_id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids only grow
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content         TEXT    NOT NULL,
    client_id       TEXT,
    created_at      INTEGER NOT NULL,
    edited_at       INTEGER,
    deleted_at      INTEGER
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_id);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE messages;
DROP TABLE participants;
DROP TABLE conversations;
DROP TABLE refresh_tokens;
DROP TABLE users;
