package media

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rivo/uniseg"

	cs "github.com/countersign/countersign"
)

// MaxPerPost is the most images a post may carry on any network.
const MaxPerPost = 4

// MaxAltBytes bounds an alt text in UTF-8 bytes on every network: the
// networks count graphemes, and one grapheme may carry any number of
// combining marks; alt texts travel in the post's workflow history.
const MaxAltBytes = 8000

// NetworkLimit is what a network accepts as a post's images
// (docs/limits.md, "Images per network", with the sources).
type NetworkLimit struct {
	MaxCount int
	// MaxBytes per image, and MaxGIFBytes for a GIF where it differs.
	MaxBytes, MaxGIFBytes int64
	// MaxPixels per image (0: only the upload's own limit).
	MaxPixels int64
	Formats   []string
	// MaxAlt is the longest alt text, in graphemes.
	MaxAlt int
	// GIFAlone: a GIF must be the post's only image.
	GIFAlone bool
}

var allFormats = []string{JPEG, PNG, GIF, WebP}

// Limits are the networks' image limits. webhook and log take what any
// upload may be, four at most.
var Limits = map[cs.Network]NetworkLimit{
	// docs.joinmastodon.org (API, instance configuration): 4 attachments,
	// image_size_limit 16 MB, image_matrix_limit 33,177,600 pixels,
	// description up to 1,500 characters.
	cs.NetworkMastodon: {MaxCount: 4, MaxBytes: 16 << 20, MaxPixels: 33_177_600, Formats: allFormats, MaxAlt: 1500},
	// app.bsky.embed.images lexicon: 4 images, blobs of at most 1,000,000
	// bytes (the lexicon now says 2 MB; PDSes that still hold 1 MB would
	// refuse more), image/*; the Bluesky app's alt texts go to 2,000.
	cs.NetworkBluesky: {MaxCount: 4, MaxBytes: 1_000_000, Formats: allFormats, MaxAlt: 2000},
	// docs.x.com media upload: 4 photos (5 MB; JPEG, PNG, WebP) or one
	// animated GIF (15 MB); alt_text up to 1,000 characters.
	cs.NetworkX:       {MaxCount: 4, MaxBytes: 5 << 20, MaxGIFBytes: 15 << 20, Formats: allFormats, MaxAlt: 1000, GIFAlone: true},
	cs.NetworkWebhook: {MaxCount: MaxPerPost, MaxBytes: MaxBytes, Formats: allFormats, MaxAlt: 1500},
	cs.NetworkLog:     {MaxCount: MaxPerPost, MaxBytes: MaxBytes, Formats: allFormats, MaxAlt: 1500},
}

// CheckPost checks a post's images (refs as sent, media as stored, same
// order) against the network's limits; the error is a 422 naming each image
// (by position and id) and the limit it breaks.
func CheckPost(n cs.Network, refs []cs.PostMedia, media []cs.Media) error {
	lim, ok := Limits[n]
	if !ok {
		lim = Limits[cs.NetworkLog]
	}
	var fields []cs.FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, cs.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if len(refs) > lim.MaxCount {
		add("media", "%d images; %s allows at most %d per post", len(refs), n, lim.MaxCount)
	}
	gifs := 0
	for i, m := range media {
		f := fmt.Sprintf("media[%d]", i)
		name := fmt.Sprintf("image %d (%s)", i+1, m.ID)
		if !slices.Contains(lim.Formats, m.ContentType) {
			add(f, "%s is %s; %s accepts %s", name, m.ContentType, n, strings.Join(lim.Formats, ", "))
		}
		max := lim.MaxBytes
		if m.ContentType == GIF {
			gifs++
			if lim.MaxGIFBytes > 0 {
				max = lim.MaxGIFBytes
			}
		}
		if m.Bytes > max {
			add(f, "%s is %d bytes; %s allows at most %d per image", name, m.Bytes, n, max)
		}
		if px := int64(m.Width) * int64(m.Height); lim.MaxPixels > 0 && px > lim.MaxPixels {
			add(f, "%s is %d×%d pixels; %s allows at most %d pixels", name, m.Width, m.Height, n, lim.MaxPixels)
		}
		alt := refs[i].Alt
		if c := uniseg.GraphemeClusterCount(alt); c > lim.MaxAlt {
			add(f+".alt", "the alt text of %s is %d characters; %s allows at most %d", name, c, n, lim.MaxAlt)
		} else if len(alt) > MaxAltBytes {
			add(f+".alt", "the alt text of %s is %d bytes; at most %d are allowed", name, len(alt), MaxAltBytes)
		}
	}
	if lim.GIFAlone && gifs > 0 && len(refs) > 1 {
		add("media", "%s takes an animated GIF only as a post's single image", n)
	}
	if len(fields) == 0 {
		return nil
	}
	msg := fields[0].Message
	if len(fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(fields)-1)
	}
	return &cs.Error{Code: CodeNetworkRule, Message: "the images do not fit " + string(n) + ": " + msg, Fields: fields}
}
