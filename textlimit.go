package countersign

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// TextLimit is how a network counts a post's text and how much it allows.
type TextLimit struct {
	Max  int
	Unit string // what Count counts, for error messages
	// Count measures text the network's way.
	Count func(text string) int
}

// urlPattern finds the links X and Mastodon count as a fixed 23 characters.
var urlPattern = regexp.MustCompile(`https?://[^\s]+`)

// countWithURLsAs23 counts characters (code points) with every URL as 23.
func countWithURLsAs23(text string) int {
	n, prev := 0, 0
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		n += utf8.RuneCountInString(text[prev:loc[0]]) + 23
		prev = loc[1]
	}
	return n + utf8.RuneCountInString(text[prev:])
}

// TextLimits are the networks' limits (SPEC §2).
var TextLimits = map[Network]TextLimit{
	NetworkX:        {Max: 280, Unit: "characters (URLs count as 23)", Count: countWithURLsAs23},
	NetworkMastodon: {Max: 500, Unit: "characters (URLs count as 23)", Count: countWithURLsAs23},
	NetworkBluesky:  {Max: 300, Unit: "graphemes", Count: uniseg.GraphemeClusterCount},
}

// CheckText returns a 422-ready error when text is empty or over the
// network's limit, naming the count and the limit.
func CheckText(n Network, text string) error {
	if text == "" {
		return &Error{Code: EINVALID, Message: "the post has no text", Fields: []FieldError{{Field: "text", Message: "is required"}}}
	}
	lim, ok := TextLimits[n]
	if !ok {
		return nil
	}
	if c := lim.Count(text); c > lim.Max {
		msg := fmt.Sprintf("is %d %s; %s allows %d", c, lim.Unit, n, lim.Max)
		return &Error{Code: EINVALID, Message: "the text is too long for " + string(n) + ": " + msg,
			Fields: []FieldError{{Field: "text", Message: msg}}}
	}
	return nil
}
