package e2e

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // the thumbnails
	"net/url"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media/mediatest"
)

// TestSlackShowsImages: an approval request shows each image as a Block Kit
// image block with its alt text, through a signed URL that the API serves
// without a token (as Slack fetches it), and that stops working once
// tampered with.
func TestSlackShowsImages(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()
	ines := s.members["Ines"].token
	img := mediatest.PNG(1000, 500)
	var m cs.Media
	if code := s.upload(ines, s.orgID, "leaf.png", "image/png", img, &m); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	var p cs.Post
	s.must(201, ines, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Autumn",
		"media": []map[string]string{{"id": m.ID, "alt": "A red maple leaf"}}}, &p)
	msg := s.request("DMAYA", 1, 1)

	var imageURL string
	for _, b := range msg.Blocks {
		if b["type"] != "image" {
			continue
		}
		if b["alt_text"] != "A red maple leaf" {
			t.Fatalf("image block alt_text %v", b["alt_text"])
		}
		title, _ := b["title"].(map[string]any)
		if title == nil || !strings.Contains(title["text"].(string), "A red maple leaf") {
			t.Fatalf("image block title %v", b["title"])
		}
		imageURL, _ = b["image_url"].(string)
	}
	if imageURL == "" {
		t.Fatalf("no image block in the request: %v", msg.Blocks)
	}
	u, err := url.Parse(imageURL)
	if err != nil || u.Query().Get("signature") == "" || u.Query().Get("expires") == "" || u.Query().Get("size") != "thumbnail" ||
		!strings.HasSuffix(u.Path, "/v1/orgs/"+s.orgID+"/media/"+m.ID) {
		t.Fatalf("image URL %s is not a signed thumbnail URL", imageURL)
	}
	// Slack fetches it without any token (here from the test's listener):
	// the 1000×500 image's 400×200 thumbnail.
	local := s.api.URL + u.Path + "?" + u.RawQuery
	resp, body := s.fetch("", local)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
	if resp.StatusCode != 200 || err != nil || cfg.Width != 400 || cfg.Height != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("fetching the image block's URL: %d %s, %dx%d (%v)", resp.StatusCode, resp.Header.Get("Content-Type"), cfg.Width, cfg.Height, err)
	}
	if resp, _ := s.fetch("", strings.Replace(local, "signature=", "signature=x", 1)); resp.StatusCode != 403 {
		t.Fatalf("a tampered URL: %d, want 403", resp.StatusCode)
	}

	// Slack cannot download the image (the public URL is not reachable from
	// Slack): the request still goes, with the alt text in words.
	s.slack.RefuseImageBlocks()
	var p2 cs.Post
	s.must(201, ines, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Winter",
		"media": []map[string]string{{"id": m.ID, "alt": "Snow on a pine"}}}, &p2)
	var second bool
	s.slack.Eventually("sent the second request without its image block", func() bool {
		for _, msg := range s.slack.Messages() {
			if msg.Channel != "DMAYA" || !msg.Request || !strings.Contains(fmt.Sprint(msg.Blocks), "Winter") {
				continue
			}
			second = strings.Contains(fmt.Sprint(msg.Blocks), "Snow on a pine") && !strings.Contains(fmt.Sprint(msg.Blocks), "image_url")
			return true
		}
		return false
	})
	if !second {
		t.Fatal("the request sent after Slack refused the image shows no alt text, or still an image block")
	}
}
