package store_test

import (
	"testing"

	cs "github.com/countersign/countersign"
)

// ReplaceGrants as a manager (SPEC §8 "A manager"): what a PUT leaves as it
// is passes whatever its level; what it adds, changes or removes must be
// within the manager's right and not the manager's own (or their team's).
func TestReplaceGrantsAsManager(t *testing.T) {
	d := newDir(t)
	acct := d.account("acme")
	mgr, boss, col := d.member("mgr", cs.RoleMember), d.member("boss", cs.RoleMember), d.member("col", cs.RoleMember)
	admin := d.member("adm", cs.RoleAdmin)
	team := d.team("Social", mgr)
	own := cs.Grant{MemberID: mgr.ID, Level: cs.LevelCustom, Custom: &cs.CustomRight{Publish: cs.PublishWithApproval, Manage: true}}
	bossAdvanced := cs.Grant{MemberID: boss.ID, Level: cs.LevelAdvanced}
	teamLimited := cs.Grant{TeamID: team, Level: cs.LevelLimited}
	start := []cs.Grant{own, bossAdvanced, teamLimited}
	d.grants(acct, start...)

	cases := []struct {
		name   string
		grants []cs.Grant
		code   string // "" allowed
	}{
		{"unchanged, in another order", []cs.Grant{teamLimited, bossAdvanced, own}, ""},
		{"add a colleague within their right", []cs.Grant{own, bossAdvanced, teamLimited, {MemberID: col.ID, Level: cs.LevelLimited}}, ""},
		{"add a colleague at none", []cs.Grant{own, bossAdvanced, teamLimited, {MemberID: col.ID, Level: cs.LevelNone}}, ""},
		{"remove a colleague's higher grant", []cs.Grant{own, teamLimited}, ""},
		{"lower a colleague's higher grant", []cs.Grant{own, {MemberID: boss.ID, Level: cs.LevelLimited}, teamLimited}, ""},
		{"add a colleague above their right", []cs.Grant{own, bossAdvanced, teamLimited, {MemberID: col.ID, Level: cs.LevelEditor}}, cs.EGRANTABOVEOWNRIGHT},
		{"add approve only", []cs.Grant{own, bossAdvanced, teamLimited,
			{MemberID: col.ID, Level: cs.LevelCustom, Custom: &cs.CustomRight{Publish: cs.PublishNone, Approve: true}}}, cs.EGRANTABOVEOWNRIGHT},
		{"raise own grant", []cs.Grant{{MemberID: mgr.ID, Level: cs.LevelAdvanced}, bossAdvanced, teamLimited}, cs.EOWNGRANT},
		{"lower own grant", []cs.Grant{{MemberID: mgr.ID, Level: cs.LevelLimited}, bossAdvanced, teamLimited}, cs.EOWNGRANT},
		{"drop own grant", []cs.Grant{bossAdvanced, teamLimited}, cs.EOWNGRANT},
		{"drop own team's grant", []cs.Grant{own, bossAdvanced}, cs.EOWNGRANT},
		{"change own team's grant within their right", []cs.Grant{own, bossAdvanced, {TeamID: team, Level: cs.LevelNone}}, cs.EOWNGRANT},
	}
	for _, c := range cases {
		_, err := d.st.ReplaceGrants(d.ctx, d.org, acct, mgr.ID, c.grants)
		if got := cs.ErrorCode(err); c.code == "" && err != nil || c.code != "" && got != c.code {
			t.Errorf("%s: %v, want %q", c.name, err, c.code)
		}
		if err != nil {
			if now, _ := d.st.Grants(d.ctx, d.org, acct); len(now) != len(start) {
				t.Errorf("%s: refused, yet the grants changed: %+v", c.name, now)
			}
		}
		d.grants(acct, start...)
	}

	// Without manage, nothing; admins may do anything, their own grant too.
	if _, err := d.st.ReplaceGrants(d.ctx, d.org, acct, col.ID, start); cs.ErrorCode(err) != cs.EFORBIDDEN {
		t.Errorf("a member without manage: %v", err)
	}
	if _, err := d.st.ReplaceGrants(d.ctx, d.org, acct, admin.ID, []cs.Grant{{MemberID: admin.ID, Level: cs.LevelLimited}}); err != nil {
		t.Errorf("an admin: %v", err)
	}
}
