-- +goose Up
-- Sealed credentials are bound to where they were entered (SPEC §8): the
-- AEAD's associated data names the account id, the network and the
-- canonical URL the credentials are sent to. Scheme 1 is the old binding
-- (the account id only). SQL cannot re-seal (the key is not in the
-- database), so existing rows stay scheme 1 here and the application
-- re-seals them at start-up, in a transaction, before it reads any.
ALTER TABLE accounts ADD COLUMN credentials_scheme smallint NOT NULL DEFAULT 1
    CHECK (credentials_scheme IN (1, 2));
ALTER TABLE accounts ALTER COLUMN credentials_scheme SET DEFAULT 2;

-- +goose Down
ALTER TABLE accounts DROP COLUMN credentials_scheme;
