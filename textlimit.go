package countersign

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"golang.org/x/text/unicode/norm"
)

// TextLimit is how a network counts a post's text and how much it allows.
type TextLimit struct {
	Max  int
	Unit string // what Count counts, for error messages
	// Count measures text the network's way.
	Count func(text string) int
	// MaxBytes, when set, is a second limit on the UTF-8 length (Bluesky).
	MaxBytes int
}

// urlPattern finds the links X and Mastodon count as a fixed 23 characters.
var urlPattern = regexp.MustCompile(`https?://[^\s]+`)

// URLSpans returns the byte ranges [start, end) of the http(s) links in text,
// without the trailing punctuation a sentence puts after a link ("see
// https://acme.test/a." links to https://acme.test/a). The networks count,
// shorten and link these.
func URLSpans(text string) [][2]int {
	var spans [][2]int
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		end := loc[1]
		for end > loc[0] {
			r, size := utf8.DecodeLastRuneInString(text[loc[0]:end])
			if !strings.ContainsRune(".,;:!?'\")]}>", r) {
				break
			}
			// A closing parenthesis that closes one inside the URL stays.
			if r == ')' && strings.Count(text[loc[0]:end], "(") >= strings.Count(text[loc[0]:end], ")") {
				break
			}
			end -= size
		}
		if end-loc[0] > len("https://") {
			spans = append(spans, [2]int{loc[0], end})
		}
	}
	return spans
}

// urlPlaceholder stands for a link in what is counted: 23 characters.
var urlPlaceholder = strings.Repeat("x", 23)

// withURLsAs23 replaces every link in text with 23 characters.
func withURLsAs23(text string) string {
	var b strings.Builder
	prev := 0
	for _, s := range URLSpans(text) {
		b.WriteString(text[prev:s[0]])
		b.WriteString(urlPlaceholder)
		prev = s[1]
	}
	b.WriteString(text[prev:])
	return b.String()
}

// remoteMention is a Mastodon mention of a remote account: @user@domain,
// which Mastodon counts as @user.
var remoteMention = regexp.MustCompile(`(^|[^\w/@])(@[A-Za-z0-9_]+(?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?)@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+`)

// countMastodon counts as Mastodon does: grapheme clusters, with every link
// as 23 and remote mentions without their domain.
func countMastodon(text string) int {
	return uniseg.GraphemeClusterCount(remoteMention.ReplaceAllString(withURLsAs23(text), "$1$2"))
}

// countX counts as X does (twitter-text, version 3): text in NFC, links as
// 23, each emoji as 2, code points in the Latin and general punctuation
// ranges as 1 and every other code point (CJK, for example) as 2.
func countX(text string) int {
	n := 0
	g := uniseg.NewGraphemes(withURLsAs23(norm.NFC.String(text)))
	for g.Next() {
		runes := g.Runes()
		if isEmoji(runes) {
			n += 2
			continue
		}
		for _, r := range runes {
			n += xWeight(r)
		}
	}
	return n
}

func xWeight(r rune) int {
	switch {
	case r <= 0x10FF, r >= 0x2000 && r <= 0x200D, r >= 0x2010 && r <= 0x201F, r >= 0x2032 && r <= 0x2037:
		return 1
	}
	return 2
}

// isEmoji reports whether a grapheme cluster is an emoji (presentation
// selector, joiner sequence, keycap or a pictograph/flag code point).
func isEmoji(runes []rune) bool {
	for _, r := range runes {
		switch {
		case r == 0xFE0F, r == 0x200D, r == 0x20E3,
			r >= 0x1F000 && r <= 0x1FAFF, r >= 0x2600 && r <= 0x27BF:
			return true
		}
	}
	return false
}

// TextLimits are the networks' limits (SPEC §2).
var TextLimits = map[Network]TextLimit{
	NetworkX:        {Max: 280, Unit: "characters (URLs count as 23, emoji and CJK as 2)", Count: countX},
	NetworkMastodon: {Max: 500, Unit: "characters (URLs count as 23)", Count: countMastodon},
	NetworkBluesky:  {Max: 300, Unit: "graphemes", Count: uniseg.GraphemeClusterCount, MaxBytes: 3000},
}

// PublishedText is the text an adapter sends to a network: the post's text
// and then, after a blank line, its media URLs as links, one per line.
// Countersign does not upload media to the networks; the links show as
// previews where the network makes them.
func PublishedText(text string, mediaURLs []string) string {
	if len(mediaURLs) == 0 {
		return text
	}
	return strings.TrimRight(text, " \t\r\n") + "\n\n" + strings.Join(mediaURLs, "\n")
}

// MaxTextBytes bounds a post's text on every network, in UTF-8 bytes (SPEC
// §8 Limits: 64 KiB). It is the whole limit of webhook and log accounts, and
// a backstop for the others, whose own counts let a single grapheme carry any
// number of combining marks: the text travels in the post's workflow history
// several times, and must stay well under Temporal's 2 MB per payload
// (docs/limits.md).
const MaxTextBytes = 64 << 10

// CheckText returns a 422-ready error when text is empty or over the
// network's limit, naming the count and the limit.
func CheckText(n Network, text string) error {
	return CheckPost(n, text, nil)
}

// CheckPost is CheckText on the text as it will be published: the post's
// text with its media links (PublishedText).
func CheckPost(n Network, text string, mediaURLs []string) error {
	if text == "" {
		return &Error{Code: EINVALID, Message: "the post has no text", Fields: []FieldError{{Field: "text", Message: "is required"}}}
	}
	if len(text) > MaxTextBytes {
		msg := fmt.Sprintf("is %d bytes; at most %d (64 KiB) are allowed", len(text), MaxTextBytes)
		return &Error{Code: EINVALID, Message: "the text is too long: " + msg, Fields: []FieldError{{Field: "text", Message: msg}}}
	}
	lim, ok := TextLimits[n]
	if !ok {
		return nil
	}
	published := PublishedText(text, mediaURLs)
	with := ""
	if len(mediaURLs) > 0 {
		with = fmt.Sprintf(" with its %d media link(s)", len(mediaURLs))
	}
	var msg string
	if c := lim.Count(published); c > lim.Max {
		msg = fmt.Sprintf("is %d %s%s; %s allows %d", c, lim.Unit, with, n, lim.Max)
	} else if lim.MaxBytes > 0 && len(published) > lim.MaxBytes {
		msg = fmt.Sprintf("is %d bytes%s; %s allows %d", len(published), with, n, lim.MaxBytes)
	}
	if msg == "" {
		return nil
	}
	return &Error{Code: EINVALID, Message: "the text is too long for " + string(n) + ": " + msg,
		Fields: []FieldError{{Field: "text", Message: msg}}}
}
