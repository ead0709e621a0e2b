-- +goose Up
-- Absences with delegates (SPEC §2 Member): while a member is away (from
-- starts_at until ends_at), every open or opening approval step that awaits
-- them also accepts their delegate, an active member of the same org. One
-- absence per member: setting another replaces it.
CREATE TABLE member_absences (
    org_id             uuid NOT NULL,
    member_id          uuid NOT NULL,
    delegate_member_id uuid NOT NULL,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, member_id),
    FOREIGN KEY (org_id, member_id) REFERENCES members (org_id, id),
    FOREIGN KEY (org_id, delegate_member_id) REFERENCES members (org_id, id),
    CHECK (ends_at > starts_at),
    CHECK (delegate_member_id <> member_id)
);
CREATE INDEX member_absences_delegate_idx ON member_absences (org_id, delegate_member_id);

-- A decision a delegate made on behalf of an absent member. A nullable
-- column without a default: a catalog change only, no rewrite of
-- post_events (a brief ACCESS EXCLUSIVE lock, milliseconds at any size).
ALTER TABLE post_events ADD COLUMN on_behalf_of uuid;

-- +goose Down
ALTER TABLE post_events DROP COLUMN on_behalf_of;
DROP TABLE member_absences;
