-- +goose NO TRANSACTION
-- +goose Up
-- Comments and the turnaround report (issue 17).
--
-- A comment is a post event (type 'comment', key 'comment/<uuid v7>'), so
-- post_events' primary key (post_id, key) already lists a post's comments in
-- order: no index for them. comment_outbox holds the comments still to be
-- posted as thread replies under the post's Slack approval messages; the
-- worker claims rows (a lease in next_attempt_at), replies, and deletes them.
CREATE TABLE IF NOT EXISTS comment_outbox (
    post_id         uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    key             text NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, key)
);
CREATE INDEX IF NOT EXISTS comment_outbox_due_idx ON comment_outbox (next_attempt_at);

-- The report (GET /v1/orgs/{org}/reports/approvals) reads an org's step,
-- decision, fallback, rejection and expiry events in a time range. The
-- partial index holds only those kinds (reminders, edits, publishing and
-- comments stay out of it).
--
-- LOCKS: built CONCURRENTLY, so reads and writes of post_events go on while
-- it builds (11,000,000 events, 1.4 GB, 50 orgs: 19.9 s on the shared
-- 2-core machine under load, a 232 MB index; docs/operating.md); that is why
-- this migration runs outside a transaction. comment_outbox is a new, empty
-- table: no lock on existing ones. A failed build leaves an invalid index:
-- the DROP makes a second run rebuild it.
DROP INDEX CONCURRENTLY IF EXISTS post_events_report_idx;
CREATE INDEX CONCURRENTLY post_events_report_idx ON post_events (org_id, at)
    WHERE type IN ('step_opened', 'decision_counted', 'fallback_opened', 'rejected', 'expired');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS post_events_report_idx;
DROP TABLE IF EXISTS comment_outbox;
