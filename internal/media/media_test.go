package media_test

import (
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media"
	"github.com/countersign/countersign/internal/media/mediatest"
	"github.com/countersign/countersign/internal/secrets"
)

func TestInspect(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		ct   string
		w, h int
	}{
		{"png", mediatest.PNG(3, 2), media.PNG, 3, 2},
		{"jpeg", mediatest.JPEG(16, 9), media.JPEG, 16, 9},
		{"gif", mediatest.GIF(5, 4), media.GIF, 5, 4},
		{"webp", mediatest.WebP(640, 480), media.WebP, 640, 480},
	} {
		info, err := media.Inspect(c.data)
		if err != nil || info.ContentType != c.ct || info.Width != c.w || info.Height != c.h {
			t.Errorf("%s: %+v, %v; want %s %dx%d", c.name, info, err, c.ct, c.w, c.h)
		}
	}
	for _, c := range []struct {
		name, code, says string
		data             []byte
	}{
		{"html", media.CodeUnsupported, "JPEG, PNG, GIF or WebP", []byte("<!doctype html><script>alert(1)</script>")},
		{"svg", media.CodeUnsupported, "JPEG, PNG, GIF or WebP", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
		{"empty", cs.EINVALID, "empty", nil},
		{"truncated png", media.CodeCorrupt, "does not decode", mediatest.PNG(2, 2)[:20]},
		{"bomb", media.CodeDimensions, "40000000 pixels", mediatest.PNGBomb(50000, 50000)},
		{"too wide", media.CodeDimensions, "16384 pixels a side", mediatest.PNGBomb(20000, 10)},
		{"too big", media.CodeTooLarge, "10 MB", append(mediatest.PNG(1, 1), make([]byte, media.MaxBytes)...)},
	} {
		_, err := media.Inspect(c.data)
		if cs.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want code %s saying %q", c.name, err, c.code, c.says)
		}
	}
}

func TestCheckPost(t *testing.T) {
	png := cs.Media{ID: "a", ContentType: media.PNG, Bytes: 2 << 20, Width: 100, Height: 100}
	gif := cs.Media{ID: "g", ContentType: media.GIF, Bytes: 1 << 20, Width: 100, Height: 100}
	refs := func(alts ...string) []cs.PostMedia {
		out := make([]cs.PostMedia, len(alts))
		for i, a := range alts {
			out[i] = cs.PostMedia{ID: "a", Alt: a}
		}
		return out
	}
	if err := media.CheckPost(cs.NetworkMastodon, refs("ok"), []cs.Media{png}); err != nil {
		t.Fatalf("a 2 MB PNG on Mastodon: %v", err)
	}
	cases := []struct {
		n    cs.Network
		refs []cs.PostMedia
		m    []cs.Media
		says string
	}{
		{cs.NetworkBluesky, refs("x"), []cs.Media{png}, "image 1 (a) is 2097152 bytes; bluesky allows at most 1000000"},
		{cs.NetworkX, refs(strings.Repeat("é", 1001)), []cs.Media{{ID: "a", ContentType: media.PNG, Bytes: 10, Width: 1, Height: 1}}, "alt text of image 1 (a) is 1001 characters; x allows at most 1000"},
		{cs.NetworkX, refs("", ""), []cs.Media{gif, png}, "x takes an animated GIF only as a post's single image"},
		{cs.NetworkMastodon, refs("", "", "", "", ""), []cs.Media{png, png, png, png, png}, "5 images; mastodon allows at most 4"},
		{cs.NetworkMastodon, refs(""), []cs.Media{{ID: "a", ContentType: media.PNG, Bytes: 10, Width: 8000, Height: 6000}}, "mastodon allows at most 33177600 pixels"},
	}
	for _, c := range cases {
		err := media.CheckPost(c.n, c.refs, c.m)
		if cs.ErrorCode(err) != media.CodeNetworkRule || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want it to say %q", c.n, err, c.says)
		}
	}
}

func TestURLs(t *testing.T) {
	key := make([]byte, 32)
	signer, err := secrets.NewMediaURLSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 10, 20, 0, 0, time.UTC)
	u := &media.URLs{Signer: signer, BaseURL: "https://cs.example", Now: func() time.Time { return now }}
	org, id := "0190aaaa-0000-7000-8000-000000000001", "0190bbbb-0000-7000-8000-000000000002"
	raw := u.URL(org, id)
	if !strings.HasPrefix(raw, "https://cs.example/v1/orgs/"+org+"/media/"+id+"?expires=") {
		t.Fatalf("URL %s", raw)
	}
	exp, sig := query(t, raw)
	if err := u.Check(org, id, "", exp, sig); err != nil {
		t.Fatalf("a fresh URL: %v", err)
	}
	// The size is signed: the image's URL cannot fetch the thumbnail, nor
	// the reverse.
	if err := u.Check(org, id, media.SizeThumbnail, exp, sig); cs.ErrorCode(err) != cs.EFORBIDDEN {
		t.Errorf("the image's signature asking for the thumbnail: %v", err)
	}
	thumb := u.ThumbnailURL(org, id)
	if !strings.Contains(thumb, "size=thumbnail") {
		t.Fatalf("thumbnail URL %s", thumb)
	}
	texp, tsig := query(t, thumb)
	if err := u.Check(org, id, media.SizeThumbnail, texp, tsig); err != nil {
		t.Fatalf("a fresh thumbnail URL: %v", err)
	}
	if err := u.Check(org, id, "", texp, tsig); cs.ErrorCode(err) != cs.EFORBIDDEN {
		t.Errorf("the thumbnail's signature asking for the image: %v", err)
	}
	if err := u.Check(org, "0190bbbb-0000-7000-8000-000000000003", "", exp, sig); cs.ErrorCode(err) != cs.EFORBIDDEN {
		t.Errorf("another image with this signature: %v", err)
	}
	if err := u.Check(org, id, "", exp+"0", sig); cs.ErrorCode(err) != cs.EFORBIDDEN {
		t.Errorf("a later expiry with this signature: %v", err)
	}
	now = now.Add(media.URLTTL + 2*time.Hour)
	if err := u.Check(org, id, "", exp, sig); cs.ErrorCode(err) != media.CodeURLExpired {
		t.Errorf("an expired URL: %v", err)
	}
}

func query(t *testing.T, raw string) (string, string) {
	_, q, _ := strings.Cut(raw, "?")
	var exp, sig string
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "expires":
			exp = v
		case "signature":
			sig = v
		}
	}
	return exp, sig
}
