-- Runs once, when the PostgreSQL volume is created: a role for Temporal,
-- which creates its own databases (temporal, temporal_visibility).
CREATE ROLE temporal WITH LOGIN CREATEDB PASSWORD 'temporal';
