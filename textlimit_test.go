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
		{NetworkBluesky, strings.Repeat(family, 300), true, ""},
		{NetworkBluesky, strings.Repeat(family, 301), false, "is 301 graphemes"},
		{NetworkWebhook, strings.Repeat("x", 10000), true, ""},
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
