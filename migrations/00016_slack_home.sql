-- +goose Up
-- When a member last opened Countersign's App Home tab in Slack. Only those
-- members get their tab republished when what waits for them changes: the
-- others have never looked, and views.publish costs a Slack call each.
-- Adding a nullable column with no default only touches the catalog: no
-- rewrite, no long lock on members.
ALTER TABLE members ADD COLUMN slack_home_at timestamptz;

-- +goose Down
ALTER TABLE members DROP COLUMN slack_home_at;
