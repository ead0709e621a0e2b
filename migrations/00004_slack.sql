-- +goose Up
-- Every Slack message Countersign sent about a post: approval requests (whose
-- buttons are updated in place with chat.update whenever the post changes),
-- reminders, thread replies and notices to the author. One row per
-- (post, revision, step, kind, recipient) makes a retried notification a
-- no-op instead of a second message.
CREATE TABLE slack_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      uuid NOT NULL,
    post_id     uuid NOT NULL,
    revision    int NOT NULL,
    -- step is 1-based; 0 for messages about the whole post.
    step        int NOT NULL DEFAULT 0,
    -- kind: approval (has buttons while open), or what a notice is about
    -- (reminder, fallback, rejected, published, ...).
    kind        text NOT NULL CHECK (kind <> ''),
    -- recipient: member:<id>, channel:<id> or thread:<parent message id>.
    recipient   text NOT NULL CHECK (recipient <> ''),
    member_id   uuid,
    team_id     uuid,
    channel_id  text NOT NULL,
    ts          text NOT NULL,
    thread_ts   text NOT NULL DEFAULT '',
    -- body: the Block Kit blocks the message was sent with, kept so that an
    -- update shows what the approver saw (the post may have been edited).
    body        jsonb NOT NULL DEFAULT '[]',
    -- open: the message shows its approve and reject buttons.
    open        boolean NOT NULL DEFAULT false,
    -- rendered: hash of what the message shows now; an update that would
    -- show the same is skipped.
    rendered    text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, revision, step, kind, recipient),
    FOREIGN KEY (org_id, post_id) REFERENCES posts (org_id, id) ON DELETE CASCADE
);
CREATE INDEX slack_messages_post_kind_idx ON slack_messages (post_id, kind);

-- +goose Down
DROP TABLE slack_messages;
