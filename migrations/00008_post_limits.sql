-- +goose Up
-- Submissions and their starts (SPEC §3, §8 Limits):
--   request_hash: SHA-256 of the submission's body, kept with its
--     Idempotency-Key, so a replay with another body is refused (422
--     idempotency_key_reused) instead of silently answering the first post.
--   start_attempts, next_attempt_at: the reconciler's back-off on a post
--     whose workflow start keeps failing, so one poisoned post does not block
--     the lost starts behind it.
-- Idempotency keys are scoped to their caller (org, author) by
-- posts_idempotency_key already; new ones are at most 255 characters.
--
-- LOCKS a big table: ALTER TABLE takes ACCESS EXCLUSIVE on posts and holds it
-- to the end of the transaction, which rebuilds posts_unstarted_idx (a scan
-- of every post): reads and writes of posts wait meanwhile, about 1 s at a
-- million posts on the bench machine (docs/benchmark.md, "A million posts").
-- The new columns need no rewrite (constant or no defaults) and the CHECK is
-- NOT VALID, so the time is the index build.
ALTER TABLE posts
    ADD COLUMN request_hash    text,
    ADD COLUMN start_attempts  int NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD CONSTRAINT posts_idempotency_key_len CHECK (length(idempotency_key) <= 255) NOT VALID;
DROP INDEX IF EXISTS posts_unstarted_idx;
CREATE INDEX posts_unstarted_idx ON posts (coalesce(next_attempt_at, created_at)) WHERE workflow_started_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS posts_unstarted_idx;
CREATE INDEX posts_unstarted_idx ON posts (created_at) WHERE workflow_started_at IS NULL;
ALTER TABLE posts
    DROP CONSTRAINT posts_idempotency_key_len,
    DROP COLUMN next_attempt_at,
    DROP COLUMN start_attempts,
    DROP COLUMN request_hash;
