package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/cli"
	"github.com/countersign/countersign/internal/devstack"
	"github.com/countersign/countersign/internal/media/mediatest"
	"github.com/countersign/countersign/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestDevStack is the walking skeleton end to end: `dev` starts everything
// in-process, /readyz turns ready once the worker polls, `bootstrap` creates
// an org whose token authenticates GET /v1/me, and after a stop and a second
// start on the same data directory the org and its token are still there.
func TestDevStack(t *testing.T) {
	testenv.RequirePostgresBinaries(t)
	dir := testenv.DataDir(t)
	notices := &noticeBuffer{}
	opts := devstack.Options{
		DataDir:      dir,
		HTTPAddr:     fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		TemporalPort: testenv.FreePort(t),
		UIPort:       testenv.FreePort(t),
		PGPort:       testenv.FreePort(t),
		MetricsAddr:  "127.0.0.1:0",
		Logger:       testenv.Logger(t),
		MailNotices:  notices,
	}
	ctx := context.Background()

	s := startStack(t, ctx, &opts)
	if !s.Seeded || s.Demo == nil || s.Demo.Tokens["OWNER"] == "" || s.Demo.Tokens["INES"] == "" {
		t.Fatalf("first start should seed the demo org, got seeded=%v demo=%+v", s.Seeded, s.Demo)
	}
	waitReady(t, s.APIURL)
	// Temporal's SQLite store runs in WAL mode (bytes 18 and 19 of the file
	// header are 2): one sync per commit, readers beside the writer.
	if hdr, err := os.ReadFile(filepath.Join(dir, "temporal.db")); err != nil || len(hdr) < 20 || hdr[18] != 2 || hdr[19] != 2 {
		t.Fatalf("temporal.db is not in WAL mode (header %v, %v)", hdr[min(18, len(hdr)):min(20, len(hdr))], err)
	}
	if got := getMe(t, s.APIURL, s.Demo.Tokens["OWNER"]); !strings.Contains(got, s.Demo.OrgID) {
		t.Fatalf("demo token's /v1/me does not list the demo org: %s", got)
	}

	// The walk-through of the README on the seeded org: Ines submits, Maya,
	// Pat (team PR) and Eddie (editor) approve, the log account publishes.
	postID := walkThrough(t, s)

	// Invitation mail goes to the dev SMTP sink: a file under <data-dir>/mail
	// and a one-line notice whose link opens the accept page.
	inviteThroughSink(t, s, notices, dir)

	// The Web UI serves its app and can reach the namespace's workflows.
	resp, err := http.Get(s.Temporal.UIURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Web UI answered %s", resp.Status)
	}
	uiAPI := strings.Replace(s.Temporal.UIURL, "/namespaces/default/workflows", "/api/v1/namespaces/default/workflows", 1)
	if resp, err = http.Get(uiAPI); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Web UI's workflow list API answered %s", resp.Status)
	}

	// Prometheus metrics are on their own listener, not on the public API.
	if resp, err = http.Get(s.MetricsURL); err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `countersign_posts{status="published"} 1`) {
		t.Fatalf("metrics listener %s: %s %.300s", s.MetricsURL, resp.Status, raw)
	}
	// The README's walk-through with an image (after the count above).
	imageWalkThrough(t, s)
	if resp, err = http.Get(s.APIURL + "/metrics"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the API serves /metrics: %s", resp.Status)
	}

	// bootstrap, the production command, against the dev stack's database.
	t.Setenv("DATABASE_URL", s.PG.URL)
	var out, errOut bytes.Buffer
	if code := cli.Main([]string{"bootstrap", "--org", "Acme", "--email", "Ana@Acme.test", "--name", "Ana", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("bootstrap exited %d: %s", code, errOut.String())
	}
	var boot2 struct {
		OrgID  string `json:"org_id"`
		UserID string `json:"user_id"`
		Token  string `json:"token"`
	}
	if err := json.Unmarshal(out.Bytes(), &boot2); err != nil {
		t.Fatalf("bootstrap --json printed %q: %v", out.String(), err)
	}
	if boot2.OrgID == "" || boot2.UserID == "" || !strings.HasPrefix(boot2.Token, "cs_") {
		t.Fatalf("bootstrap --json = %s, want org_id, user_id and a cs_ token", out.String())
	}
	if me := getMe(t, s.APIURL, boot2.Token); !strings.Contains(me, boot2.OrgID) || !strings.Contains(me, `"org_role":"owner"`) {
		t.Fatalf("bootstrap token's /v1/me does not show the owner of the new org: %s", me)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-s.PG.Done():
	default:
		t.Fatal("PostgreSQL still running after Stop")
	}
	if _, err := http.Get(s.APIURL + "/healthz"); err == nil {
		t.Fatal("API still answering after Stop")
	}

	// Second start: same data, nothing re-seeded, the org and token still work.
	s2 := startStack(t, ctx, &opts)
	t.Cleanup(func() { _ = s2.Stop() })
	if s2.Seeded || s2.Demo.Tokens["OWNER"] != s.Demo.Tokens["OWNER"] {
		t.Fatalf("second start re-seeded the demo org")
	}
	waitReady(t, s2.APIURL)
	if me := getMe(t, s2.APIURL, boot2.Token); !strings.Contains(me, boot2.OrgID) {
		t.Fatalf("after restart the org is gone: %s", me)
	}
	if p := getPost(t, s2, postID); p["status"] != "published" {
		t.Fatalf("after restart the post is %v", p["status"])
	}
}

func walkThrough(t *testing.T, s *devstack.Stack) string {
	t.Helper()
	d := s.Demo
	var post map[string]any
	code := send(t, s.APIURL+"/v1/orgs/"+d.OrgID+"/posts", d.Tokens["INES"],
		fmt.Sprintf(`{"account_id":%q,"text":"Hello from the Countersign walk-through"}`, d.AccountID), &post)
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, post)
	}
	id := post["id"].(string)
	// As in the README: no waiting. The 201 shows step 1 open, and each
	// approval's 200 shows the next step open for the next approver.
	if post["current_step"] != float64(1) || !stepOpen(post, 0) {
		t.Fatalf("the 201 does not show step 1 open: %v", post)
	}
	// Maya asks before deciding.
	var comment map[string]any
	if code := send(t, s.APIURL+"/v1/orgs/"+d.OrgID+"/posts/"+id+"/comments", d.Tokens["MAYA"],
		`{"text":"Can we drop the second hashtag?"}`, &comment); code != http.StatusCreated || comment["revision"] != float64(1) {
		t.Fatalf("Maya's comment: %d %v", code, comment)
	}
	for i, who := range []string{"MAYA", "PAT", "EDDIE"} {
		var answer map[string]any
		if code := send(t, s.APIURL+"/v1/orgs/"+d.OrgID+"/posts/"+id+"/approve", d.Tokens[who], `{"revision":1,"note":"ok"}`, &answer); code != http.StatusOK {
			t.Fatalf("%s approving: %d %v", who, code, answer)
		}
		if i < 2 && (answer["current_step"] != float64(i+2) || !stepOpen(answer, i+1)) {
			t.Fatalf("%s's answer does not show step %d open: %v", who, i+2, answer)
		}
	}
	p := waitFor(t, s, id, "published", func(p map[string]any) bool { return p["status"] == "published" })
	if url, _ := p["external_url"].(string); !strings.Contains(url, id) {
		t.Fatalf("published post has no local URL: %v", p["external_url"])
	}
	if cs, _ := p["comments"].([]any); len(cs) != 1 {
		t.Fatalf("the post does not list Maya's comment: %v", p["comments"])
	}
	// The report: one decision at each of the three steps.
	req, _ := http.NewRequest(http.MethodGet, s.APIURL+"/v1/orgs/"+d.OrgID+"/reports/approvals", nil)
	req.Header.Set("Authorization", "Bearer "+d.Tokens["OWNER"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var report struct{ Steps []struct{ Decisions int } }
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil || resp.StatusCode != http.StatusOK || len(report.Steps) != 3 {
		t.Fatalf("report: %d %+v %v", resp.StatusCode, report, err)
	}
	return id
}

// imageWalkThrough is the README's "With an image": Ines uploads an image
// (curl -F file=@…), attaches it with alt text, the chain approves, and the
// log account publishes the post, which lists the image.
func imageWalkThrough(t *testing.T, s *devstack.Stack) {
	t.Helper()
	d := s.Demo
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "logo.png")
	part.Write(mediatest.PNG(32, 16))
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL+"/v1/orgs/"+d.OrgID+"/media", &body)
	req.Header.Set("Authorization", "Bearer "+d.Tokens["INES"])
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var img map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&img)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || img["content_type"] != "image/png" || img["width"] != float64(32) {
		t.Fatalf("upload: %d %v", resp.StatusCode, img)
	}
	var post map[string]any
	if code := send(t, s.APIURL+"/v1/orgs/"+d.OrgID+"/posts", d.Tokens["INES"], fmt.Sprintf(
		`{"account_id":%q,"text":"New logo!","media":[{"id":%q,"alt":"Our logo, white on red"}]}`, d.AccountID, img["id"]), &post); code != http.StatusCreated {
		t.Fatalf("submit with an image: %d %v", code, post)
	}
	id := post["id"].(string)
	for _, who := range []string{"MAYA", "PAT", "EDDIE"} {
		if code := send(t, s.APIURL+"/v1/orgs/"+d.OrgID+"/posts/"+id+"/approve", d.Tokens[who], `{"revision":1}`, nil); code != http.StatusOK {
			t.Fatalf("%s approving the post with an image: %d", who, code)
		}
	}
	p := waitFor(t, s, id, "published", func(p map[string]any) bool { return p["status"] == "published" })
	media, _ := p["media"].([]any)
	if len(media) != 1 || media[0].(map[string]any)["alt"] != "Our logo, white on red" {
		t.Fatalf("the published post lists %v", p["media"])
	}
}

func stepOpen(p map[string]any, i int) bool {
	steps, _ := p["steps"].([]any)
	return len(steps) > i && steps[i].(map[string]any)["status"] == "open"
}

func waitFor(t *testing.T, s *devstack.Stack, id, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var p map[string]any
	for time.Now().Before(deadline) {
		if p = getPost(t, s, id); cond(p) {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("post never %s: %v", what, p)
	return nil
}

func getPost(t *testing.T, s *devstack.Stack, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.APIURL+"/v1/orgs/"+s.Demo.OrgID+"/posts/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+s.Demo.Tokens["OWNER"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return p
}

func send(t *testing.T, url, token, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func TestDevStackWithoutPostgresBinaries(t *testing.T) {
	_, err := devstack.Start(context.Background(), devstack.Options{
		DataDir:      t.TempDir(),
		HTTPAddr:     "127.0.0.1:0",
		TemporalPort: testenv.FreePort(t),
		UIPort:       -1,
		PGPort:       testenv.FreePort(t),
		Logger:       testenv.Logger(t),
		PGBinDir:     t.TempDir(), // holds no binaries
	})
	if err == nil || !strings.Contains(err.Error(), "install PostgreSQL") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("want one clear line saying what to install or set, got %v", err)
	}
	if strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("want one line, got %q", err.Error())
	}
}

// startStack starts the stack, choosing new ports when one that was free a
// moment ago has been taken by a parallel test package in between.
func startStack(t *testing.T, ctx context.Context, opts *devstack.Options) *devstack.Stack {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := devstack.Start(ctx, *opts)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error(), "in use") {
			t.Fatal(err)
		}
		t.Logf("retrying with new ports: %v", err)
		opts.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		opts.TemporalPort, opts.UIPort, opts.PGPort = testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	}
}

func waitReady(t *testing.T, api string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(api + "/readyz")
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%s %s", resp.Status, body.String())
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("/readyz never turned ready; last answer: %s", last)
}

func getMe(t *testing.T, api, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/me: %s %s", resp.Status, body.String())
	}
	return body.String()
}

// noticeBuffer collects the dev mail sink's notices.
type noticeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (n *noticeBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.Write(p)
}

func (n *noticeBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

// inviteThroughSink invites as the demo owner and follows the notice's link.
func inviteThroughSink(t *testing.T, s *devstack.Stack, notices *noticeBuffer, dir string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.APIURL+"/v1/orgs/"+s.Demo.OrgID+"/invitations",
		strings.NewReader(`{"email": "ana@demo.test", "org_role": "member"}`))
	req.Header.Set("Authorization", "Bearer "+s.Demo.Tokens["OWNER"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || strings.Contains(string(body), "csi_") {
		t.Fatalf("invite: %d %s", resp.StatusCode, body)
	}
	link := regexp.MustCompile(`-> (http\S+/invitations/csi_\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for link.FindStringSubmatch(notices.String()) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no mail notice with a link: %q", notices.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml")); len(files) != 1 {
		t.Errorf("mail files: %v", files)
	}
	resp, err = http.Get(link.FindStringSubmatch(notices.String())[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Demo") {
		t.Fatalf("accept page: %d %s", resp.StatusCode, page)
	}
}
