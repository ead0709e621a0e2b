package countersign

import (
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	url := "https://example.com/" + strings.Repeat("a", 200) // one URL counts 23
	family := "👨‍👩‍👧‍👦"                                      // one grapheme, seven code points
	cases := []struct {
		network Network
		text    string
		ok      bool
		count   string
	}{
		{NetworkX, strings.Repeat("x", 280), true, ""},
		{NetworkX, strings.Repeat("x", 281), false, "is 281 characters"},
		{NetworkX, strings.Repeat("x", 257) + url, true, ""},        // 257 + 23 = 280
		{NetworkX, strings.Repeat("x", 258) + url, false, "is 281"}, // 258 + 23
		{NetworkMastodon, strings.Repeat("é", 500), true, ""},
		{NetworkMastodon, strings.Repeat("é", 501), false, "mastodon allows 500"},
		{NetworkBluesky, strings.Repeat("e\u0301", 300), true, ""}, // 300 graphemes, 600 code points
		{NetworkBluesky, strings.Repeat("e\u0301", 301), false, "is 301 graphemes"},
		{NetworkBluesky, strings.Repeat(family, 120), true, ""}, // 120 graphemes, 3000 bytes
		{NetworkBluesky, strings.Repeat(family, 121), false, "is 3025 bytes; bluesky allows 3000"},
		{NetworkBluesky, strings.Repeat("x", 277) + url, false, "is 497 graphemes"}, // links count whole
		// X (twitter-text v3): emoji 2, CJK 2, Latin 1, links 23, NFC first.
		{NetworkX, strings.Repeat(family, 140), true, ""},
		{NetworkX, strings.Repeat(family, 141), false, "is 282 characters"},
		{NetworkX, strings.Repeat("日", 140), true, ""},
		{NetworkX, strings.Repeat("日", 141), false, "is 282"},
		{NetworkX, strings.Repeat("e\u0301", 280), true, ""},       // é once composed
		{NetworkX, strings.Repeat("x", 256) + url + ".", true, ""}, // the period after a link counts
		{NetworkX, strings.Repeat("x", 257) + url + ".", false, "is 281"},
		// Mastodon: graphemes, links 23, remote mentions without their domain.
		{NetworkMastodon, strings.Repeat(family, 500), true, ""},
		{NetworkMastodon, strings.Repeat("x", 495) + " @ana@social.example.org", true, ""}, // 495 + 5
		{NetworkMastodon, strings.Repeat("x", 496) + " @ana@social.example.org", false, "is 501"},
		{NetworkWebhook, strings.Repeat("x", 10000), true, ""},
		// 64 KiB on webhook and log; and on every network, whatever it counts.
		{NetworkWebhook, strings.Repeat("x", 64<<10), true, ""},
		{NetworkWebhook, strings.Repeat("x", 64<<10+1), false, "is 65537 bytes; at most 65536"},
		{NetworkLog, strings.Repeat("é", 300<<10/2), false, "is 307200 bytes; at most 65536"},
		{NetworkMastodon, "e" + strings.Repeat("\u0301", 40000), false, "at most 65536"}, // one grapheme
		{NetworkLog, "", false, "required"},
	}
	for _, c := range cases {
		err := CheckText(c.network, c.text)
		if (err == nil) != c.ok {
			t.Errorf("%s, %d bytes: err = %v, want ok=%v", c.network, len(c.text), err, c.ok)
			continue
		}
		if err != nil {
			e := err.(*Error)
			if e.Code != EINVALID || len(e.Fields) != 1 || e.Fields[0].Field != "text" || !strings.Contains(e.Fields[0].Message, c.count) {
				t.Errorf("%s: %+v, want field text mentioning %q", c.network, e, c.count)
			}
		}
	}
}

// CheckPost counts the text as it is published: with its media links.
func TestCheckPostCountsMediaLinks(t *testing.T) {
	media := []string{"https://cdn.acme.test/a.png", "https://cdn.acme.test/" + strings.Repeat("b", 100) + ".png"}
	if got, want := PublishedText("Hello \n", media), "Hello\n\n"+media[0]+"\n"+media[1]; got != want {
		t.Fatalf("PublishedText = %q, want %q", got, want)
	}
	if PublishedText("Hello", nil) != "Hello" {
		t.Fatal("PublishedText without media changed the text")
	}
	// X: text + 2 (blank line) + 23 + 1 (newline) + 23 = text + 49.
	if err := CheckPost(NetworkX, strings.Repeat("x", 231), media); err != nil {
		t.Fatalf("231 + 49 = 280: %v", err)
	}
	err := CheckPost(NetworkX, strings.Repeat("x", 232), media)
	if err == nil || !strings.Contains(err.Error(), "is 281 characters") || !strings.Contains(err.Error(), "with its 2 media link(s)") {
		t.Fatalf("232 + 49: %v", err)
	}
	if err := CheckText(NetworkX, strings.Repeat("x", 232)); err != nil {
		t.Fatalf("without media: %v", err)
	}
}
