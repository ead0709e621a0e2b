-- +goose Up
-- Native media publishing, exactly once (SPEC §2 Media, §5).
--   publication_media: the network's reference for each image of a
--     publication (Mastodon's media id, Bluesky's blob, X's media id; the
--     log and webhook networks keep the upload's own id), written the moment
--     the network gave it and before the post is created, so a retry reuses
--     it and never uploads that image again.
--   publications.uploading: the attempt is still uploading media and has not
--     sent the post yet. A crash while it is true leaves no doubt about the
--     post (uploaded media alone are not published), so the next attempt
--     goes on without having to settle one; it turns false just before the
--     post is sent, from when on in_flight means what it always meant.
-- publications is one row per published revision, not posts/post_events;
-- the column has a constant default, so adding it rewrites nothing.
ALTER TABLE publications ADD COLUMN uploading boolean NOT NULL DEFAULT false;

CREATE TABLE publication_media (
    post_id     uuid NOT NULL,
    revision    int NOT NULL,
    position    int NOT NULL CHECK (position >= 0 AND position < 4),
    media_id    text NOT NULL,
    sha256      text NOT NULL DEFAULT '',
    network_ref text NOT NULL CHECK (length(network_ref) <= 4096),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, revision, position),
    FOREIGN KEY (post_id, revision) REFERENCES publications (post_id, revision) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE publication_media;
ALTER TABLE publications DROP COLUMN uploading;
