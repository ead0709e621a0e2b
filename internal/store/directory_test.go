package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type dir struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	org   string
	owner cs.Member
}

func newDir(t *testing.T) *dir {
	t.Helper()
	st := testenv.Store(t)
	b, err := st.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olga")
	if err != nil {
		t.Fatal(err)
	}
	return &dir{t: t, ctx: context.Background(), st: st, org: b.Org.ID, owner: b.Member}
}

func (d *dir) member(name string, role cs.OrgRole) cs.Member {
	d.t.Helper()
	inv, err := d.st.Invite(d.ctx, d.org, d.owner.ID, cs.InvitationRequest{Email: name + "@acme.test", Name: name, OrgRole: role})
	if err != nil {
		d.t.Fatal(err)
	}
	a, err := d.st.AcceptInvitation(d.ctx, inv.Token, "")
	if err != nil {
		d.t.Fatal(err)
	}
	return a.Member
}

func (d *dir) team(name string, members ...cs.Member) string {
	d.t.Helper()
	t, err := d.st.CreateTeam(d.ctx, d.org, store.TeamInput{Name: &name})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, m := range members {
		if _, err := d.st.PutTeamMember(d.ctx, d.org, t.ID, m.ID, cs.TeamMember); err != nil {
			d.t.Fatal(err)
		}
	}
	return t.ID
}

func (d *dir) account(handle string) string {
	d.t.Helper()
	a, err := d.st.CreateAccount(d.ctx, d.org, store.NewAccount{Network: cs.NetworkLog, Handle: handle, Timezone: "UTC"})
	if err != nil {
		d.t.Fatal(err)
	}
	return a.ID
}

// post submits a post by the owner on account and returns its id.
func (d *dir) post(account string, needsApproval bool) string {
	d.t.Helper()
	p, _, err := d.st.CreatePost(d.ctx, store.NewPost{OrgID: d.org, AccountID: account, AuthorID: d.owner.ID, Text: "hello",
		Chain: cs.DefaultChain(), NeedsApproval: needsApproval})
	if err != nil {
		d.t.Fatal(err)
	}
	return p.ID
}

func (d *dir) grants(account string, gs ...cs.Grant) {
	d.t.Helper()
	if _, err := d.st.ReplaceGrants(d.ctx, d.org, account, "", gs); err != nil {
		d.t.Fatal(err)
	}
}

// The store's EffectiveRight loads the member's role, own grant and current
// teams' grants, and applies cs.EffectiveRight.
func TestEffectiveRightFromTheDatabase(t *testing.T) {
	d := newDir(t)
	admin := d.member("ada", cs.RoleAdmin)
	ann := d.member("ann", cs.RoleMember)
	ben := d.member("ben", cs.RoleMember)
	cat := d.member("cat", cs.RoleMember)
	pr := d.team("PR", ann, ben)
	acct := d.account("acme")
	other := d.account("other")
	d.grants(acct,
		cs.Grant{MemberID: ann.ID, Level: cs.LevelLimited},
		cs.Grant{TeamID: pr, Level: cs.LevelCustom, Custom: &cs.CustomRight{Publish: cs.PublishNone, Approve: true}},
		cs.Grant{MemberID: cat.ID, Level: cs.LevelNone},
	)
	d.grants(other, cs.Grant{MemberID: cat.ID, Level: cs.LevelAdvanced})
	for _, tc := range []struct {
		who  cs.Member
		want cs.Right
	}{
		{d.owner, cs.LevelRight(cs.LevelAdvanced, nil)},
		{admin, cs.LevelRight(cs.LevelAdvanced, nil)},
		{ann, cs.Right{Compose: true, Publish: cs.PublishWithApproval, Approve: true}}, // own limited + team approve
		{ben, cs.Right{Publish: cs.PublishNone, Approve: true}},                        // team only
		{cat, cs.Right{Publish: cs.PublishNone}},                                       // none here; advanced elsewhere does not leak
	} {
		got, err := d.st.EffectiveRight(d.ctx, d.org, acct, tc.who.ID)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.who.Name, got, err, tc.want)
		}
	}
	// Unknown or foreign ids are not found, never a database error.
	for _, ids := range [][3]string{
		{d.org, acct, "nope"}, {d.org, "nope", ann.ID}, {"nope", acct, ann.ID},
		{d.org, "0190d4a2-0000-7000-8000-000000000000", ann.ID},
	} {
		if _, err := d.st.EffectiveRight(d.ctx, ids[0], ids[1], ids[2]); cs.ErrorCode(err) != cs.ENOTFOUND {
			t.Errorf("EffectiveRight%v: %v", ids, err)
		}
	}
	b, _ := d.st.Bootstrap(d.ctx, "Globex", "hank@globex.test", "Hank")
	if _, err := d.st.EffectiveRight(d.ctx, b.Org.ID, acct, b.Member.ID); cs.ErrorCode(err) != cs.ENOTFOUND {
		t.Errorf("foreign account: %v", err)
	}
}

func TestEligibleApproversAndCheckApprover(t *testing.T) {
	d := newDir(t)
	admin := d.member("ada", cs.RoleAdmin)
	ann := d.member("ann", cs.RoleMember)
	ben := d.member("ben", cs.RoleMember)
	cat := d.member("cat", cs.RoleMember)
	dan := d.member("dan", cs.RoleMember)
	pr := d.team("PR", ann, ben)
	ops := d.team("Ops", dan)
	acct := d.account("acme")
	d.grants(acct,
		cs.Grant{MemberID: cat.ID, Level: cs.LevelEditor},  // approves
		cs.Grant{MemberID: dan.ID, Level: cs.LevelLimited}, // does not
		cs.Grant{TeamID: pr, Level: cs.LevelCustom, Custom: &cs.CustomRight{Publish: cs.PublishNone, Approve: true}},
	)
	sorted := func(ms ...cs.Member) []string {
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		return ids
	}
	eligible := func(a cs.Approver) []string {
		t.Helper()
		ids, err := d.st.EligibleApprovers(d.ctx, d.org, acct, a)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if got, want := eligible(cs.Approver{Role: cs.ApproverRoleApprovers}), sorted(d.owner, admin, ann, ben, cat); !slices.Equal(got, want) {
		t.Errorf("approvers: %v, want %v", got, want)
	}
	if got, want := eligible(cs.Approver{Team: pr}), sorted(ann, ben); !slices.Equal(got, want) {
		t.Errorf("team: %v, want %v", got, want)
	}
	if got := eligible(cs.Approver{Member: cat.ID}); !slices.Equal(got, []string{cat.ID}) {
		t.Errorf("member: %v", got)
	}

	check := func(m cs.Member, a cs.Approver, fallback string) string {
		t.Helper()
		reason, err := d.st.CheckApprover(d.ctx, d.org, acct, m.ID, a, fallback)
		if err != nil {
			t.Fatal(err)
		}
		return reason
	}
	for _, tc := range []struct {
		name     string
		who      cs.Member
		a        cs.Approver
		fallback string
		allowed  bool
	}{
		{"named member", cat, cs.Approver{Member: cat.ID}, "", true},
		{"another member", ann, cs.Approver{Member: cat.ID}, "", false},
		{"team member", ann, cs.Approver{Team: pr}, "", true},
		{"not in team", cat, cs.Approver{Team: pr}, "", false},
		{"fallback team", dan, cs.Approver{Team: pr}, ops, true},
		{"not in fallback team", cat, cs.Approver{Team: pr}, ops, false},
		{"approver by grant", cat, cs.Approver{Role: "approvers"}, "", true},
		{"approver by team grant", ben, cs.Approver{Role: "approvers"}, "", true},
		{"approver by role", admin, cs.Approver{Role: "approvers"}, "", true},
		{"no approve right", dan, cs.Approver{Role: "approvers"}, "", false},
	} {
		if reason := check(tc.who, tc.a, tc.fallback); (reason == "") != tc.allowed {
			t.Errorf("%s: reason %q, want allowed=%v", tc.name, reason, tc.allowed)
		}
	}

	// Leaving a team or the org counts at once, for both calls.
	if err := d.st.RemoveTeamMember(d.ctx, d.org, pr, ben.ID); err != nil {
		t.Fatal(err)
	}
	if r := check(ben, cs.Approver{Team: pr}, ""); r == "" {
		t.Error("ben approves for PR after leaving it")
	}
	if r := check(ben, cs.Approver{Role: "approvers"}, ""); r == "" {
		t.Error("ben keeps PR's approve right after leaving it")
	}
	if err := d.st.RemoveMember(d.ctx, d.org, cat.ID); err != nil {
		t.Fatal(err)
	}
	if r := check(cat, cs.Approver{Member: cat.ID}, ""); r != "the member was removed from the organization" {
		t.Errorf("removed member: %q", r)
	}
	if got := eligible(cs.Approver{Member: cat.ID}); len(got) != 0 {
		t.Errorf("removed member still eligible: %v", got)
	}
	if got, want := eligible(cs.Approver{Role: cs.ApproverRoleApprovers}), sorted(d.owner, admin, ann); !slices.Equal(got, want) {
		t.Errorf("approvers after removals: %v, want %v", got, want)
	}
	if r := check(cs.Member{ID: "0190d4a2-0000-7000-8000-000000000000"}, cs.Approver{Role: "approvers"}, ""); r == "" {
		t.Error("a stranger may approve")
	}
}

func TestCredentialsNeedTheKey(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	b, err := st.Bootstrap(ctx, "Acme", "o@acme.test", "O")
	if err != nil {
		t.Fatal(err)
	}
	hook := store.NewAccount{Network: cs.NetworkWebhook, Handle: "hook", Timezone: "UTC",
		Settings: map[string]string{"url": "https://h.test"}, Credentials: map[string]string{"secret": "whsec_x"}}
	// Without COUNTERSIGN_SECRET_KEY, credentials cannot be saved (and the
	// error does not show them); accounts without credentials still work.
	if _, err := st.CreateAccount(ctx, b.Org.ID, hook); err == nil || strings.Contains(err.Error(), "whsec_x") {
		t.Fatalf("saved credentials without a key: %v", err)
	}
	logAcct, err := st.CreateAccount(ctx, b.Org.ID, store.NewAccount{Network: cs.NetworkLog, Handle: "dev", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	if creds, err := st.AccountCredentials(ctx, b.Org.ID, logAcct.ID); err != nil || len(creds) != 0 {
		t.Fatalf("log account credentials: %v %v", creds, err)
	}
	if err := st.SetSecretKey([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
	if err := st.SetSecretKey(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	a, err := st.CreateAccount(ctx, b.Org.ID, hook)
	if err != nil || !a.HasCredentials {
		t.Fatalf("with a key: %+v %v", a, err)
	}
	// Another key cannot open them, and says so without showing them.
	if err := st.SetSecretKey(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if c, err := st.AccountCredentials(ctx, b.Org.ID, a.ID); err != nil || c["secret"] != "whsec_x" {
		t.Fatalf("same key: %v %v", c, err)
	}
	other := make([]byte, 32)
	other[0] = 1
	if err := st.SetSecretKey(other); err != nil {
		t.Fatal(err)
	}
	if c, err := st.AccountCredentials(ctx, b.Org.ID, a.ID); err == nil || c != nil || strings.Contains(err.Error(), "whsec_x") {
		t.Fatalf("other key: %v %v", c, err)
	}
}

// Two owners stepping down at the same moment: one succeeds, the other is
// told it is the last owner (no deadlock, no 500).
func TestLastOwnerUnderConcurrency(t *testing.T) {
	d := newDir(t)
	for round := range 5 {
		second := d.member(fmt.Sprintf("co%d", round), cs.RoleOwner)
		first := d.owner
		member := cs.RoleMember
		errs := make(chan error, 2)
		for _, m := range []cs.Member{first, second} {
			go func() {
				if round%2 == 0 {
					_, err := d.st.UpdateMember(d.ctx, d.org, m.ID, store.MemberUpdate{OrgRole: &member})
					errs <- err
				} else {
					errs <- d.st.RemoveMember(d.ctx, d.org, m.ID)
				}
			}()
		}
		var codes []string
		for range 2 {
			err := <-errs
			if err != nil {
				codes = append(codes, cs.ErrorCode(err))
			}
		}
		if len(codes) != 1 || codes[0] != cs.ELASTOWNER {
			t.Fatalf("round %d: errors %v, want exactly one last_owner", round, codes)
		}
		// Whoever is still owner carries on into the next round.
		ms, err := d.st.ListMembers(d.ctx, d.org, cs.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		owners := 0
		for _, m := range ms {
			if m.OrgRole == cs.RoleOwner {
				owners++
				d.owner = m
			}
		}
		if owners != 1 {
			t.Fatalf("round %d: %d owners", round, owners)
		}
	}
}
