package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Demo is the org the first start seeds, shaped for the README's
// walk-through: Ines (an intern with limited rights) writes; Maya, the PR
// team (Pat, Paul) and an editor (Eddie) approve in three steps; the post
// goes to a `log` account. It is kept in the data directory (demo.json and
// demo.env, mode 0600) so later starts print it again.
type Demo struct {
	APIURL    string            `json:"api_url"`
	OrgID     string            `json:"org_id"`
	AccountID string            `json:"account_id"`
	ChainID   string            `json:"chain_id"`
	TeamID    string            `json:"team_id"`
	Tokens    map[string]string `json:"tokens"`  // OWNER, INES, MAYA, PAT, PAUL, EDDIE
	Members   map[string]string `json:"members"` // the same names to member ids
}

// demoPeople are the seeded members besides the owner, in order.
var demoPeople = []struct{ Key, Name string }{
	{"INES", "Ines Intern"}, {"MAYA", "Maya Marketing"}, {"PAT", "Pat PR"}, {"PAUL", "Paul PR"}, {"EDDIE", "Eddie Editor"},
}

// Env is the walk-through's shell variables (`source .countersign/demo.env`).
func (d *Demo) Env() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export CS=%s ORG=%s ACCOUNT=%s\n", d.APIURL, d.OrgID, d.AccountID)
	b.WriteString("export OWNER=" + d.Tokens["OWNER"])
	for _, p := range demoPeople {
		b.WriteString(" " + p.Key + "=" + d.Tokens[p.Key])
	}
	b.WriteString("\nexport")
	for _, p := range demoPeople { // member ids, e.g. for an absence's delegate
		b.WriteString(" " + p.Key + "_ID=" + d.Members[p.Key])
	}
	b.WriteString("\n")
	return b.String()
}

// loadOrSeed returns the saved demo org, or seeds it on first start.
func loadOrSeed(ctx context.Context, st *store.Store, dir, apiURL string) (*Demo, bool, error) {
	path := filepath.Join(dir, "demo.json")
	if b, err := os.ReadFile(path); err == nil {
		var d Demo
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, false, fmt.Errorf("read %s: %w", path, err)
		}
		d.APIURL = apiURL
		return &d, false, os.WriteFile(filepath.Join(dir, "demo.env"), []byte(d.Env()), 0o600)
	}
	d, err := Seed(ctx, st, apiURL)
	if err != nil {
		return nil, false, fmt.Errorf("seed the demo org: %w", err)
	}
	out, _ := json.MarshalIndent(d, "", "  ")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return nil, false, err
	}
	return d, true, os.WriteFile(filepath.Join(dir, "demo.env"), []byte(d.Env()), 0o600)
}

// Seed creates the demo org in st (the bench seeds a production topology's
// database with it too).
func Seed(ctx context.Context, st *store.Store, apiURL string) (*Demo, error) {
	b, err := st.Bootstrap(ctx, "Demo", "owner@demo.countersign.test", "Olivia Owner")
	if err != nil {
		return nil, err
	}
	d := &Demo{APIURL: apiURL, OrgID: b.Org.ID, Tokens: map[string]string{"OWNER": b.Token}, Members: map[string]string{"OWNER": b.Member.ID}}
	for _, p := range demoPeople {
		inv, err := st.InviteWithToken(ctx, d.OrgID, b.Member.ID, cs.InvitationRequest{
			Email: strings.ToLower(p.Key) + "@demo.countersign.test", Name: p.Name, OrgRole: cs.RoleMember})
		if err != nil {
			return nil, err
		}
		acc, err := st.AcceptInvitation(ctx, inv.Token, p.Name)
		if err != nil {
			return nil, err
		}
		d.Tokens[p.Key], d.Members[p.Key] = acc.APIToken, acc.Member.ID
	}
	name := "PR"
	team, err := st.CreateTeam(ctx, d.OrgID, store.TeamInput{Name: &name})
	if err != nil {
		return nil, err
	}
	d.TeamID = team.ID
	for _, k := range []string{"PAT", "PAUL"} {
		if _, err := st.PutTeamMember(ctx, d.OrgID, team.ID, d.Members[k], cs.TeamMember); err != nil {
			return nil, err
		}
	}
	acct, err := st.CreateAccount(ctx, d.OrgID, store.NewAccount{Network: cs.NetworkLog, Handle: "demo", DisplayName: "Demo (log)", Timezone: "UTC"})
	if err != nil {
		return nil, err
	}
	d.AccountID = acct.ID
	if _, err := st.ReplaceGrants(ctx, d.OrgID, acct.ID, "", []cs.Grant{
		{MemberID: d.Members["INES"], Level: cs.LevelLimited},
		{MemberID: d.Members["EDDIE"], Level: cs.LevelEditor},
	}); err != nil {
		return nil, err
	}
	chain, err := st.CreateChain(ctx, d.OrgID, cs.Chain{
		Name: "Brand", LatePolicy: cs.LateExpire, DistinctApprovers: true,
		Steps: []cs.ChainStep{
			{Approver: cs.Approver{Member: d.Members["MAYA"]}, Timeout: cs.Duration(4 * time.Hour), FallbackTeam: team.ID, FallbackTimeout: cs.Duration(2 * time.Hour)},
			{Approver: cs.Approver{Team: team.ID}},
			{Approver: cs.Approver{Role: cs.ApproverRoleApprovers}},
		},
	})
	if err != nil {
		return nil, err
	}
	d.ChainID = chain.ID
	if _, err := st.UpdateAccount(ctx, d.OrgID, acct.ID, store.AccountUpdate{SetChain: true, ChainID: chain.ID}); err != nil {
		return nil, err
	}
	return d, nil
}
