-- +goose Up
-- Invitation mail (SPEC §2 Invitation): with SMTP configured, an invitation
-- is queued for delivery in the transaction that creates it, and any `serve`
-- replica's dispatcher sends it: it claims due rows with FOR UPDATE SKIP
-- LOCKED and pushes delivery_next_at forward (a lease), so two replicas never
-- send the same row at once and a replica that dies mid-send leaves the row
-- due again when the lease runs out. A failed attempt backs off; after the
-- last one the row says 'failed' with a sanitized reason, and the invitation
-- itself stays pending.
--   delivery: none (no SMTP: the admin got the token), queued, sent, failed.
--   delivery_token: the invitation token sealed with COUNTERSIGN_SECRET_KEY
--   (bound to the invitation id), kept only until the mail is sent, fails
--   for good, or the invitation is answered, replaced or revoked.
ALTER TABLE invitations
    ADD COLUMN delivery          text NOT NULL DEFAULT 'none'
        CHECK (delivery IN ('none', 'queued', 'sent', 'failed')),
    ADD COLUMN delivery_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN delivery_next_at  timestamptz,
    ADD COLUMN delivery_error    text NOT NULL DEFAULT '',
    ADD COLUMN delivery_token    bytea,
    ADD CONSTRAINT invitations_delivery_token_check
        CHECK (delivery_token IS NULL OR (delivery = 'queued' AND status = 'pending'));
CREATE INDEX invitations_delivery_due_idx ON invitations (delivery_next_at) WHERE delivery = 'queued';
-- The invitee's own list (GET /v1/me/invitations).
CREATE INDEX invitations_email_pending_idx ON invitations (lower(email)) WHERE status = 'pending';

-- +goose StatementBegin
-- A token to mail is dropped the moment its invitation leaves 'pending', so
-- no answered, replaced or revoked invitation keeps a sealed token around.
CREATE FUNCTION invitations_drop_delivery_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'pending' AND NEW.delivery_token IS NOT NULL THEN
        NEW.delivery_token := NULL;
        IF NEW.delivery = 'queued' THEN
            NEW.delivery := 'failed';
            NEW.delivery_error := 'not sent: the invitation was ' || NEW.status || ' first';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER invitations_drop_delivery_token BEFORE UPDATE OF status ON invitations
    FOR EACH ROW EXECUTE FUNCTION invitations_drop_delivery_token();

-- The audit log filtered by actor (GET /v1/orgs/{org}/audit?actor=).
CREATE INDEX org_audit_actor_idx ON org_audit (org_id, actor_member_id, id);

-- +goose Down
DROP INDEX org_audit_actor_idx;
DROP TRIGGER invitations_drop_delivery_token ON invitations;
DROP FUNCTION invitations_drop_delivery_token();
DROP INDEX invitations_email_pending_idx;
DROP INDEX invitations_delivery_due_idx;
ALTER TABLE invitations
    DROP CONSTRAINT invitations_delivery_token_check,
    DROP COLUMN delivery_token,
    DROP COLUMN delivery_error,
    DROP COLUMN delivery_next_at,
    DROP COLUMN delivery_attempts,
    DROP COLUMN delivery;
