-- As db/migrations/00015 for the SQLite store: deliveries that are done
-- (sent, failed or gone) are kept for a while for operators (last_error,
-- attempts), then pruned by the push dispatcher (PUSH_RETENTION;
-- app/notify/dispatch.go), so that the outbox does not grow with every
-- push ever sent. deliveries_done is the pruning's range: done rows by
-- when they were last changed. Pending rows, the sender's, are not in it.
-- deliveries_user is a user's own outbox (GET /api/push/deliveries/),
-- newest first.

-- +goose Up
CREATE INDEX deliveries_done ON deliveries (updated_at) WHERE state <> 'pending';
CREATE INDEX deliveries_user ON deliveries (user_id, id);

-- +goose Down
DROP INDEX deliveries_user;
DROP INDEX deliveries_done;
