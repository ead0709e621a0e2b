package server_test

import (
	"testing"

	cs "github.com/countersign/countersign"
)

// Every change an admin makes to a member's Slack id or role is one org
// audit row with the changed fields before and after; refused changes and
// no-ops write nothing.
func TestAdminMemberChangesAreAudited(t *testing.T) {
	e := newEnv(t)
	admin := e.join("Ada", "admin")
	mo := e.join("Mo", "member")
	path := e.o("/members/" + mo.id)
	e.must(200, admin.token, "PATCH", path, `{"org_role": "admin", "slack_user_id": "UMO"}`)
	e.must(200, admin.token, "PATCH", path, `{"org_role": "admin", "slack_user_id": "UMO"}`) // no change
	e.problem(409, cs.ESLACKIDTAKEN, e.owner.token, "PATCH", e.o("/members/"+e.owner.id), `{"slack_user_id": "UMO"}`)
	e.problem(422, cs.EINVALID, admin.token, "PATCH", path, `{"slack_user_id": "not an id"}`)
	e.must(200, e.owner.token, "PATCH", path, `{"slack_user_id": ""}`)

	rows := e.count(`SELECT count(*) FROM org_audit WHERE org_id = $1 AND object_type = 'member'`, e.org)
	first := e.count(`SELECT count(*) FROM org_audit WHERE org_id = $1 AND actor_member_id = $2 AND source = 'api'
		AND object_type = 'member' AND object_id = $3 AND action = 'update'
		AND before = '{"org_role": "member", "slack_user_id": null}' AND after = '{"org_role": "admin", "slack_user_id": "UMO"}'`,
		e.org, admin.id, mo.id)
	second := e.count(`SELECT count(*) FROM org_audit WHERE org_id = $1 AND actor_member_id = $2
		AND before = '{"slack_user_id": "UMO"}' AND after = '{"slack_user_id": null}'`, e.org, e.owner.id)
	if rows != 2 || first != 1 || second != 1 {
		t.Fatalf("audit rows: %d (want 2), role+slack row %d, clearing row %d", rows, first, second)
	}
}
