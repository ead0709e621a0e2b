package e2e

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media/mediatest"
)

// Abuse cases of media (issue 16): uploads, reads, attachments and signed
// URLs.

// mediaOrgs is a deployment with two orgs: A (e.orgID, e.owner) with an
// uploaded image, and B with its owner.
type mediaOrgs struct {
	*env
	img            cs.Media
	imgBytes       []byte
	orgB, ownerB   string
	accountA, accB string
}

func newMediaOrgs(t *testing.T) *mediaOrgs {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.app.Store.Bootstrap(ctx, "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		t.Fatal(err)
	}
	e.orgID, e.owner = a.Org.ID, a.Token
	b, err := e.app.Store.Bootstrap(ctx, "Rival", "owner@rival.test", "Rita Rival")
	if err != nil {
		t.Fatal(err)
	}
	m := &mediaOrgs{env: e, orgB: b.Org.ID, ownerB: b.Token, imgBytes: mediatest.PNG(40, 30)}
	m.accountA = e.logAccount()
	var acct struct{ ID string }
	e.must(201, b.Token, "POST", "/v1/orgs/"+b.Org.ID+"/accounts", map[string]any{
		"network": "log", "handle": "rival-log", "display_name": "Rival log", "timezone": "UTC"}, &acct)
	m.accB = acct.ID
	if code := e.upload(e.owner, e.orgID, "secret-plan.png", "image/png", m.imgBytes, &m.img); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	return m
}

// stillServed checks that org A's image is still there, unchanged.
func (m *mediaOrgs) stillServed() {
	m.t.Helper()
	resp, got := m.fetch(m.owner, m.org("/media/"+m.img.ID))
	if resp.StatusCode != 200 || !bytes.Equal(got, m.imgBytes) {
		m.t.Fatalf("org A's image changed: %d, %d bytes", resp.StatusCode, len(got))
	}
}

func init() {
	addAbuse(
		abuseCase{Attacker: "member of another org", Attack: "reads an org's image by its id", Spec: "§2 Organization",
			Run: func(t *testing.T) {
				m := newMediaOrgs(t)
				for _, path := range []string{"/v1/orgs/" + m.orgID + "/media/" + m.img.ID, "/v1/orgs/" + m.orgB + "/media/" + m.img.ID} {
					resp, body := m.fetch(m.ownerB, path)
					if resp.StatusCode != 404 || bytes.Contains(body, m.imgBytes[:16]) {
						t.Fatalf("GET %s as org B's owner: %d (%d bytes), want 404", path, resp.StatusCode, len(body))
					}
				}
				if resp, _ := m.fetch("", m.org("/media/"+m.img.ID)); resp.StatusCode != 401 {
					t.Fatalf("anonymous GET: %d, want 401", resp.StatusCode)
				}
				m.stillServed()
			}},
		abuseCase{Attacker: "member", Attack: "uploads a file whose name and declared type lie about the image (HTML as .png, PNG as .jpg)", Spec: "§2 Media",
			Run: func(t *testing.T) {
				m := newMediaOrgs(t)
				before := m.mediaFiles()
				var prob struct{ Code, Detail string }
				html := []byte("<!doctype html><html><body><script>fetch('/v1/me')</script></body></html>")
				if code := m.upload(m.owner, m.orgID, "cat.png", "image/png", html, &prob); code != 415 || prob.Code != "unsupported_image" {
					t.Fatalf("HTML named cat.png: %d %+v, want 415 unsupported_image", code, prob)
				}
				if after := m.mediaFiles(); len(after) != len(before) {
					t.Fatalf("the refused upload left files: %v", after)
				}
				var png cs.Media
				if code := m.upload(m.owner, m.orgID, "photo.jpg", "image/jpeg", mediatest.PNG(8, 8), &png); code != 201 || png.ContentType != "image/png" {
					t.Fatalf("PNG declared as image/jpeg: %d %+v, want 201 image/png", code, png)
				}
				resp, _ := m.fetch(m.owner, m.org("/media/"+png.ID))
				if ct := resp.Header.Get("Content-Type"); ct != "image/png" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatalf("served as %q (nosniff %q), want image/png with nosniff", ct, resp.Header.Get("X-Content-Type-Options"))
				}
			}},
		abuseCase{Attacker: "member", Attack: "uploads a decompression bomb (50000×50000 pixels in a few bytes)", Spec: "§8 Limits",
			Run: func(t *testing.T) {
				m := newMediaOrgs(t)
				before := m.mediaFiles()
				var prob struct {
					Code, Detail string
					Status       int
				}
				bomb := mediatest.PNGBomb(50000, 50000)
				if code := m.upload(m.owner, m.orgID, "bomb.png", "image/png", bomb, &prob); code != 422 || prob.Code != "image_too_large" ||
					!strings.Contains(prob.Detail, "50000×50000") || !strings.Contains(prob.Detail, "40000000") {
					t.Fatalf("bomb of %d bytes: %d %+v, want 422 image_too_large naming the limit", len(bomb), code, prob)
				}
				if after := m.mediaFiles(); len(after) != len(before) {
					t.Fatalf("the refused upload left files: %v", after)
				}
			}},
		abuseCase{Attacker: "member of another org", Attack: "attaches an org's image id to a post of their own", Spec: "§2 Organization",
			Run: func(t *testing.T) {
				m := newMediaOrgs(t)
				var prob struct {
					Code, Detail string
					Errors       []cs.FieldError
				}
				code := m.do(m.ownerB, "POST", "/v1/orgs/"+m.orgB+"/posts", map[string]any{"account_id": m.accB, "text": "Look",
					"media": []map[string]string{{"id": m.img.ID, "alt": "their plan"}}}, &prob)
				if code != 422 || len(prob.Errors) == 0 || prob.Errors[0].Field != "media[0].id" {
					t.Fatalf("foreign image attached: %d %+v, want 422 on media[0].id", code, prob)
				}
				var list struct{ Items []cs.Post }
				m.must(200, m.ownerB, "GET", "/v1/orgs/"+m.orgB+"/posts", nil, &list)
				if len(list.Items) != 0 {
					t.Fatalf("a post was created: %+v", list.Items)
				}
				// And the image did not become "attached" (it would escape the sweep).
				if n, err := m.app.Media.Sweep(context.Background(), time.Now().Add(25*time.Hour), 100); err != nil || n != 1 {
					t.Fatalf("sweep: %d, %v: org A's image should still be unattached", n, err)
				}
			}},
		abuseCase{Attacker: "anyone holding a signed media URL", Attack: "tampers with it, points it at another image or uses it after it expired", Spec: "§2 Media",
			Run: func(t *testing.T) {
				m := newMediaOrgs(t)
				var other cs.Media
				m.upload(m.owner, m.orgID, "other.png", "image/png", mediatest.PNG(3, 3), &other)
				urls := *m.app.MediaURLs
				urls.BaseURL = m.api.URL // the test's listener, not COUNTERSIGN_PUBLIC_URL
				good := urls.URL(m.orgID, m.img.ID)
				if resp, body := m.fetch("", good); resp.StatusCode != 200 || !bytes.Equal(body, m.imgBytes) {
					t.Fatalf("a valid signed URL: %d", resp.StatusCode)
				}
				u, _ := url.Parse(good)
				q := u.Query()
				tamper := func(f func(q url.Values, u *url.URL)) string {
					c := *u
					qq := url.Values{}
					for k, v := range q {
						qq[k] = append([]string(nil), v...)
					}
					f(qq, &c)
					c.RawQuery = qq.Encode()
					return c.String()
				}
				sig := q.Get("signature")
				flipped := string(rune(sig[0]^1)) + sig[1:]
				expired := urls
				expired.Now = func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }
				for name, bad := range map[string]string{
					"tampered signature": tamper(func(q url.Values, _ *url.URL) { q.Set("signature", flipped) }),
					"later expiry":       tamper(func(q url.Values, _ *url.URL) { q.Set("expires", "99999999999") }),
					"another image":      tamper(func(_ url.Values, u *url.URL) { u.Path = strings.Replace(u.Path, m.img.ID, other.ID, 1) }),
					"another org":        tamper(func(_ url.Values, u *url.URL) { u.Path = strings.Replace(u.Path, m.orgID, m.orgB, 1) }),
					"expired":            expired.URL(m.orgID, m.img.ID),
				} {
					if resp, body := m.fetch("", bad); resp.StatusCode != 403 || bytes.Contains(body, m.imgBytes[:16]) {
						t.Errorf("%s: %d (%d bytes), want 403", name, resp.StatusCode, len(body))
					}
				}
				m.stillServed()
			}},
		abuseCase{Attacker: "member who may compose on no account", Attack: "uploads an image", Spec: "§2 Media",
			Run: func(t *testing.T) {
				m := newMediaOrgs(t)
				nobody := m.invite("Nora", "member")
				before := m.mediaFiles()
				var prob struct{ Code string }
				if code := m.upload(nobody.token, m.orgID, "x.png", "image/png", mediatest.PNG(4, 4), &prob); code != 403 {
					t.Fatalf("upload without any compose right: %d %+v, want 403", code, prob)
				}
				if after := m.mediaFiles(); len(after) != len(before) {
					t.Fatalf("the refused upload left files: %v", after)
				}
				// She can still read the org's images: she is a member.
				if resp, _ := m.fetch(nobody.token, m.org("/media/"+m.img.ID)); resp.StatusCode != 200 {
					t.Fatalf("a member reading: %d", resp.StatusCode)
				}
			}},
	)
}
