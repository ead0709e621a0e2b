-- +goose Up
-- Posts mirror their workflow: the workflow is the source of truth, and every
-- state change is written here (SavePostState) for the API's lists and reads.
CREATE TABLE posts (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    account_id      uuid NOT NULL,
    author_id       uuid NOT NULL,
    text            text NOT NULL,
    media_urls      text[] NOT NULL DEFAULT '{}',
    scheduled_at    timestamptz,
    revision        int NOT NULL DEFAULT 1,
    content_hash    text NOT NULL,
    status          text NOT NULL,
    current_step    int NOT NULL DEFAULT 0,
    total_steps     int NOT NULL DEFAULT 0,
    -- awaiting: member ids the open step waits for now (GET /approvals).
    awaiting        uuid[] NOT NULL DEFAULT '{}',
    deadline        timestamptz,
    external_id     text,
    external_url    text,
    published_at    timestamptz,
    last_error      text,
    -- state: the workflow's whole PostState as last mirrored.
    state           jsonb,
    state_updated_at timestamptz,
    -- chain: the approval chain snapshot taken at submission.
    chain           jsonb NOT NULL,
    needs_approval  boolean NOT NULL,
    -- The workflow was started (NULL: not yet; the reconciler starts it).
    workflow_started_at timestamptz,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, account_id) REFERENCES accounts (org_id, id),
    FOREIGN KEY (org_id, author_id) REFERENCES members (org_id, id)
);
CREATE INDEX posts_org_list_idx ON posts (org_id, id DESC);
CREATE INDEX posts_org_status_idx ON posts (org_id, status, id DESC);
CREATE INDEX posts_awaiting_idx ON posts USING gin (awaiting);
CREATE INDEX posts_unstarted_idx ON posts (created_at) WHERE workflow_started_at IS NULL;
CREATE UNIQUE INDEX posts_idempotency_key ON posts (org_id, author_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The audit log: append-only; key makes a retried write a no-op.
CREATE TABLE post_events (
    org_id       uuid NOT NULL,
    post_id      uuid NOT NULL,
    key          text NOT NULL,
    seq          int NOT NULL,
    type         text NOT NULL,
    actor        uuid,
    source       text NOT NULL,
    revision     int NOT NULL,
    content_hash text NOT NULL,
    step         int NOT NULL DEFAULT 0,
    reason       text NOT NULL DEFAULT '',
    detail       text NOT NULL DEFAULT '',
    at           timestamptz NOT NULL,
    PRIMARY KEY (post_id, key),
    FOREIGN KEY (org_id, post_id) REFERENCES posts (org_id, id) ON DELETE CASCADE
);
CREATE INDEX post_events_seq_idx ON post_events (post_id, seq);

-- One publication per post revision, written before the network is called:
-- a second attempt finds it and looks the first one up instead of posting
-- again (SPEC §5).
CREATE TABLE publications (
    post_id      uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    revision     int NOT NULL,
    network      text NOT NULL,
    -- idem_key: what the network deduplicates on (Idempotency-Key, record
    -- key, webhook-id), fixed for the revision.
    idem_key     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('attempting', 'published', 'failed', 'unknown')),
    attempts     int NOT NULL DEFAULT 0,
    external_id  text,
    external_url text,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, revision)
);

-- +goose Down
DROP TABLE publications;
DROP TABLE post_events;
DROP TABLE posts;
