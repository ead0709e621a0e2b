-- +goose Up
-- Exactly-once publishing, hardened (SPEC §5):
--   in_flight: an attempt was begun and its outcome is not settled. The next
--     attempt finds it true and must settle the doubt (look the post up, or
--     resend with the same key where the network deduplicates) before
--     posting again. An attempt that surely did not post clears it.
--   evidence: what each attempt did and saw, for a person looking at a post
--     that ended needs_attention. Never credentials.
-- idem_key stays what the network deduplicates on: Mastodon's
-- Idempotency-Key, the webhook-id, or the Bluesky record key (a TID chosen
-- by the first attempt and kept).
ALTER TABLE publications
    ADD COLUMN in_flight boolean NOT NULL DEFAULT false,
    ADD COLUMN evidence  text;
-- An attempt under way during the upgrade is in doubt.
UPDATE publications SET in_flight = true WHERE status = 'attempting';

-- +goose Down
ALTER TABLE publications DROP COLUMN evidence, DROP COLUMN in_flight;
