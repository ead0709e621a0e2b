package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/converter"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/testenv"
)

// The deployment of the people tests (absences_test.go, abuse_people_test.go).
// It speaks plain JSON, so the abuse cases also run on code without absences.

// peopleEnv is the walk-through's org (setupThreeLevels) plus a second org,
// with a connection to the deployment's database.
type peopleEnv struct {
	*env
	db       *pgx.Conn
	acct     string
	orgB     string
	outsider person // Otto, the owner of org B
}

func newPeopleEnv(t *testing.T) *peopleEnv {
	t.Helper()
	dbURL := testenv.Postgres(t)
	tsrv := testenv.Temporal(t)
	e := startEnv(t, map[string]string{
		"DATABASE_URL": dbURL, "TEMPORAL_ADDRESS": tsrv.Address, "TEMPORAL_NAMESPACE": tsrv.Namespace,
	}, testenv.Logger(t))
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	acct := e.setupThreeLevels()
	b, err := e.app.Store.Bootstrap(context.Background(), "Other Corp", "otto@other.test", "Otto Other")
	if err != nil {
		t.Fatal(err)
	}
	return &peopleEnv{env: e, db: db, acct: acct, orgB: b.Org.ID, outsider: person{token: b.Token, memberID: b.Member.ID}}
}

func (e *peopleEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// submit posts as Ines (limited) and waits for step 1.
func (e *peopleEnv) submit(text string) cs.Post {
	e.t.Helper()
	var p cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": e.acct, "text": text}, &p)
	return e.waitPost(p.ID, "at step 1", atStep(1))
}

// absence is the body of PUT …/absence, from a minute ago until tomorrow.
func absence(delegate string) map[string]any {
	return map[string]any{"from": time.Now().Add(-time.Minute).Format(time.RFC3339),
		"until": time.Now().Add(24 * time.Hour).Format(time.RFC3339), "delegate_member_id": delegate}
}

// awaits waits until the post awaits exactly these members.
func (e *peopleEnv) awaits(postID string, names ...string) cs.Post {
	e.t.Helper()
	want := e.ids(names...)
	if want == nil {
		want = []string{}
	}
	return e.waitPost(postID, "awaiting "+slicesString(names), func(p cs.Post) bool { return slices.Equal(p.Awaited, want) })
}

func slicesString(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return "[" + out + "]"
}

// approvals lists the ids of the posts GET /approvals shows who.
func (e *env) approvals(who string) []string {
	e.t.Helper()
	var page struct{ Items []cs.Post }
	e.must(200, e.members[who].token, "GET", e.org("/approvals"), nil, &page)
	var ids []string
	for _, p := range page.Items {
		ids = append(ids, p.ID)
	}
	return ids
}

// describe reads the post workflow's search attributes and details as an
// operator does (DescribeWorkflowExecution: no visibility lag).
type description struct {
	approvers []string
	details   string
}

func (e *env) describe(postID string) description {
	e.t.Helper()
	ctx := context.Background()
	resp, err := e.app.Temporal.DescribeWorkflowExecution(ctx, cs.WorkflowID(postID), "")
	if err != nil {
		e.t.Fatal(err)
	}
	var d description
	if f := resp.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["PostApprovers"]; f != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(f, &d.approvers); err != nil {
			e.t.Fatal(err)
		}
	}
	v, err := e.app.Temporal.QueryWorkflow(ctx, cs.WorkflowID(postID), "", "__temporal_workflow_metadata")
	if err != nil {
		e.t.Fatal(err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		e.t.Fatal(err)
	}
	d.details = md.GetCurrentDetails()
	return d
}
