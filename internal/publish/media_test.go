package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/publish"
	"github.com/countersign/countersign/internal/publish/fakenet"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
)

// memMedia is an in-memory MediaSource: the real one (the blob store and the
// media table) is another package's; the publisher only needs this seam.
type memMedia struct {
	mu    sync.Mutex
	items map[string]memItem // by org/id
	opens int
	// byIDOnly finds an image by its id in any org (a store that forgot
	// the org): the publisher must still refuse another org's image.
	byIDOnly bool
}

type memItem struct {
	m    cs.Media
	data []byte
}

func newMemMedia() *memMedia { return &memMedia{items: map[string]memItem{}} }

// add stores a real PNG of w×h pixels of one colour for the org.
func (s *memMedia) add(org, id string, w, h int, c color.RGBA) cs.Media {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	m := cs.Media{ID: id, OrgID: org, ContentType: "image/png", Bytes: int64(buf.Len()), Width: w, Height: h,
		SHA256: hex.EncodeToString(sum[:]), CreatedAt: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[org+"/"+id] = memItem{m: m, data: buf.Bytes()}
	return m
}

// addGIF stores a real two-frame animated GIF for the org.
func (s *memMedia) addGIF(org, id string) cs.Media {
	pal := color.Palette{color.Black, color.White}
	var frames []*image.Paletted
	for i := 0; i < 2; i++ {
		fr := image.NewPaletted(image.Rect(0, 0, 4, 4), pal)
		fr.SetColorIndex(i, i, 1)
		frames = append(frames, fr)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, &gif.GIF{Image: frames, Delay: []int{10, 10}}); err != nil {
		panic(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	m := cs.Media{ID: id, OrgID: org, ContentType: "image/gif", Bytes: int64(buf.Len()), Width: 4, Height: 4,
		SHA256: hex.EncodeToString(sum[:]), CreatedAt: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[org+"/"+id] = memItem{m: m, data: buf.Bytes()}
	return m
}

// swap replaces an image's bytes behind its description (a tampered store).
func (s *memMedia) swap(org, id string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[org+"/"+id]
	it.data = data
	s.items[org+"/"+id] = it
}

func (s *memMedia) OpenMedia(_ context.Context, orgID, mediaID string) (cs.Media, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	it, ok := s.items[orgID+"/"+mediaID]
	if s.byIDOnly {
		for k, v := range s.items {
			if strings.HasSuffix(k, "/"+mediaID) {
				it, ok = v, true
			}
		}
	}
	if !ok {
		return cs.Media{}, nil, cs.Errorf(cs.ENOTFOUND, "media not found")
	}
	return it.m, io.NopCloser(bytes.NewReader(it.data)), nil
}

// mediaFixture is a fixture whose publisher reads images from memory.
type mediaFixture struct {
	*fixture
	media *memMedia
}

func newMediaFixture(t *testing.T) *mediaFixture {
	f := newFixture(t)
	mf := &mediaFixture{fixture: f, media: newMemMedia()}
	f.pub.Media = mf.media
	f.pub.SignMediaURL = func(org, id string) string {
		return "https://countersign.test/v1/orgs/" + org + "/media/" + id + "?expires=1700000000&sig=abc"
	}
	return mf
}

// withImages adds two images (3×2 and 4×5) to the org and the request.
func (f *mediaFixture) withImages(req activities.PublishRequest) activities.PublishRequest {
	a := f.media.add(f.org, "11111111-1111-4111-8111-"+req.PostID[24:], 3, 2, color.RGBA{200, 30, 30, 255})
	b := f.media.add(f.org, "22222222-2222-4222-8222-"+req.PostID[24:], 4, 5, color.RGBA{30, 30, 200, 255})
	req.Media = []cs.PostMedia{{ID: a.ID, Alt: "A red square", SHA256: a.SHA256}, {ID: b.ID, Alt: "A blue tile", SHA256: b.SHA256}}
	return req
}

func (f *mediaFixture) recorded(req activities.PublishRequest) []store.PublishedMedia {
	f.t.Helper()
	ms, err := f.st.PublicationMedia(context.Background(), req.PostID, req.Revision)
	if err != nil {
		f.t.Fatal(err)
	}
	return ms
}

// crashBeforePost is the store with a worker that dies once every image is
// recorded, before the post is sent: the attempt ends with nothing settled.
type crashBeforePost struct {
	publish.Store
	cancel context.CancelFunc
	after  bool // die after marking the post as being sent
}

func (c crashBeforePost) StartPosting(ctx context.Context, postID string, revision int) error {
	if c.after {
		_ = c.Store.StartPosting(ctx, postID, revision)
	}
	c.cancel()
	return context.Canceled
}

// crashingBeforePost makes the next attempt die between the uploads and the
// post; it returns the attempt's context and restores the store after.
func (f *mediaFixture) crashingBeforePost(after bool) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	orig := f.pub.Store
	f.pub.Store = crashBeforePost{Store: orig, cancel: cancel, after: after}
	return ctx, func() { f.pub.Store = orig }
}

// --- Mastodon -----------------------------------------------------------------

func TestPublishMediaMastodon(t *testing.T) {
	f := newMediaFixture(t)
	ctx := context.Background()
	uploads, statuses := "POST /api/v2/media", "POST /api/v1/statuses"

	t.Run("uploaded with descriptions, attached by id, once", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Two pictures"))
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || res.ExternalID != fake.Statuses[0].ID {
			t.Fatalf("%d uploads, %d statuses, %+v", fake.Uploads(), fake.Count(), res)
		}
		if got := fake.Statuses[0].MediaIDs; len(got) != 2 || got[0] != fake.Media[0].ID || got[1] != fake.Media[1].ID {
			t.Fatalf("media_ids %v, uploads %+v", got, fake.Media)
		}
		if fake.Media[0].Alt != "A red square" || fake.Media[1].Alt != "A blue tile" || fake.Media[0].SHA256 != req.Media[0].SHA256 {
			t.Fatalf("uploads %+v", fake.Media)
		}
		rec := f.recorded(req)
		if len(rec) != 2 || rec[0].NetworkRef != fake.Media[0].ID || rec[1].MediaID != req.Media[1].ID {
			t.Fatalf("recorded %+v", rec)
		}
		if _, err := f.publish(ctx, req); err != nil || fake.CallCount(uploads) != 2 || fake.CallCount(statuses) != 1 {
			t.Fatalf("again: %v, %d uploads, %d posts", err, fake.CallCount(uploads), fake.CallCount(statuses))
		}
	})

	t.Run("202 while processing: polled until ready, then posted", func(t *testing.T) {
		defer setPoll(10*time.Millisecond, 5*time.Second)()
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		fake.ProcessingChecks = 3
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Big pictures"))
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || fake.Uploads() != 2 {
			t.Fatalf("%d statuses, %d uploads", fake.Count(), fake.Uploads())
		}
		if n := fake.CallCount("GET /api/v1/media/" + fake.Media[0].ID); n != 3 {
			t.Fatalf("processing checks of the first image: %d, want 3 (206 twice, then 200)", n)
		}
	})

	t.Run("still processing past the bound: retried later without uploading again", func(t *testing.T) {
		defer setPoll(10*time.Millisecond, 50*time.Millisecond)()
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		fake.ProcessingChecks = 30
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Very big pictures"))
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRetryable, "still processing image 1")
		if p := f.publication(req); p.InDoubt || fake.Count() != 0 || fake.Uploads() != 2 {
			t.Fatalf("%+v, %d statuses, %d uploads", p, fake.Count(), fake.Uploads())
		}
		defer setPoll(10*time.Millisecond, 5*time.Second)()
		_, err = f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || fake.Uploads() != 2 {
			t.Fatalf("%d statuses, %d uploads", fake.Count(), fake.Uploads())
		}
	})

	t.Run("crash between upload and post, once the post was marked as being sent", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Crash at the door"))
		dying, restore := f.crashingBeforePost(true)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		restore()
		if p := f.publication(req); !p.InDoubt || p.Uploading {
			t.Fatalf("after the crash: %+v", p)
		}
		// In doubt: resent with the same Idempotency-Key, which is safe.
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(statuses) != 1 {
			t.Fatalf("%d uploads, %d statuses, %d posts", fake.Uploads(), fake.Count(), fake.CallCount(statuses))
		}
	})

	t.Run("crash between upload and post", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Crash after uploading"))
		dying, restore := f.crashingBeforePost(false)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		restore()
		if p := f.publication(req); p.Status != store.PubAttempting || !p.Uploading || p.InDoubt || fake.Uploads() != 2 || fake.Count() != 0 {
			t.Fatalf("after the crash: %+v, %d uploads, %d statuses", p, fake.Uploads(), fake.Count())
		}
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(statuses) != 1 {
			t.Fatalf("%d uploads, %d statuses, %d posts", fake.Uploads(), fake.Count(), fake.CallCount(statuses))
		}
		if ev := f.publication(req).Evidence; !strings.Contains(ev, "reusing mastodon's 2090") {
			t.Fatalf("evidence %q", ev)
		}
	})

	t.Run("crash after post", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Crash after posting"))
		dying := cancelOnAccept(&fake.OnAccept)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		fake.OnAccept = nil
		if p := f.publication(req); !p.InDoubt || p.Uploading {
			t.Fatalf("after the crash: %+v", p)
		}
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		// The resend carries the same key: Mastodon answers the first status.
		if fake.Uploads() != 2 || fake.Count() != 1 || res.ExternalID != fake.Statuses[0].ID {
			t.Fatalf("%d uploads, %d statuses, %+v", fake.Uploads(), fake.Count(), res)
		}
	})

	t.Run("crash during an upload: that image is uploaded again, the post goes once", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Crash while uploading"))
		dying := cancelOnAccept(&fake.OnUpload)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		fake.OnUpload = nil
		if p := f.publication(req); p.InDoubt || len(f.recorded(req)) != 0 {
			t.Fatalf("after the crash: %+v, %v", p, f.recorded(req))
		}
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		// The first upload's id never reached Countersign: it stays
		// unattached on the instance (which removes such media).
		if fake.Uploads() != 3 || fake.Count() != 1 || fake.Statuses[0].MediaIDs[0] != fake.Media[1].ID {
			t.Fatalf("%d uploads, %d statuses, %+v", fake.Uploads(), fake.Count(), fake.Statuses)
		}
	})

	t.Run("upload refused: failed, no status", func(t *testing.T) {
		fake := fakenet.NewMastodon("another-token")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Revoked"))
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "write:media")
		if fake.Count() != 0 || fake.CallCount(statuses) != 0 {
			t.Fatal("posted")
		}
	})
}

func setPoll(interval, bound time.Duration) func() {
	i, b := publish.PollInterval, publish.PollFor
	publish.PollInterval, publish.PollFor = interval, bound
	return func() { publish.PollInterval, publish.PollFor = i, b }
}

// --- Bluesky ------------------------------------------------------------------

func TestPublishMediaBluesky(t *testing.T) {
	f := newMediaFixture(t)
	ctx := context.Background()
	newFake := func() *fakenet.Bluesky { return fakenet.NewBluesky("acme.bsky.social", "abcd-efgh-ijkl-mnop") }
	creates := "POST /xrpc/com.atproto.repo.createRecord"

	embedOf := func(t *testing.T, fake *fakenet.Bluesky, key string) []map[string]any {
		t.Helper()
		embed, _ := fake.Records[key].Record["embed"].(map[string]any)
		if embed["$type"] != "app.bsky.embed.images" {
			t.Fatalf("embed %v", embed)
		}
		raw, _ := json.Marshal(embed["images"])
		var imgs []map[string]any
		_ = json.Unmarshal(raw, &imgs)
		return imgs
	}

	t.Run("blobs uploaded, embedded with alt and aspect ratio, once", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.withImages(f.post(blueskyAccount(f.fixture, fake), "Two pictures"))
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		key := f.publication(req).IdemKey
		imgs := embedOf(t, fake, key)
		if fake.Uploads() != 2 || fake.Count() != 1 || len(imgs) != 2 {
			t.Fatalf("%d uploads, %d records, %v", fake.Uploads(), fake.Count(), imgs)
		}
		ar, _ := json.Marshal(imgs[1]["aspectRatio"])
		if imgs[0]["alt"] != "A red square" || imgs[1]["alt"] != "A blue tile" || string(ar) != `{"height":5,"width":4}` {
			t.Fatalf("images %v", imgs)
		}
		blob, _ := json.Marshal(imgs[0]["image"])
		if !strings.Contains(string(blob), `"mimeType":"image/png"`) || !strings.Contains(string(blob), `"$link":"bafkrei`) {
			t.Fatalf("blob %s", blob)
		}
		if rec := f.recorded(req); len(rec) != 2 || !strings.Contains(rec[0].NetworkRef, "bafkrei") {
			t.Fatalf("recorded %+v", rec)
		}
	})

	t.Run("crash between upload and post", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.withImages(f.post(blueskyAccount(f.fixture, fake), "Crash after uploading"))
		dying, restore := f.crashingBeforePost(false)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		restore()
		if fake.Uploads() != 2 || fake.Count() != 0 {
			t.Fatalf("after the crash: %d uploads, %d records", fake.Uploads(), fake.Count())
		}
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(creates) != 1 || len(embedOf(t, fake, f.publication(req).IdemKey)) != 2 {
			t.Fatalf("%d uploads, %d records, %d creates", fake.Uploads(), fake.Count(), fake.CallCount(creates))
		}
	})

	t.Run("crash between upload and post, once the post was marked as being sent", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.withImages(f.post(blueskyAccount(f.fixture, fake), "Crash at the door"))
		dying, restore := f.crashingBeforePost(true)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		restore()
		// In doubt: getRecord says it is not there, so it is created under
		// the revision's record key.
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(creates) != 1 || fake.CallCount("GET /xrpc/com.atproto.repo.getRecord") != 1 {
			t.Fatalf("%d uploads, %d records, %d creates", fake.Uploads(), fake.Count(), fake.CallCount(creates))
		}
	})

	t.Run("crash after post", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.withImages(f.post(blueskyAccount(f.fixture, fake), "Crash after posting"))
		dying := cancelOnAccept(&fake.OnAccept)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		fake.OnAccept = nil
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		// getRecord finds the record: no second create, no second upload.
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(creates) != 1 {
			t.Fatalf("%d uploads, %d records, %d creates", fake.Uploads(), fake.Count(), fake.CallCount(creates))
		}
	})
}

// --- X ----------------------------------------------------------------------

func TestPublishMediaX(t *testing.T) {
	f := newMediaFixture(t)
	ctx := context.Background()
	posts := "POST /2/tweets"

	t.Run("uploaded with alt text, attached by media_ids, once", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		req := f.withImages(f.post(xAccount(f.fixture, fake), "Two pictures"))
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || res.ExternalID != fake.Tweets[0].ID {
			t.Fatalf("%d uploads, %d posts, %+v", fake.Uploads(), fake.Count(), res)
		}
		if got := fake.Tweets[0].MediaIDs; len(got) != 2 || got[0] != fake.Media[0].ID || got[1] != fake.Media[1].ID {
			t.Fatalf("media_ids %v", got)
		}
		if fake.Media[0].Alt != "A red square" || fake.Media[1].Alt != "A blue tile" {
			t.Fatalf("alt texts %+v", fake.Media)
		}
	})

	t.Run("an animated GIF is processed before it is attached", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.GIFChecks = 2
		req := f.post(xAccount(f.fixture, fake), "Moving picture")
		g := f.media.addGIF(f.org, "44444444-4444-4444-8444-"+req.PostID[24:])
		req.Media = []cs.PostMedia{{ID: g.ID, Alt: "A blinking dot", SHA256: g.SHA256}}
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || fake.Uploads() != 1 || fake.CallCount("GET /2/media/upload") != 2 || fake.Tweets[0].MediaIDs[0] != fake.Media[0].ID {
			t.Fatalf("%d posts, %d uploads, %d status checks", fake.Count(), fake.Uploads(), fake.CallCount("GET /2/media/upload"))
		}
	})

	t.Run("crash between upload and post", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		req := f.withImages(f.post(xAccount(f.fixture, fake), "Crash after uploading"))
		dying, restore := f.crashingBeforePost(false)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		restore()
		if p := f.publication(req); p.Status != store.PubAttempting || fake.Uploads() != 2 || fake.Count() != 0 {
			t.Fatalf("after the crash: %+v, %d uploads, %d posts", p, fake.Uploads(), fake.Count())
		}
		// X cannot deduplicate, but the post was surely not sent: it is
		// sent now, with the images uploaded before the crash.
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(posts) != 1 || fake.Tweets[0].MediaIDs[0] != fake.Media[0].ID {
			t.Fatalf("%d uploads, %d posts, %d calls", fake.Uploads(), fake.Count(), fake.CallCount(posts))
		}
	})

	t.Run("crash just after the post was marked as being sent: needs a person, never posted blindly", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		req := f.withImages(f.post(xAccount(f.fixture, fake), "Crash at the door"))
		dying, restore := f.crashingBeforePost(true)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		restore()
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishUnknown, "not found among the account's recent posts")
		if fake.Uploads() != 2 || fake.CallCount(posts) != 0 {
			t.Fatalf("%d uploads, %d posts", fake.Uploads(), fake.CallCount(posts))
		}
	})

	t.Run("crash after post: the look-up finds it (its images shown as a link)", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		req := f.withImages(f.post(xAccount(f.fixture, fake), "Crash after posting"))
		dying := cancelOnAccept(&fake.OnAccept)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		fake.OnAccept = nil
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Uploads() != 2 || fake.Count() != 1 || fake.CallCount(posts) != 1 || res.ExternalID != fake.Tweets[0].ID {
			t.Fatalf("%d uploads, %d posts, %d calls, %+v", fake.Uploads(), fake.Count(), fake.CallCount(posts), res)
		}
	})
}

// --- Webhook and log ------------------------------------------------------------

func TestPublishMediaWebhook(t *testing.T) {
	f := newMediaFixture(t)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(secrets.RandomBytes(24))
	var mu sync.Mutex
	var bodies []publish.WebhookPayload
	var ids []string
	cancelNext := func() {}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := publish.VerifyWebhook(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p publish.WebhookPayload
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		bodies, ids = append(bodies, p), append(ids, r.Header.Get("webhook-id"))
		c := cancelNext
		cancelNext = func() {}
		mu.Unlock()
		c() // the worker dies once the receiver has it
		w.Write([]byte(`{"id":"hook-1"}`))
	}))
	defer srv.Close()
	acct := f.account(cs.NetworkWebhook, "hook", map[string]string{"url": srv.URL}, map[string]string{"secret": secret})
	req := f.withImages(f.post(acct, "Signed pictures"))
	dying, cancel := context.WithCancel(context.Background())
	cancelNext = cancel
	if _, err := f.publish(dying, req); err == nil {
		t.Fatal("the dying attempt reported success")
	}
	_, err := f.publish(context.Background(), req)
	f.expect(err, "")
	if len(bodies) != 2 || ids[0] != ids[1] {
		t.Fatalf("%d deliveries, ids %v", len(bodies), ids)
	}
	got := bodies[1].Data.Post.Media
	if len(got) != 2 {
		t.Fatalf("media %+v", got)
	}
	m := got[1]
	if m.ID != req.Media[1].ID || m.Alt != "A blue tile" || m.ContentType != "image/png" || m.SHA256 != req.Media[1].SHA256 ||
		m.Width != 4 || m.Height != 5 || m.Bytes <= 0 || !strings.HasPrefix(m.URL, "https://countersign.test/v1/orgs/"+f.org+"/media/"+m.ID+"?") {
		t.Fatalf("media %+v", m)
	}
}

func TestPublishMediaLog(t *testing.T) {
	f := newMediaFixture(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	f.pub.Adapters[cs.NetworkLog] = publish.Log{Logger: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil)), PublicURL: "http://countersign.test"}
	acct := f.account(cs.NetworkLog, "dev", nil, nil)
	req := f.withImages(f.post(acct, "Logged pictures"))
	_, err := f.publish(context.Background(), req)
	f.expect(err, "")
	mu.Lock()
	line := buf.String()
	mu.Unlock()
	if !strings.Contains(line, `"media":[{"id":"`+req.Media[0].ID+`","alt":"A red square"`) || !strings.Contains(line, `"alt":"A blue tile"`) {
		t.Fatalf("log line %s", line)
	}
	if rec := f.recorded(req); len(rec) != 2 || rec[1].NetworkRef != req.Media[1].ID {
		t.Fatalf("recorded %+v", rec)
	}
	if f.media.opens != 0 {
		t.Fatalf("the log network read %d images it does not need", f.media.opens)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// --- What the publisher refuses to send --------------------------------------------

func TestPublishMediaRefused(t *testing.T) {
	f := newMediaFixture(t)
	ctx := context.Background()

	t.Run("an image of another org is never read nor uploaded", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.post(mastodonAccount(f.fixture, fake), "Borrowed picture")
		other := f.media.add("99999999-9999-4999-8999-999999999999", "33333333-3333-4333-8333-333333333333", 2, 2, color.RGBA{1, 2, 3, 255})
		req.Media = []cs.PostMedia{{ID: other.ID, Alt: "not ours", SHA256: other.SHA256}}
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "not in this organization's media store")
		if fake.Uploads() != 0 || fake.Count() != 0 {
			t.Fatalf("%d uploads, %d statuses", fake.Uploads(), fake.Count())
		}
		// Even from a media store that would hand it over.
		f.media.byIDOnly = true
		defer func() { f.media.byIDOnly = false }()
		req2 := f.post(mastodonAccount(f.fixture, fake), "Borrowed picture, again")
		req2.Media = req.Media
		_, err = f.publish(ctx, req2)
		f.expect(err, activities.ErrTypePublishRejected, "not an image of this organization")
		if fake.Uploads() != 0 || fake.Count() != 0 {
			t.Fatalf("%d uploads, %d statuses", fake.Uploads(), fake.Count())
		}
	})

	t.Run("bytes changed after approval: not sent", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.withImages(f.post(mastodonAccount(f.fixture, fake), "Swapped picture"))
		f.media.swap(f.org, req.Media[1].ID, []byte("\x89PNG\r\n\x1a\nnot the approved image"))
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "image 2", "not the ones approved")
		if fake.Count() != 0 || fake.CallCount("POST /api/v1/statuses") != 0 {
			t.Fatal("posted an unapproved image")
		}
	})

	t.Run("an image whose description is not the approved one: not sent", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		req := f.withImages(f.post(xAccount(f.fixture, fake), "Other picture"))
		req.Media[0].SHA256 = strings.Repeat("0", 64)
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "not the image that was approved")
		if fake.Uploads() != 0 || fake.Count() != 0 {
			t.Fatalf("%d uploads, %d posts", fake.Uploads(), fake.Count())
		}
	})
}

// A hostile or broken network's answers to uploads steer nothing: a media id
// that is a path is refused before any other call, a blob description that
// is not a blob is not recorded.
func TestPublishMediaHostileAnswers(t *testing.T) {
	f := newMediaFixture(t)
	ctx := context.Background()
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v2/media":
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"id":"1/../../../admin/accounts/1/action","url":null}`))
		case "/xrpc/com.atproto.server.createSession":
			w.Write([]byte(`{"did":"did:plc:evil","handle":"evil.test","accessJwt":"jwt"}`))
		case "/xrpc/com.atproto.repo.uploadBlob":
			w.Write([]byte(`{"blob":{"$type":"blob","ref":{"$link":"` + strings.Repeat("b", 4000) + `"},"mimeType":"image/png"}}`))
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()

	acct := f.account(cs.NetworkMastodon, "acme", map[string]string{"instance_url": srv.URL}, map[string]string{"access_token": "mastodon-token-1"})
	req := f.withImages(f.post(acct, "Hostile instance"))
	_, err := f.publish(ctx, req)
	f.expect(err, activities.ErrTypePublishRejected, "unusable media id")
	mu.Lock()
	got := strings.Join(paths, ", ")
	mu.Unlock()
	if got != "POST /api/v2/media" || len(f.recorded(req)) != 0 {
		t.Fatalf("calls %s, recorded %v", got, f.recorded(req))
	}

	paths = nil
	acct = f.account(cs.NetworkBluesky, "evil.test", map[string]string{"pds_url": srv.URL}, map[string]string{"identifier": "evil.test", "app_password": "abcd-efgh-ijkl-mnop"})
	req = f.withImages(f.post(acct, "Hostile PDS"))
	_, err = f.publish(ctx, req)
	f.expect(err, activities.ErrTypePublishRetryable, "not a blob")
	if len(f.recorded(req)) != 0 || strings.Contains(strings.Join(paths, ","), "createRecord") {
		t.Fatalf("calls %v, recorded %v", paths, f.recorded(req))
	}
}
