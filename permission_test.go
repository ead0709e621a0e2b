package countersign

import (
	"testing"
)

func custom(p Publish, approve, manage bool) *Grant {
	return &Grant{Level: LevelCustom, Custom: &CustomRight{Publish: p, Approve: approve, Manage: manage}}
}

func level(l Level) *Grant { return &Grant{Level: l} }

func TestEffectiveRight(t *testing.T) {
	var (
		none     = Right{Publish: PublishNone}
		limited  = Right{Compose: true, Publish: PublishWithApproval}
		editor   = Right{Compose: true, Publish: PublishDirect, Approve: true}
		advanced = Right{Compose: true, Publish: PublishDirect, Approve: true, Manage: true}
	)
	teams := func(gs ...*Grant) []Grant {
		var out []Grant
		for _, g := range gs {
			out = append(out, *g)
		}
		return out
	}
	tests := []struct {
		name  string
		role  OrgRole
		own   *Grant
		teams []Grant
		want  Right
	}{
		// Owners and admins hold advanced on every account, whatever the grants say.
		{"owner without grants", RoleOwner, nil, nil, advanced},
		{"admin without grants", RoleAdmin, nil, nil, advanced},
		{"admin with a none grant", RoleAdmin, level(LevelNone), teams(level(LevelNone)), advanced},

		// A member with no grant can do nothing.
		{"member without grants", RoleMember, nil, nil, none},
		{"unknown role is a member", OrgRole("guest"), nil, nil, none},

		// Each level on its own, given to the member.
		{"own none", RoleMember, level(LevelNone), nil, none},
		{"own limited", RoleMember, level(LevelLimited), nil, limited},
		{"own editor", RoleMember, level(LevelEditor), nil, editor},
		{"own advanced", RoleMember, level(LevelAdvanced), nil, advanced},

		// The same levels given through a team.
		{"team limited", RoleMember, nil, teams(level(LevelLimited)), limited},
		{"team editor", RoleMember, nil, teams(level(LevelEditor)), editor},
		{"team advanced", RoleMember, nil, teams(level(LevelAdvanced)), advanced},

		// The highest grant applies, whichever way it comes.
		{"own limited, team editor", RoleMember, level(LevelLimited), teams(level(LevelEditor)), editor},
		{"own editor, team limited", RoleMember, level(LevelEditor), teams(level(LevelLimited)), editor},
		{"two teams", RoleMember, nil, teams(level(LevelLimited), level(LevelAdvanced)), advanced},
		{"none never takes away", RoleMember, level(LevelNone), teams(level(LevelEditor)), editor},
		{"team none never takes away", RoleMember, level(LevelLimited), teams(level(LevelNone)), limited},

		// Custom flags.
		{"custom approver only", RoleMember, custom(PublishNone, true, false), nil,
			Right{Publish: PublishNone, Approve: true}},
		{"custom with approval", RoleMember, custom(PublishWithApproval, false, false), nil, limited},
		{"custom direct", RoleMember, custom(PublishDirect, false, false), nil,
			Right{Compose: true, Publish: PublishDirect}},
		{"custom manager", RoleMember, custom(PublishNone, false, true), nil,
			Right{Publish: PublishNone, Manage: true}},
		{"custom all flags is advanced", RoleMember, custom(PublishDirect, true, true), nil, advanced},
		{"custom without flags gives nothing", RoleMember, &Grant{Level: LevelCustom}, nil, none},
		{"custom with a bad publish gives nothing", RoleMember, custom("sometimes", true, true), nil, none},

		// Custom flags merge flag by flag, most permissive wins.
		{"limited + custom approve", RoleMember, level(LevelLimited), teams(custom(PublishNone, true, false)),
			Right{Compose: true, Publish: PublishWithApproval, Approve: true}},
		{"custom manage + team limited", RoleMember, custom(PublishNone, false, true), teams(level(LevelLimited)),
			Right{Compose: true, Publish: PublishWithApproval, Manage: true}},
		{"custom direct + custom approve", RoleMember, custom(PublishDirect, false, false), teams(custom(PublishWithApproval, true, false)),
			Right{Compose: true, Publish: PublishDirect, Approve: true}},
		{"editor + custom manage is advanced", RoleMember, level(LevelEditor), teams(custom(PublishNone, false, true)), advanced},
		{"custom with_approval does not lower editor", RoleMember, level(LevelEditor), teams(custom(PublishWithApproval, false, false)), editor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EffectiveRight(tt.role, tt.own, tt.teams); got != tt.want {
				t.Errorf("EffectiveRight(%s, %+v, %+v) = %+v, want %+v", tt.role, tt.own, tt.teams, got, tt.want)
			}
		})
	}
}

// The result does not depend on the order of the team grants.
func TestEffectiveRightIsOrderFree(t *testing.T) {
	gs := []Grant{*custom(PublishNone, true, false), *level(LevelLimited), *custom(PublishNone, false, true), *level(LevelNone)}
	want := EffectiveRight(RoleMember, nil, gs)
	for i := range gs {
		rot := append(append([]Grant{}, gs[i:]...), gs[:i]...)
		if got := EffectiveRight(RoleMember, nil, rot); got != want {
			t.Fatalf("rotation %d: %+v, want %+v", i, got, want)
		}
		if got := EffectiveRight(RoleMember, &rot[0], rot[1:]); got != want {
			t.Fatalf("rotation %d with own grant: %+v, want %+v", i, got, want)
		}
	}
}

func TestGrantValidate(t *testing.T) {
	tests := []struct {
		name  string
		g     Grant
		field string // "" = valid
	}{
		{"member limited", Grant{MemberID: "m", Level: LevelLimited}, ""},
		{"team custom", Grant{TeamID: "t", Level: LevelCustom, Custom: &CustomRight{Publish: PublishDirect}}, ""},
		{"neither member nor team", Grant{Level: LevelLimited}, "g.member_id"},
		{"both member and team", Grant{MemberID: "m", TeamID: "t", Level: LevelLimited}, "g.member_id"},
		{"unknown level", Grant{MemberID: "m", Level: "root"}, "g.level"},
		{"empty level", Grant{MemberID: "m"}, "g.level"},
		{"custom without flags", Grant{MemberID: "m", Level: LevelCustom}, "g.custom"},
		{"flags without custom", Grant{MemberID: "m", Level: LevelEditor, Custom: &CustomRight{Publish: PublishDirect}}, "g.custom"},
		{"custom bad publish", Grant{MemberID: "m", Level: LevelCustom, Custom: &CustomRight{Publish: "yes"}}, "g.custom.publish"},
		{"custom empty publish", Grant{MemberID: "m", Level: LevelCustom, Custom: &CustomRight{}}, "g.custom.publish"},
	}
	for _, tt := range tests {
		fields := tt.g.Validate("g.")
		switch {
		case tt.field == "" && len(fields) > 0:
			t.Errorf("%s: unexpected %v", tt.name, fields)
		case tt.field != "" && (len(fields) != 1 || fields[0].Field != tt.field):
			t.Errorf("%s: fields %v, want one on %s", tt.name, fields, tt.field)
		}
	}
}

// A grant is above a manager's right when it gives any flag the manager
// lacks (SPEC §8 "A manager").
func TestRightExceeds(t *testing.T) {
	r := func(g *Grant) Right { return LevelRight(g.Level, g.Custom) }
	manageWithApproval := r(custom(PublishWithApproval, false, true))
	cases := []struct {
		grant *Grant
		over  Right
		want  bool
	}{
		{level(LevelAdvanced), manageWithApproval, true},
		{level(LevelEditor), manageWithApproval, true},                        // publish direct, approve
		{level(LevelLimited), manageWithApproval, false},                      // compose, with approval
		{custom(PublishWithApproval, false, true), manageWithApproval, false}, // the same
		{custom(PublishNone, true, false), manageWithApproval, true},          // approve only
		{custom(PublishNone, false, true), r(custom(PublishNone, true, false)), true},
		{level(LevelLimited), r(custom(PublishNone, false, true)), true}, // compose
		{level(LevelNone), r(level(LevelNone)), false},
		{level(LevelEditor), r(level(LevelAdvanced)), false},
		{level(LevelAdvanced), r(level(LevelAdvanced)), false},
		{level(LevelAdvanced), r(level(LevelEditor)), true}, // manage
	}
	for _, c := range cases {
		if got := r(c.grant).Exceeds(c.over); got != c.want {
			t.Errorf("%+v exceeds %+v = %v, want %v", r(c.grant), c.over, got, c.want)
		}
	}
}
