-- +goose Up
-- Users are global and identified by e-mail, compared case-insensitively.
CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text NOT NULL,
    name              text NOT NULL DEFAULT '',
    allow_invitations boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE orgs (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A member is a user inside one org. Removal is a soft delete (removed_at) so
-- the audit log keeps its actors; every query filters removed members out.
CREATE TABLE members (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_role      text NOT NULL CHECK (org_role IN ('owner', 'admin', 'member')),
    slack_user_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    removed_at    timestamptz
);
CREATE UNIQUE INDEX members_org_user_key ON members (org_id, user_id) WHERE removed_at IS NULL;
CREATE INDEX members_user_idx ON members (user_id) WHERE removed_at IS NULL;

-- API tokens are shown once; only their SHA-256 is stored.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE members;
DROP TABLE orgs;
DROP TABLE users;
