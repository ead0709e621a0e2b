-- +goose NO TRANSACTION
-- +goose Up
-- A million posts (docs/benchmark.md, "A million posts").
--
-- Indexes for the filters of GET /v1/orgs/{org}/posts, newest first with a
-- keyset cursor (id < cursor): by account and by author (by status and
-- unfiltered already have theirs, posts_org_status_idx and
-- posts_org_list_idx). They also serve the foreign keys to accounts and
-- members. posts_open_idx holds only the posts the reconciler's repair pass
-- walks (started, not closed), so the pass no longer reads every post's state.
-- posts_org_list_idx (org_id, id DESC) goes: the unique (org_id, id) index
-- answers the same scans backwards, and one index less is one write less
-- per post change.
--
-- LOCKS: the indexes are built CONCURRENTLY, so reads and writes of posts go
-- on while they build (at a million posts on the bench machine: about 2 s
-- each, 8 s for posts_open_idx, which reads every post's state; 18.7 s for
-- the whole migration); that is why this migration runs outside a
-- transaction. A build that fails leaves an invalid index: the DROP before
-- each CREATE makes a second run rebuild it.
DROP INDEX CONCURRENTLY IF EXISTS posts_org_account_idx;
CREATE INDEX CONCURRENTLY posts_org_account_idx ON posts (org_id, account_id, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS posts_org_author_idx;
CREATE INDEX CONCURRENTLY posts_org_author_idx ON posts (org_id, author_id, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS posts_open_idx;
CREATE INDEX CONCURRENTLY posts_open_idx ON posts (id)
    WHERE workflow_started_at IS NOT NULL AND NOT coalesce((state->>'closed')::boolean, false);
DROP INDEX CONCURRENTLY IF EXISTS posts_org_list_idx;

-- post_counts: how many posts each org has in each status, kept by triggers
-- in the transaction of every change, so the metrics gauge
-- countersign_posts{status} sums at most orgs x statuses rows instead of
-- counting every post at each scrape. Inserts and deletes are counted per
-- statement (a bulk COPY or a cascade costs one aggregated upsert); a status
-- change per row, touching its two counters in one order (by status) so that
-- two opposite changes cannot deadlock.
--
-- LOCKS: CREATE TRIGGER takes SHARE ROW EXCLUSIVE on posts: writes to posts
-- (submissions, state mirrors) wait while the counts are backfilled (one
-- GROUP BY over posts: writes waited up to 1.3 s at a million posts on the
-- bench machine); reads go on.
-- One statement (one implicit transaction), so a failure leaves nothing.
-- +goose StatementBegin
CREATE TABLE IF NOT EXISTS post_counts (
    org_id uuid NOT NULL,
    status text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (org_id, status)
);

CREATE OR REPLACE FUNCTION post_counts_add(o uuid, s text, d bigint) RETURNS void LANGUAGE sql AS $f$
    INSERT INTO post_counts AS c (org_id, status, n) VALUES (o, s, d)
    ON CONFLICT (org_id, status) DO UPDATE SET n = c.n + excluded.n
$f$;

CREATE OR REPLACE FUNCTION post_counts_rows() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO post_counts AS c (org_id, status, n)
        SELECT org_id, status, count(*) FROM post_counts_new GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (org_id, status) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO post_counts AS c (org_id, status, n)
        SELECT org_id, status, -count(*) FROM post_counts_old GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (org_id, status) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END
$f$;

CREATE OR REPLACE FUNCTION post_counts_status() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF OLD.status < NEW.status THEN
        PERFORM post_counts_add(OLD.org_id, OLD.status, -1);
        PERFORM post_counts_add(NEW.org_id, NEW.status, 1);
    ELSE
        PERFORM post_counts_add(NEW.org_id, NEW.status, 1);
        PERFORM post_counts_add(OLD.org_id, OLD.status, -1);
    END IF;
    RETURN NULL;
END
$f$;

DROP TRIGGER IF EXISTS post_counts_insert ON posts;
DROP TRIGGER IF EXISTS post_counts_delete ON posts;
DROP TRIGGER IF EXISTS post_counts_update ON posts;
CREATE TRIGGER post_counts_insert AFTER INSERT ON posts
    REFERENCING NEW TABLE AS post_counts_new FOR EACH STATEMENT EXECUTE FUNCTION post_counts_rows();
CREATE TRIGGER post_counts_delete AFTER DELETE ON posts
    REFERENCING OLD TABLE AS post_counts_old FOR EACH STATEMENT EXECUTE FUNCTION post_counts_rows();
CREATE TRIGGER post_counts_update AFTER UPDATE OF status ON posts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION post_counts_status();

DELETE FROM post_counts;
INSERT INTO post_counts (org_id, status, n) SELECT org_id, status, count(*) FROM posts GROUP BY 1, 2;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP TRIGGER IF EXISTS post_counts_insert ON posts;
DROP TRIGGER IF EXISTS post_counts_delete ON posts;
DROP TRIGGER IF EXISTS post_counts_update ON posts;
DROP FUNCTION IF EXISTS post_counts_rows();
DROP FUNCTION IF EXISTS post_counts_status();
DROP FUNCTION IF EXISTS post_counts_add(uuid, text, bigint);
DROP TABLE IF EXISTS post_counts;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_org_list_idx ON posts (org_id, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS posts_open_idx;
DROP INDEX CONCURRENTLY IF EXISTS posts_org_author_idx;
DROP INDEX CONCURRENTLY IF EXISTS posts_org_account_idx;
