-- +goose Up
-- The org's directory: invitations, teams, social accounts, account grants and
-- approval chains. Every table carries org_id, and every reference to another
-- org-scoped row includes org_id in its foreign key, so a row of one org can
-- never point at a row of another.

-- Composite keys that the foreign keys below reference.
ALTER TABLE members ADD CONSTRAINT members_org_id_key UNIQUE (org_id, id);
-- A Slack user maps to at most one active member of an org.
CREATE UNIQUE INDEX members_org_slack_key ON members (org_id, slack_user_id)
    WHERE removed_at IS NULL AND slack_user_id IS NOT NULL;
CREATE INDEX members_org_idx ON members (org_id, id) WHERE removed_at IS NULL;
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE teams (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (name <> ''),
    slack_channel_id text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX teams_org_name_key ON teams (org_id, lower(name));

-- Team membership is a plain row: removing it (or soft-deleting the member)
-- takes effect on the next read, nothing caches it.
CREATE TABLE team_members (
    org_id     uuid NOT NULL,
    team_id    uuid NOT NULL,
    member_id  uuid NOT NULL,
    team_role  text NOT NULL CHECK (team_role IN ('admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, member_id),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, member_id) REFERENCES members (org_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_member_idx ON team_members (member_id);

-- Invitations: the token is shown once; only its SHA-256 is stored. At most
-- one pending invitation per e-mail and org (a new one replaces it).
CREATE TABLE invitations (
    id             uuid PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email          text NOT NULL,
    name           text NOT NULL DEFAULT '',
    org_role       text NOT NULL CHECK (org_role IN ('owner', 'admin', 'member')),
    token_hash     bytea NOT NULL UNIQUE,
    invited_by     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    -- status: pending, accepted, declined, or replaced (by a newer invitation).
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'replaced')),
    answered_at    timestamptz,
    member_id      uuid,
    FOREIGN KEY (org_id, invited_by) REFERENCES members (org_id, id),
    FOREIGN KEY (org_id, member_id) REFERENCES members (org_id, id)
);
CREATE UNIQUE INDEX invitations_pending_key ON invitations (org_id, lower(email)) WHERE status = 'pending';

-- The teams an invitee joins on accepting.
CREATE TABLE invitation_teams (
    org_id        uuid NOT NULL,
    invitation_id uuid NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    team_id       uuid NOT NULL,
    PRIMARY KEY (invitation_id, team_id),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id) ON DELETE CASCADE
);

-- Approval chains: a named, reusable object; its steps are rows so that a
-- team or member a chain names is a real foreign key.
CREATE TABLE approval_chains (
    id                       uuid PRIMARY KEY,
    org_id                   uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name                     text NOT NULL CHECK (name <> ''),
    require_approval_for_all boolean NOT NULL DEFAULT false,
    late_policy              text NOT NULL DEFAULT 'expire' CHECK (late_policy IN ('expire', 'publish_when_approved', 'hold')),
    distinct_approvers       boolean NOT NULL DEFAULT true,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX approval_chains_org_name_key ON approval_chains (org_id, lower(name));

-- Durations are nanoseconds (Go's time.Duration); 0 means "not set".
CREATE TABLE approval_chain_steps (
    org_id              uuid NOT NULL,
    chain_id            uuid NOT NULL,
    position            int NOT NULL CHECK (position BETWEEN 1 AND 3),
    approver_member_id  uuid,
    approver_team_id    uuid,
    approver_role       text CHECK (approver_role IN ('approvers')),
    quorum              int NOT NULL DEFAULT 1 CHECK (quorum >= 1),
    timeout_ns          bigint NOT NULL DEFAULT 0 CHECK (timeout_ns = 0 OR timeout_ns >= 1000000000),
    fallback_team_id    uuid,
    fallback_timeout_ns bigint NOT NULL DEFAULT 0 CHECK (fallback_timeout_ns = 0 OR fallback_timeout_ns >= 1000000000),
    PRIMARY KEY (chain_id, position),
    CHECK (num_nonnulls(approver_member_id, approver_team_id, approver_role) = 1),
    FOREIGN KEY (org_id, chain_id) REFERENCES approval_chains (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, approver_member_id) REFERENCES members (org_id, id),
    FOREIGN KEY (org_id, approver_team_id) REFERENCES teams (org_id, id),
    FOREIGN KEY (org_id, fallback_team_id) REFERENCES teams (org_id, id)
);
CREATE INDEX approval_chain_steps_team_idx ON approval_chain_steps (approver_team_id) WHERE approver_team_id IS NOT NULL;
CREATE INDEX approval_chain_steps_fallback_idx ON approval_chain_steps (fallback_team_id) WHERE fallback_team_id IS NOT NULL;

-- Social accounts. Credentials are sealed with AES-256-GCM under
-- COUNTERSIGN_SECRET_KEY (bound to the account id) and never leave the store
-- except to the publisher. Deletion is soft: posts keep their account.
CREATE TABLE accounts (
    id                uuid PRIMARY KEY,
    org_id            uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    network           text NOT NULL CHECK (network IN ('mastodon', 'bluesky', 'x', 'webhook', 'log')),
    handle            text NOT NULL CHECK (handle <> ''),
    display_name      text NOT NULL DEFAULT '',
    timezone          text NOT NULL,
    settings          jsonb NOT NULL DEFAULT '{}',
    credentials       bytea,
    approval_chain_id uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, approval_chain_id) REFERENCES approval_chains (org_id, id)
);
CREATE UNIQUE INDEX accounts_org_handle_key ON accounts (org_id, network, lower(handle)) WHERE deleted_at IS NULL;
CREATE INDEX accounts_chain_idx ON accounts (approval_chain_id) WHERE approval_chain_id IS NOT NULL;

-- Account grants, to a member or to a team.
CREATE TABLE account_grants (
    org_id         uuid NOT NULL,
    account_id     uuid NOT NULL,
    member_id      uuid,
    team_id        uuid,
    level          text NOT NULL CHECK (level IN ('none', 'limited', 'editor', 'advanced', 'custom')),
    custom_publish text CHECK (custom_publish IN ('direct', 'with_approval', 'none')),
    custom_approve boolean,
    custom_manage  boolean,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(member_id, team_id) = 1),
    CHECK ((level = 'custom') = (custom_publish IS NOT NULL AND custom_approve IS NOT NULL AND custom_manage IS NOT NULL)),
    FOREIGN KEY (org_id, account_id) REFERENCES accounts (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, member_id) REFERENCES members (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX account_grants_member_key ON account_grants (account_id, member_id) WHERE member_id IS NOT NULL;
CREATE UNIQUE INDEX account_grants_team_key ON account_grants (account_id, team_id) WHERE team_id IS NOT NULL;
CREATE INDEX account_grants_team_idx ON account_grants (team_id) WHERE team_id IS NOT NULL;

-- +goose Down
DROP TABLE account_grants;
DROP TABLE accounts;
DROP TABLE approval_chain_steps;
DROP TABLE approval_chains;
DROP TABLE invitation_teams;
DROP TABLE invitations;
DROP TABLE team_members;
DROP TABLE teams;
DROP INDEX api_tokens_user_idx;
DROP INDEX members_org_idx;
DROP INDEX members_org_slack_key;
ALTER TABLE members DROP CONSTRAINT members_org_id_key;
