-- The schema of the SQLite store (db/migrations 00001 and 00002) in one
-- step. Timestamps are Unix milliseconds in BIGINT, exactly as in SQLite,
-- so that both stores read and write the same values.

-- +goose Up
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT   NOT NULL,
    username_key  TEXT   NOT NULL UNIQUE,  -- lower-cased in Go: usernames are unique case-insensitively
    display_name  TEXT   NOT NULL DEFAULT '',
    display_key   TEXT   NOT NULL DEFAULT '', -- lower-cased in Go, for search: the same folding as SQLite's store
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL           -- Unix milliseconds, like every timestamp here
);
-- Prefix search (LIKE 'abc%') whatever the database's collation.
CREATE INDEX users_username_prefix ON users (username_key text_pattern_ops);
CREATE INDEX users_display_prefix ON users (display_key text_pattern_ops);

CREATE TABLE refresh_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash BYTEA  NOT NULL UNIQUE,     -- SHA-256 of the token: a database leak yields no usable token
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chain_id   TEXT   NOT NULL,            -- one login; every rotation stays in it
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_chain ON refresh_tokens (chain_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE conversations (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title           TEXT    NOT NULL DEFAULT '',
    is_group        BOOLEAN NOT NULL,
    direct_key      TEXT UNIQUE,           -- "low:high" user ids of a direct conversation
    created_by      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    last_message_id BIGINT,
    last_seq        BIGINT  NOT NULL DEFAULT 0 -- the last messages.seq handed out; never goes back
);
CREATE INDEX conversations_activity ON conversations (updated_at DESC, id DESC);

CREATE TABLE participants (
    conversation_id      BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id              BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 TEXT   NOT NULL CHECK (role IN ('admin', 'member')),
    joined_at            BIGINT NOT NULL,
    last_read_message_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX participants_user ON participants (user_id, conversation_id);

CREATE TABLE messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- taken after the conversation's lock: grows with seq
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,       -- 1, 2, 3… per conversation, in commit order
    sender_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content         TEXT   NOT NULL,
    client_id       TEXT,
    created_at      BIGINT NOT NULL,
    edited_at       BIGINT,
    deleted_at      BIGINT
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE UNIQUE INDEX messages_seq ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_id);

CREATE TABLE settings (
    key   TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE messages;
DROP TABLE participants;
DROP TABLE conversations;
DROP TABLE refresh_tokens;
DROP TABLE users;
