package countersign

import "fmt"

// Level is the level of an account permission (SPEC §2).
type Level string

const (
	LevelNone     Level = "none"
	LevelLimited  Level = "limited"
	LevelEditor   Level = "editor"
	LevelAdvanced Level = "advanced"
	LevelCustom   Level = "custom"
)

// Valid reports whether l is a known level.
func (l Level) Valid() bool {
	switch l {
	case LevelNone, LevelLimited, LevelEditor, LevelAdvanced, LevelCustom:
		return true
	}
	return false
}

// Publish says how a member's posts reach the network.
type Publish string

const (
	PublishNone         Publish = "none"          // cannot submit posts
	PublishWithApproval Publish = "with_approval" // posts go through the account's chain
	PublishDirect       Publish = "direct"        // posts skip approval (unless the chain requires it for all)
)

// Valid reports whether p is a known publish mode.
func (p Publish) Valid() bool {
	return p == PublishNone || p == PublishWithApproval || p == PublishDirect
}

// rank orders publish modes from least to most permissive; unknown is none.
func (p Publish) rank() int {
	switch p {
	case PublishWithApproval:
		return 1
	case PublishDirect:
		return 2
	}
	return 0
}

// CustomRight holds the flags of a custom grant.
type CustomRight struct {
	Publish Publish `json:"publish"`
	Approve bool    `json:"approve"`
	Manage  bool    `json:"manage"`
}

// Grant is one account permission, given to a member or to a team (exactly
// one of MemberID, TeamID). Custom is set exactly when Level is custom.
type Grant struct {
	MemberID string       `json:"member_id,omitempty"`
	TeamID   string       `json:"team_id,omitempty"`
	Level    Level        `json:"level"`
	Custom   *CustomRight `json:"custom,omitempty"`
}

// Validate checks the grant's shape (not whether its member or team exist);
// field names are prefixed with prefix, e.g. "grants[2].".
func (g Grant) Validate(prefix string) []FieldError {
	var fields []FieldError
	add := func(field, msg string) { fields = append(fields, FieldError{Field: prefix + field, Message: msg}) }
	if (g.MemberID == "") == (g.TeamID == "") {
		add("member_id", "exactly one of member_id or team_id must be set")
	}
	switch {
	case !g.Level.Valid():
		add("level", "level must be none, limited, editor, advanced or custom")
	case g.Level == LevelCustom && g.Custom == nil:
		add("custom", "a custom grant needs its flags: {\"publish\", \"approve\", \"manage\"}")
	case g.Level != LevelCustom && g.Custom != nil:
		add("custom", fmt.Sprintf("flags are only for the custom level, not %s", g.Level))
	case g.Custom != nil && !g.Custom.Publish.Valid():
		add("custom.publish", "publish must be direct, with_approval or none")
	}
	return fields
}

// Codes of a manager's refused grant change (SPEC §8 "A manager"): only
// admins and owners grant above their own right or touch their own grant.
const (
	EGRANTABOVEOWNRIGHT = "grant_above_own_right"
	EOWNGRANT           = "own_grant"
)

// Right is what a member may do on one account.
type Right struct {
	Compose bool    `json:"compose"`
	Publish Publish `json:"publish"`
	Approve bool    `json:"approve"`
	Manage  bool    `json:"manage"`
}

// LevelRight is the right a single grant of level l (with its custom flags)
// gives. Composing is what any publish mode but none allows.
func LevelRight(l Level, custom *CustomRight) Right {
	switch l {
	case LevelLimited:
		return Right{Compose: true, Publish: PublishWithApproval}
	case LevelEditor:
		return Right{Compose: true, Publish: PublishDirect, Approve: true}
	case LevelAdvanced:
		return Right{Compose: true, Publish: PublishDirect, Approve: true, Manage: true}
	case LevelCustom:
		if custom == nil || !custom.Publish.Valid() {
			return Right{Publish: PublishNone}
		}
		return Right{
			Compose: custom.Publish != PublishNone,
			Publish: custom.Publish,
			Approve: custom.Approve,
			Manage:  custom.Manage,
		}
	}
	return Right{Publish: PublishNone}
}

// Exceeds reports whether r gives anything o lacks, flag by flag: compose,
// a more permissive publish mode, approve or manage.
func (r Right) Exceeds(o Right) bool {
	return r.Compose && !o.Compose || r.Publish.rank() > o.Publish.rank() ||
		r.Approve && !o.Approve || r.Manage && !o.Manage
}

// Union is the most permissive of r and o, flag by flag.
func (r Right) Union(o Right) Right {
	if o.Publish.rank() > r.Publish.rank() {
		r.Publish = o.Publish
	}
	if r.Publish == "" {
		r.Publish = PublishNone
	}
	r.Compose = r.Compose || o.Compose
	r.Approve = r.Approve || o.Approve
	r.Manage = r.Manage || o.Manage
	return r
}

// EffectiveRight is a member's right on an account (SPEC §2): owners and
// admins hold advanced on every account; anyone else gets the most permissive
// of the grants that apply to them, flag by flag: their own grant (nil when
// there is none) and the grants of the teams they currently belong to. A
// grant of level none adds nothing: it never takes away what another grant
// gives. With no grant at all the right is none.
func EffectiveRight(role OrgRole, memberGrant *Grant, teamGrants []Grant) Right {
	if role == RoleOwner || role == RoleAdmin {
		return LevelRight(LevelAdvanced, nil)
	}
	r := Right{Publish: PublishNone}
	if memberGrant != nil {
		r = r.Union(LevelRight(memberGrant.Level, memberGrant.Custom))
	}
	for _, g := range teamGrants {
		r = r.Union(LevelRight(g.Level, g.Custom))
	}
	return r
}
