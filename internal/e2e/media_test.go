package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	_ "image/jpeg" // thumbnails
	_ "image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media"
	"github.com/countersign/countersign/internal/media/mediatest"
)

// upload sends data as the multipart field "file" with the given file name
// and declared type, and decodes the answer.
func (e *env) upload(token, orgID, filename, declared string, data []byte, out any) int {
	e.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
	h.Set("Content-Type", declared)
	part, _ := w.CreatePart(h)
	part.Write(data)
	w.Close()
	req, _ := http.NewRequest("POST", e.api.URL+"/v1/orgs/"+orgID+"/media", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("upload: %d %s: %v", resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// fetch GETs path (absolute URL or API path) with an optional token.
func (e *env) fetch(token, path string) (*http.Response, []byte) {
	e.t.Helper()
	if strings.HasPrefix(path, "/") {
		path = e.api.URL + path
	}
	req, _ := http.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// mediaFiles lists the files of the blob directory (<data dir>/media).
func (e *env) mediaFiles() []string {
	e.t.Helper()
	var files []string
	root := filepath.Join(e.app.Config.DataDir, "media")
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// logAccount creates a log account (the dev default network).
func (e *env) logAccount() string {
	e.t.Helper()
	var acct struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "log", "handle": "acme-log", "display_name": "Acme log", "timezone": "UTC"}, &acct)
	return acct.ID
}

// TestMediaUploadAttachPublish is the README's walk-through: upload an
// image, read it back, attach it with alt text to a post on the log network,
// which publishes it; the workflow carries ids, alt texts and hashes, never
// the bytes.
func TestMediaUploadAttachPublish(t *testing.T) {
	e := newEnv(t)
	e.setupThreeLevels()
	acct := e.logAccount()

	img := mediatest.NoisyPNG(600, 400) // about 960 KB
	var m cs.Media
	if code := e.upload(e.owner, e.orgID, "launch.png", "image/png", img, &m); code != 201 {
		t.Fatalf("upload: %d %+v", code, m)
	}
	if m.ID == "" || m.ContentType != "image/png" || m.Bytes != int64(len(img)) || m.Width != 600 || m.Height != 400 || len(m.SHA256) != 64 {
		t.Fatalf("upload answered %+v", m)
	}
	resp, got := e.fetch(e.members["Ines"].token, e.org("/media/"+m.ID))
	if resp.StatusCode != 200 || !bytes.Equal(got, img) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET media: %d %v (%d bytes)", resp.StatusCode, resp.Header, len(got))
	}

	// Uploads may be larger than the API's 1 MiB bodies, up to 10 MB.
	big := mediatest.NoisyPNG(900, 800) // about 2.9 MB
	var bigM cs.Media
	if code := e.upload(e.owner, e.orgID, "big.png", "image/png", big, &bigM); code != 201 || bigM.Bytes != int64(len(big)) {
		t.Fatalf("a %d-byte upload: %d %+v", len(big), code, bigM)
	}
	var prob struct{ Code, Detail string }
	if code := e.upload(e.owner, e.orgID, "huge.png", "image/png", append(mediatest.PNG(2, 2), make([]byte, 11<<20)...), &prob); code != 413 ||
		prob.Code != "media_too_large" || !strings.Contains(prob.Detail, "10 MB") {
		t.Fatalf("an 11 MB upload: %d %+v, want 413 media_too_large naming 10 MB", code, prob)
	}

	var p cs.Post
	e.must(201, e.owner, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Launch day",
		"media": []map[string]string{{"id": m.ID, "alt": "Our new logo on a red background"}}}, &p)
	done := e.waitPost(p.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if len(done.Media) != 1 || done.Media[0].ID != m.ID || done.Media[0].Alt != "Our new logo on a red background" ||
		done.Media[0].SHA256 != m.SHA256 || done.Media[0].URL != e.org("/media/"+m.ID) || done.Media[0].ThumbnailURL != e.org("/media/"+m.ID+"?size=thumbnail") {
		t.Fatalf("GET post lists media %+v", done.Media)
	}
	// The thumbnail: a member reads a 400×267 PNG (the noise has
	// transparency, which a thumbnail keeps), with the image's safety
	// headers.
	resp, got = e.fetch(e.members["Ines"].token, done.Media[0].ThumbnailURL)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || len(got) >= len(img) || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET thumbnail: %d %v", resp.StatusCode, resp.Header)
	}
	if w, h := imageSize(t, got); w != 400 || h != 267 {
		t.Fatalf("the thumbnail is %dx%d, want 400x267", w, h)
	}
	if resp, _ := e.fetch("", done.Media[0].ThumbnailURL); resp.StatusCode != 401 {
		t.Fatalf("a thumbnail without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := e.fetch(e.members["Ines"].token, e.org("/media/"+m.ID+"?size=huge")); resp.StatusCode != 400 {
		t.Fatalf("size=huge: %d, want 400", resp.StatusCode)
	}
	// Signed URLs are signed for one size: a thumbnail's URL edited to
	// fetch the image (size dropped or changed) is refused, and so is the
	// image's URL asking for the thumbnail.
	signedThumb := e.local(e.app.MediaURLs.ThumbnailURL(e.orgID, m.ID))
	resp, got = e.fetch("", signedThumb)
	if w, _ := imageSize(t, got); resp.StatusCode != 200 || w != 400 {
		t.Fatalf("a signed thumbnail URL: %d, %d px wide", resp.StatusCode, w)
	}
	for edited, want := range map[string]int{
		strings.Replace(signedThumb, "size=thumbnail", "", 1):           403,
		strings.Replace(signedThumb, "&size=thumbnail", "", 1):          403,
		strings.Replace(signedThumb, "size=thumbnail", "size=", 1):      400, // not a size
		e.local(e.app.MediaURLs.URL(e.orgID, m.ID)) + "&size=thumbnail": 403,
	} {
		if resp, body := e.fetch("", edited); resp.StatusCode != want || bytes.Equal(body, img) {
			t.Fatalf("edited signed URL %s: %d, want %d", edited, resp.StatusCode, want)
		}
	}
	// The log network published the image (recorded with the publication).
	recs, err := e.app.Store.PublicationMedia(context.Background(), p.ID, 1)
	if err != nil || len(recs) != 1 || recs[0].MediaID != m.ID || recs[0].SHA256 != m.SHA256 {
		t.Fatalf("publication media: %+v, %v; want the image", recs, err)
	}
	want := cs.ContentHash("Launch day", nil, cs.PostMedia{ID: m.ID, Alt: "Our new logo on a red background"})
	if done.ContentHash != want {
		t.Fatalf("content hash %s, want the hash with the image %s", done.ContentHash, want)
	}

	// History: the images' ids and hashes are there, the bytes are not, and
	// the version marker is recorded because this post has images.
	events := workflowHistory(t, e.app.Temporal, p.ID)
	var hist bytes.Buffer
	for _, ev := range events {
		raw, _ := protojson.Marshal(ev)
		hist.Write(raw)
	}
	marker := hasVersionMarker(t, e, p.ID, "media-attachments")
	start := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0].GetData()
	if !bytes.Contains(start, []byte(m.ID)) || !bytes.Contains(start, []byte(m.SHA256)) {
		t.Fatalf("the workflow input lacks the image's id and hash: %s", start)
	}
	if hist.Len() > len(img) {
		t.Fatalf("the history is %d bytes, more than the image (%d): bytes in history?", hist.Len(), len(img))
	}
	if !marker {
		t.Fatal("no media-attachments marker in the history of a post with images")
	}

	// A post without images records no marker and keeps the plain hash.
	var plain cs.Post
	e.must(201, e.owner, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "No picture"}, &plain)
	e.waitPost(plain.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if plain.ContentHash != cs.ContentHash("No picture", nil) || len(plain.Media) != 0 {
		t.Fatalf("plain post: hash %s, media %v", plain.ContentHash, plain.Media)
	}
	if hasVersionMarker(t, e, plain.ID, "media-attachments") {
		t.Fatal("a post without images recorded the media marker")
	}

	// The sweep: an upload never attached goes after 24 hours; an attached
	// one stays.
	var stray cs.Media
	e.upload(e.owner, e.orgID, "stray.png", "image/png", mediatest.PNG(2, 2), &stray)
	if n, err := e.app.Media.Sweep(context.Background(), time.Now().Add(23*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("sweep before 24 h: %d, %v", n, err)
	}
	if n, err := e.app.Media.Sweep(context.Background(), time.Now().Add(25*time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("sweep after 24 h: %d, %v; want the two unattached uploads", n, err)
	}
	if resp, _ := e.fetch(e.owner, e.org("/media/"+stray.ID)); resp.StatusCode != 404 {
		t.Fatalf("swept upload: %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.fetch(e.owner, e.org("/media/"+m.ID)); resp.StatusCode != 200 {
		t.Fatalf("attached upload after the sweep: %d", resp.StatusCode)
	}
	// The swept uploads' thumbnails went with them.
	if files := e.mediaFiles(); len(files) != 2 || !strings.HasSuffix(files[0], m.ID) || !strings.HasSuffix(files[1], m.ID+".thumb") {
		t.Fatalf("blob files after the sweep: %v, want the attached image and its thumbnail only", files)
	}

	// An upload without a thumbnail (made before thumbnails) answers the
	// image at its thumbnail URL.
	if err := e.app.Media.Blobs.Delete(context.Background(), media.ThumbKey(media.BlobKey(e.orgID, m.ID))); err != nil {
		t.Fatal(err)
	}
	if resp, got := e.fetch(e.owner, done.Media[0].ThumbnailURL); resp.StatusCode != 200 || !bytes.Equal(got, img) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("the thumbnail of an upload without one: %d %s, %d bytes; want the image", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
	}
}

// imageSize decodes an image's dimensions (0×0 when it is none).
func imageSize(t *testing.T, data []byte) (int, int) {
	t.Helper()
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

// local points a signed media URL (made with the public URL) at the test's
// listener.
func (e *env) local(signed string) string {
	e.t.Helper()
	u, err := url.Parse(signed)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.api.URL + u.Path + "?" + u.RawQuery
}

// hasVersionMarker reports whether the post's history has a GetVersion
// marker for changeID.
func hasVersionMarker(t *testing.T, e *env, postID, changeID string) bool {
	t.Helper()
	versions := 0
	for _, ev := range workflowHistory(t, e.app.Temporal, postID) {
		a := ev.GetMarkerRecordedEventAttributes()
		if a == nil || a.GetMarkerName() != "Version" {
			continue
		}
		versions++
		for _, p := range a.GetDetails()["change-id"].GetPayloads() {
			if strings.Contains(string(p.GetData()), `"`+changeID+`"`) {
				return true
			}
		}
	}
	if versions == 0 {
		t.Fatalf("no version marker at all in post %s's history: is the marker name still \"Version\"?", postID)
	}
	return false
}

// TestMediaEditVoidsApprovals: on the three-level chain, changing an alt
// text is a new revision that starts over at step 1; the network's limits
// are checked at submission and at edit, naming the image and the limit.
func TestMediaEditVoidsApprovals(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ines := e.members["Ines"].token

	var a, b cs.Media
	e.upload(ines, e.orgID, "a.jpg", "image/jpeg", mediatest.JPEG(64, 48), &a)
	e.upload(ines, e.orgID, "b.gif", "image/gif", mediatest.GIF(10, 10), &b)
	if a.ContentType != "image/jpeg" || b.ContentType != "image/gif" {
		t.Fatalf("uploads: %+v %+v", a, b)
	}
	img := func(id, alt string) map[string]string { return map[string]string{"id": id, "alt": alt} }

	// Webhook accounts take alt texts of at most 1500 characters.
	var prob struct {
		Code   string
		Detail string
		Errors []cs.FieldError
	}
	long := strings.Repeat("a", 1501)
	if code := e.do(ines, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Hi",
		"media": []map[string]string{img(a.ID, "ok"), img(b.ID, long)}}, &prob); code != 422 ||
		prob.Code != "media_network_limit" || !strings.Contains(prob.Detail, "image 2 ("+b.ID+")") || !strings.Contains(prob.Detail, "1500") {
		t.Fatalf("alt text too long: %d %+v", code, prob)
	}
	if code := e.do(ines, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Hi",
		"media": []map[string]string{img(a.ID, "1"), img(b.ID, "2"), img(a.ID, "3"), img(b.ID, "4"), img(a.ID, "5")}}, &prob); code != 422 ||
		!strings.Contains(prob.Detail, "at most 4") {
		t.Fatalf("five images: %d %+v", code, prob)
	}

	var p cs.Post
	e.must(201, ines, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Autumn launch",
		"media": []map[string]string{img(a.ID, "A red leaf"), img(b.ID, "Leaves falling")}}, &p)
	e.waitPost(p.ID, "opened step 1", atStep(1))
	e.approve("Maya", p.ID, 1)
	e.waitPost(p.ID, "opened step 2", atStep(2))
	if code := e.do(e.members["Eddie"].token, "GET", e.org("/media/"+a.ID), nil, nil); code != 200 {
		t.Fatalf("an approver reading the image: %d", code)
	}

	// Same text, one alt text changed: revision 2, back to step 1.
	var edited cs.Post
	e.must(200, ines, "PATCH", e.org("/posts/"+p.ID), map[string]any{"revision": 1, "text": "Autumn launch",
		"media": []map[string]string{img(a.ID, "A red maple leaf"), img(b.ID, "Leaves falling")}}, &edited)
	if edited.Revision != 2 || edited.CurrentStep != 1 || len(edited.Steps[0].Approvals) != 0 || edited.ContentHash == p.ContentHash ||
		len(edited.Media) != 2 || edited.Media[0].Alt != "A red maple leaf" {
		t.Fatalf("after the alt text edit: rev %d step %d hash %s (was %s) media %+v", edited.Revision, edited.CurrentStep,
			edited.ContentHash, p.ContentHash, edited.Media)
	}
	// Pat's approval of step 2 would be for the voided revision 1.
	if code := e.do(e.members["Pat"].token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 409 {
		t.Fatalf("approving the voided revision: %d, want 409", code)
	}
	e.approve("Maya", p.ID, 2)
	e.waitPost(p.ID, "opened step 2", atStep(2))
	e.approve("Pat", p.ID, 2)
	e.waitPost(p.ID, "opened step 3", atStep(3))
	e.approve("Eddie", p.ID, 2)
	done := e.waitPost(p.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if len(done.Media) != 2 || done.Revision != 2 {
		t.Fatalf("published post: %+v", done)
	}
	writeHistory(t, e.app.Temporal, p.ID, "media_edit_published.media")
}
