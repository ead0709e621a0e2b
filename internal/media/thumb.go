package media

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// Thumbnails: what a post's images show at first (the API's thumbnail_url,
// Slack's image blocks, the review page).
const (
	// ThumbSide is a thumbnail's longer side at most; smaller images keep
	// their size (never upscaled).
	ThumbSide = 400
	// MaxThumbDecodes bounds the images decoded at once in a process: a
	// 40-megapixel image decodes to up to 320 MB (16-bit RGBA).
	MaxThumbDecodes = 2
	thumbQuality    = 85
)

// thumbSlots is the process's semaphore of decodes.
var thumbSlots = make(chan struct{}, MaxThumbDecodes)

// decodeHook, when set (tests), runs while a decode slot is held.
var decodeHook func()

// ThumbKey is where an upload's thumbnail lives, beside its bytes.
func ThumbKey(blobKey string) string { return blobKey + ".thumb" }

// Thumbnail makes the thumbnail of an upload: at most ThumbSide pixels on
// its longer side, aspect kept, the first frame of a GIF; PNG when the
// image has transparency, JPEG otherwise. It decodes only what Inspect
// accepts (size, format, dimensions: no bomb), one of MaxThumbDecodes at a
// time, waiting for a slot as long as ctx allows. It returns the bytes and
// their content type.
func Thumbnail(ctx context.Context, data []byte) ([]byte, string, error) {
	if _, err := Inspect(data); err != nil {
		return nil, "", err
	}
	select {
	case thumbSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	defer func() { <-thumbSlots }()
	if decodeHook != nil {
		decodeHook()
	}
	src, _, err := image.Decode(bytes.NewReader(data)) // GIF: the first frame
	if err != nil {
		return nil, "", fmt.Errorf("decode for the thumbnail: %w", err)
	}
	w, h := thumbSize(src.Bounds().Dx(), src.Bounds().Dy())
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)

	var out bytes.Buffer
	if dst.Opaque() {
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: thumbQuality})
		return out.Bytes(), JPEG, err
	}
	err = png.Encode(&out, dst)
	return out.Bytes(), PNG, err
}

// thumbSize fits w×h within ThumbSide×ThumbSide, aspect kept, never larger
// than w×h and never below 1 pixel a side.
func thumbSize(w, h int) (int, int) {
	long := max(w, h)
	if long <= ThumbSide {
		return w, h
	}
	tw := max(1, (w*ThumbSide+long/2)/long)
	th := max(1, (h*ThumbSide+long/2)/long)
	return tw, th
}
