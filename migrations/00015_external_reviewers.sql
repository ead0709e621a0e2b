-- +goose Up
-- External reviewers (SPEC §2, the external approver): a chain step may name
-- a reviewer outside the org by e-mail and name instead of a member, a team
-- or a role. Such a step has quorum 1. approval_chain_steps is small (at most
-- three rows per chain): no big table is locked.
ALTER TABLE approval_chain_steps
    DROP CONSTRAINT approval_chain_steps_check,
    ADD COLUMN approver_external_email text,
    ADD COLUMN approver_external_name  text,
    ADD CONSTRAINT approval_chain_steps_one_approver
        CHECK (num_nonnulls(approver_member_id, approver_team_id, approver_role, approver_external_email) = 1),
    ADD CONSTRAINT approval_chain_steps_external
        CHECK (approver_external_email IS NULL OR (quorum = 1 AND approver_external_name IS NOT NULL));

-- +goose Down
DELETE FROM approval_chain_steps WHERE approver_external_email IS NOT NULL;
ALTER TABLE approval_chain_steps
    DROP CONSTRAINT approval_chain_steps_external,
    DROP CONSTRAINT approval_chain_steps_one_approver,
    DROP COLUMN approver_external_name,
    DROP COLUMN approver_external_email,
    ADD CONSTRAINT approval_chain_steps_check
        CHECK (num_nonnulls(approver_member_id, approver_team_id, approver_role) = 1);
