package media_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/media"
	"github.com/countersign/countersign/internal/media/mediatest"
)

func TestThumbnailSizes(t *testing.T) {
	for _, c := range []struct {
		name       string
		data       []byte
		w, h       int
		wantFormat string
	}{
		{"large png", mediatest.PNG(1600, 1200), 400, 300, media.JPEG},
		{"tall jpeg", mediatest.JPEG(900, 1800), 200, 400, media.JPEG},
		{"gif", mediatest.GIF(1000, 250), 400, 100, media.JPEG},
		{"webp", mediatest.SolidWebP(3000, 2000, 0xff, 10, 120, 200), 400, 267, media.JPEG},
		{"transparent webp", mediatest.SolidWebP(800, 800, 0x40, 10, 120, 200), 400, 400, media.PNG},
		{"small png is not upscaled", mediatest.PNG(120, 80), 120, 80, media.JPEG},
		{"one pixel high", mediatest.PNG(4000, 1), 400, 1, media.JPEG},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ct, err := media.Thumbnail(context.Background(), c.data)
			if err != nil {
				t.Fatal(err)
			}
			if ct != c.wantFormat || media.Sniff(out) != ct {
				t.Errorf("content type %s (bytes sniff as %s), want %s", ct, media.Sniff(out), c.wantFormat)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || cfg.Width != c.w || cfg.Height != c.h {
				t.Errorf("thumbnail %dx%d (%v), want %dx%d", cfg.Width, cfg.Height, err, c.w, c.h)
			}
		})
	}
}

// A transparent image's thumbnail is a PNG that keeps the transparency; an
// opaque one is a JPEG of the image's colors.
func TestThumbnailTransparency(t *testing.T) {
	out, ct, err := media.Thumbnail(context.Background(), mediatest.TransparentPNG(1000, 500))
	if err != nil || ct != media.PNG {
		t.Fatalf("transparent PNG: %s, %v; want a PNG thumbnail", ct, err)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 400 || b.Dy() != 200 {
		t.Fatalf("thumbnail %v", b)
	}
	if _, _, _, a := img.At(50, 100).RGBA(); a != 0 {
		t.Errorf("the transparent half has alpha %d, want 0", a)
	}
	if _, _, _, a := img.At(350, 100).RGBA(); a != 0xffff {
		t.Errorf("the opaque half has alpha %d, want opaque", a)
	}

	out, _, err = media.Thumbnail(context.Background(), mediatest.SolidWebP(900, 600, 0xff, 200, 30, 40))
	if err != nil {
		t.Fatal(err)
	}
	img, err = jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := img.At(10, 10).RGBA(); r>>8 < 190 || g>>8 > 45 || b>>8 > 55 {
		t.Errorf("the opaque WebP's thumbnail is %d,%d,%d, want about 200,30,40", r>>8, g>>8, b>>8)
	}
}

// What Inspect refuses is never decoded: a bomb costs nothing.
func TestThumbnailRefusesBombs(t *testing.T) {
	decoded := false
	defer media.SetDecodeHook(func() { decoded = true })()
	if _, _, err := media.Thumbnail(context.Background(), mediatest.PNGBomb(50000, 50000)); err == nil {
		t.Fatal("a 50000×50000 bomb made a thumbnail")
	}
	if decoded {
		t.Fatal("the bomb was decoded")
	}
}

// At most MaxThumbDecodes images decode at once, however many uploads
// arrive together; a waiting one gives up with its context.
func TestThumbnailConcurrency(t *testing.T) {
	var running, most atomic.Int32
	defer media.SetDecodeHook(func() {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		running.Add(-1)
	})()
	img := mediatest.PNG(50, 50)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := media.Thumbnail(context.Background(), img); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != media.MaxThumbDecodes {
		t.Fatalf("%d decodes ran at once, want at most (and, with 8 waiting, exactly) %d", m, media.MaxThumbDecodes)
	}

	// Both slots held: a request whose context ends stops waiting.
	hold := make(chan struct{})
	release := make(chan struct{})
	defer media.SetDecodeHook(func() { hold <- struct{}{}; <-release })()
	for range media.MaxThumbDecodes {
		go media.Thumbnail(context.Background(), img) //nolint:errcheck
		<-hold
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := media.Thumbnail(ctx, img); err != context.DeadlineExceeded {
		t.Errorf("waiting past its deadline: %v, want context.DeadlineExceeded", err)
	}
	close(release)
}
