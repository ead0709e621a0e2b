// Package media holds uploaded images: what an upload may be (format from
// the bytes, size, dimensions), the networks' limits on a post's images,
// the service that stores them (database row + blob store) and opens them
// for publishing (countersign.MediaSource), the sweep of uploads never
// attached to a post, and the signed, expiring URLs that Slack and webhook
// receivers fetch images through.
package media

import (
	"bytes"
	"fmt"
	"image"
	_ "image/gif"  // registers GIF for image.DecodeConfig
	_ "image/jpeg" // JPEG
	_ "image/png"  // PNG

	_ "golang.org/x/image/webp" // WebP

	cs "github.com/countersign/countersign"
)

// Limits of an upload, whatever the network (docs/limits.md).
const (
	// MaxBytes is the largest upload: 10 MB.
	MaxBytes = 10 << 20
	// MaxSide and MaxPixels bound the decoded size: a small file may
	// declare a huge image (a decompression bomb) that any network, and
	// any viewer, would have to expand in memory.
	MaxSide   = 16384
	MaxPixels = 40_000_000
)

// Error codes of uploads (server/problem.go maps them to statuses).
const (
	CodeTooLarge    = "media_too_large"     // over MaxBytes: 413
	CodeUnsupported = "unsupported_image"   // not JPEG, PNG, GIF or WebP: 415
	CodeDimensions  = "image_too_large"     // over MaxSide or MaxPixels: 422
	CodeCorrupt     = "invalid_image"       // the header does not decode: 422
	CodeNetworkRule = "media_network_limit" // a post's images break its network's limits: 422
)

// Content types of the formats Countersign accepts.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
	GIF  = "image/gif"
	WebP = "image/webp"
)

// Info is what the bytes say an image is.
type Info struct {
	ContentType   string
	Width, Height int
}

// Sniff names the format from the first bytes (magic numbers), never from
// a file name or a declared type; "" when it is none of the four.
func Sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return WebP
	}
	return ""
}

// Inspect checks an upload: its size, its format from the bytes, and its
// dimensions from its header (image.DecodeConfig: nothing is decompressed,
// so a bomb costs nothing to refuse).
func Inspect(b []byte) (Info, error) {
	if len(b) > MaxBytes {
		return Info{}, &cs.Error{Code: CodeTooLarge, Message: fmt.Sprintf("the file is over %d bytes (10 MB), the largest upload", MaxBytes),
			Fields: []cs.FieldError{{Field: "file", Message: fmt.Sprintf("at most %d bytes (10 MB)", MaxBytes)}}}
	}
	if len(b) == 0 {
		return Info{}, &cs.Error{Code: cs.EINVALID, Message: "the file is empty", Fields: []cs.FieldError{{Field: "file", Message: "is empty"}}}
	}
	ct := Sniff(b)
	if ct == "" {
		return Info{}, &cs.Error{Code: CodeUnsupported, Message: "the file is not a JPEG, PNG, GIF or WebP image (its format is read from its bytes, not its name or declared type)",
			Fields: []cs.FieldError{{Field: "file", Message: "must be a JPEG, PNG, GIF or WebP image"}}}
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || "image/"+format != ct {
		return Info{}, &cs.Error{Code: CodeCorrupt, Message: "the image's header does not decode as " + ct,
			Fields: []cs.FieldError{{Field: "file", Message: "is not a readable " + ct}}}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxSide || cfg.Height > MaxSide || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		msg := fmt.Sprintf("the image is %d×%d pixels; at most %d pixels a side and %d pixels in all (40 megapixels) are allowed",
			cfg.Width, cfg.Height, MaxSide, MaxPixels)
		return Info{}, &cs.Error{Code: CodeDimensions, Message: msg, Fields: []cs.FieldError{{Field: "file", Message: msg}}}
	}
	return Info{ContentType: ct, Width: cfg.Width, Height: cfg.Height}, nil
}
