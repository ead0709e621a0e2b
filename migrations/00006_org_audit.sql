-- +goose Up
-- An admin can revoke a pending invitation; its token then answers 410
-- invitation_revoked.
ALTER TABLE invitations DROP CONSTRAINT invitations_status_check;
ALTER TABLE invitations ADD CONSTRAINT invitations_status_check
    CHECK (status IN ('pending', 'accepted', 'declined', 'replaced', 'revoked'));
CREATE INDEX invitations_org_pending_idx ON invitations (org_id, id) WHERE status = 'pending';

-- The org audit log: what admins change in the directory (Slack links and
-- roles of members, revoked invitations, ...), with the changed fields
-- before and after. Rows are written in the transaction of the change they
-- record, and never changed or deleted (the trigger below), so an org with
-- an audit log cannot be deleted either (no ON DELETE CASCADE).
CREATE TABLE org_audit (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES orgs (id),
    -- actor_member_id: the member who made the change; NULL for the system.
    actor_member_id uuid,
    source          text NOT NULL CHECK (source IN ('api', 'slack', 'temporal', 'system')),
    object_type     text NOT NULL CHECK (object_type <> ''),
    object_id       text NOT NULL,
    action          text NOT NULL CHECK (action <> ''),
    before          jsonb NOT NULL DEFAULT '{}',
    after           jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, actor_member_id) REFERENCES members (org_id, id)
);
CREATE INDEX org_audit_org_idx ON org_audit (org_id, id);
CREATE INDEX org_audit_object_idx ON org_audit (org_id, object_type, object_id, id);

-- +goose StatementBegin
CREATE FUNCTION org_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'org_audit is append-only: rows cannot be changed or deleted';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER org_audit_append_only BEFORE UPDATE OR DELETE ON org_audit
    FOR EACH ROW EXECUTE FUNCTION org_audit_append_only();

-- +goose Down
DROP TABLE org_audit;
DROP FUNCTION org_audit_append_only();
DROP INDEX invitations_org_pending_idx;
UPDATE invitations SET status = 'replaced' WHERE status = 'revoked';
ALTER TABLE invitations DROP CONSTRAINT invitations_status_check;
ALTER TABLE invitations ADD CONSTRAINT invitations_status_check
    CHECK (status IN ('pending', 'accepted', 'declined', 'replaced'));
