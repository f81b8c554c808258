-- Devices and notification preferences, for push notifications.
--
-- devices: one row per device a user asked to be notified on.
--   platform    'fcm', 'apns' or 'webpush'.
--   token       the FCM registration token or the APNs device token; for
--               'webpush', the subscription's endpoint URL. One column, so
--               that one unique key says "the same device" on every
--               platform: a token (or endpoint) belongs to one user at a
--               time, and registering it again as another user moves it.
--   p256dh,     the Web Push subscription's keys as the browser gave them
--   auth        (base64url); NULL for the other platforms.
--   created_at  when the user first registered it (Unix milliseconds).
--   updated_at  when they last registered it: the per-user cap drops the
--               device registered least recently.
--
-- participants.muted_until: NULL when the participant has not muted the
-- conversation, else Unix milliseconds until which it is muted, where
-- 9223372036854775807 (the largest int64) means forever.
--
-- The number 00009 is another branch's.

-- +goose Up
CREATE TABLE devices (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform   TEXT    NOT NULL CHECK (platform IN ('fcm', 'apns', 'webpush')),
    token      TEXT    NOT NULL,
    p256dh     TEXT,
    auth       TEXT,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    UNIQUE (platform, token)
);
CREATE INDEX devices_user ON devices (user_id, updated_at);
ALTER TABLE participants ADD COLUMN muted_until BIGINT;

-- +goose Down
ALTER TABLE participants DROP COLUMN muted_until;
DROP TABLE devices;
