-- +goose Up
-- Media (SPEC §2 "Media", issue 16): uploaded images of an org. Their bytes
-- live in the blob store (COUNTERSIGN_BLOB_URL) under blob_key, which the
-- server builds from the org's and the media's ids (never from user input).
-- attached_at is set when a submission or an edit that passed its checks
-- names the image; uploads never attached are deleted after 24 hours
-- (media_unattached_idx holds only those, for the sweep).
CREATE TABLE media (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    uploaded_by  uuid NOT NULL,
    content_type text NOT NULL,
    bytes        bigint NOT NULL CHECK (bytes > 0),
    width        int NOT NULL CHECK (width > 0),
    height       int NOT NULL CHECK (height > 0),
    sha256       text NOT NULL,
    blob_key     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    attached_at  timestamptz,
    UNIQUE (org_id, id)
);
CREATE INDEX media_unattached_idx ON media (created_at) WHERE attached_at IS NULL;

-- posts.media: the images of a submission ([{id, alt, sha256}]), so the
-- reconciler can start a post whose first start was lost. Later revisions'
-- images travel in the workflow's state (posts.state), like the text.
--
-- LOCKS: ADD COLUMN without a default changes only the catalog: ACCESS
-- EXCLUSIVE on posts for an instant, no rewrite, whatever the table's size.
ALTER TABLE posts ADD COLUMN media jsonb;

-- +goose Down
ALTER TABLE posts DROP COLUMN media;
DROP TABLE media;
