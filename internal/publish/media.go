package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// MediaURLSigner returns a signed, expiring URL from which a webhook
// receiver downloads one of an org's images.
type MediaURLSigner func(orgID, mediaID string) string

// MaxMediaBytes bounds what is read of one image (uploads are at most 10 MB;
// the networks' own limits are checked at submission).
const MaxMediaBytes = 16 << 20

// MaxMedia is the most images a post carries (SPEC §2).
const MaxMedia = 4

// Image is one image of the revision during an attempt: what the workflow
// carries, and the network's reference once an attempt uploaded it.
type Image struct {
	cs.PostMedia
	Position int
	// Ref is the network's reference recorded by this or an earlier
	// attempt ("" while not uploaded): reused, never uploaded again.
	Ref string
}

// mediaAccess is how an attempt reads and records its images.
type mediaAccess struct {
	source cs.MediaSource
	sign   MediaURLSigner
	store  Store
}

// uploadsMedia says which networks receive the images' bytes: their first
// attempt starts in the uploading stage (see store.BeginPublication), and
// their adapters call startPosting before sending the post.
func uploadsMedia(n cs.Network) bool {
	return n == cs.NetworkMastodon || n == cs.NetworkBluesky || n == cs.NetworkX
}

// images returns the revision's images with the references earlier attempts
// recorded.
func (p *Publisher) images(ctx context.Context, req Request) ([]Image, error) {
	out := make([]Image, len(req.PublishRequest.Media))
	for i, m := range req.PublishRequest.Media {
		out[i] = Image{PostMedia: m, Position: i}
	}
	if len(out) == 0 {
		return nil, nil
	}
	recorded, err := p.Store.PublicationMedia(ctx, req.PostID, req.Revision)
	if err != nil {
		return nil, err
	}
	for _, rec := range recorded {
		if rec.Position >= len(out) || rec.MediaID != out[rec.Position].ID {
			return nil, Unknown("the media recorded for this revision (image %d, %s) are not the post's; check the account", rec.Position+1, rec.MediaID)
		}
		out[rec.Position].Ref = rec.NetworkRef
	}
	return out, nil
}

// mediaBlob is an image's description and bytes, checked.
type mediaBlob struct {
	cs.Media
	Data []byte
}

// sourceImage opens an image in the media store and checks its
// description: the org's own image, with the approved hash.
func (r Request) sourceImage(ctx context.Context, img Image) (cs.Media, io.ReadCloser, error) {
	if r.media == nil || r.media.source == nil {
		return cs.Media{}, nil, Rejected("image %d was not sent: this worker has no media store configured", img.Position+1)
	}
	m, rc, err := r.media.source.OpenMedia(ctx, r.OrgID, img.ID)
	if err != nil {
		if cs.ErrorCode(err) == cs.ENOTFOUND {
			return cs.Media{}, nil, Rejected("image %d (%s) is not in this organization's media store", img.Position+1, img.ID)
		}
		return cs.Media{}, nil, NotPosted("could not read image %d from the media store: %v", img.Position+1, err)
	}
	if err := checkImage(r, img, m); err != nil {
		_ = rc.Close()
		return cs.Media{}, nil, err
	}
	return m, rc, nil
}

// describeImage returns an image's checked description without its bytes.
func (r Request) describeImage(ctx context.Context, img Image) (cs.Media, error) {
	m, rc, err := r.sourceImage(ctx, img)
	if err == nil {
		_ = rc.Close()
	}
	return m, err
}

// openImage reads an image's bytes and checks them: within MaxMediaBytes,
// and the very bytes that were approved (the post's content hash covers
// their SHA-256).
func (r Request) openImage(ctx context.Context, img Image) (mediaBlob, error) {
	m, rc, err := r.sourceImage(ctx, img)
	if err != nil {
		return mediaBlob{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxMediaBytes+1))
	if err != nil {
		return mediaBlob{}, NotPosted("could not read image %d from the media store: %v", img.Position+1, err)
	}
	if len(data) > MaxMediaBytes {
		return mediaBlob{}, Rejected("image %d is larger than %d bytes", img.Position+1, MaxMediaBytes)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, approvedHash(img, m)) {
		return mediaBlob{}, Rejected("image %d (%s) was not sent: its bytes are not the ones approved (SHA-256 differs); upload it again and resubmit", img.Position+1, img.ID)
	}
	return mediaBlob{Media: m, Data: data}, nil
}

// approvedHash is the SHA-256 the revision was approved with: the one the
// workflow carries, or the upload's when the workflow carries none.
func approvedHash(img Image, m cs.Media) string {
	if img.SHA256 != "" {
		return img.SHA256
	}
	return m.SHA256
}

// checkImage refuses an image of another org, or whose recorded hash is not
// the approved one.
func checkImage(r Request, img Image, m cs.Media) error {
	if m.OrgID != r.OrgID || m.ID != img.ID {
		return Rejected("image %d (%s) is not an image of this organization", img.Position+1, img.ID)
	}
	if img.SHA256 != "" && !strings.EqualFold(m.SHA256, img.SHA256) {
		return Rejected("image %d (%s) was not sent: it is not the image that was approved (SHA-256 differs)", img.Position+1, img.ID)
	}
	if imageExt(m.ContentType) == "" { // it goes into request headers
		return Rejected("image %d (%s) is not a JPEG, PNG, GIF or WebP image", img.Position+1, img.ID)
	}
	return nil
}

// upload sends one image to the network and returns its reference there.
type upload func(ctx context.Context, img Image, b mediaBlob) (ref string, err error)

// uploadImages uploads every image that has no reference yet, recording each
// reference the moment the network gave it (before the post is created), and
// returns the references in order. An image an earlier attempt uploaded is
// reused. Errors here surely did not post: an uploaded image alone is not
// published (the network drops it unattached).
func (r Request) uploadImages(ctx context.Context, network string, send upload) ([]string, error) {
	refs := make([]string, len(r.Images))
	for i := range r.Images {
		img := &r.Images[i]
		if img.Ref != "" {
			r.Note("image %d (%s): reusing %s's %s from an earlier attempt", i+1, img.ID, network, shortRef(img.Ref))
			refs[i] = img.Ref
			continue
		}
		if r.Retry {
			// Never happens: the post is sent only once every image is
			// recorded. Refuse rather than guess.
			return nil, Unknown("an earlier attempt may have sent the post, yet image %d was never recorded as uploaded; check the account", i+1)
		}
		b, err := r.openImage(ctx, *img)
		if err != nil {
			return nil, err
		}
		ref, err := send(ctx, *img, b)
		if err != nil {
			return nil, err
		}
		kept, err := r.media.store.RecordPublicationMedia(ctx, r.PostID, r.Revision, store.PublishedMedia{
			Position: i, MediaID: img.ID, SHA256: approvedHash(*img, b.Media), NetworkRef: ref})
		if err != nil {
			// Uploaded but not recorded: the next attempt uploads it again
			// (an unattached upload is never shown).
			return nil, NotPosted("image %d was uploaded to %s but could not be recorded: %v", i+1, network, err)
		}
		img.Ref = kept.NetworkRef
		refs[i] = img.Ref
		r.Note("image %d (%s, %d bytes): uploaded to %s as %s", i+1, img.ID, len(b.Data), network, shortRef(img.Ref))
	}
	return refs, nil
}

// startPosting marks the end of the uploading stage: every image is
// recorded and the post is about to be sent.
func (r Request) startPosting(ctx context.Context) error {
	if len(r.Images) == 0 || r.media == nil {
		return nil
	}
	if err := r.media.store.StartPosting(ctx, r.PostID, r.Revision); err != nil {
		return NotPosted("could not record that the post is being sent: %v", err)
	}
	return nil
}

// shortRef is a network reference as shown in the evidence.
func shortRef(ref string) string { return oneLine(ref, 80) }

// multipartBody builds a multipart/form-data body: fields, then the image as
// a file part with its content type.
func multipartBody(fileField string, b mediaBlob, fields ...[2]string) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, fileField, "image"+imageExt(b.ContentType)))
	h.Set("Content-Type", b.ContentType)
	part, _ := w.CreatePart(h)
	_, _ = part.Write(b.Data)
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func imageExt(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	}
	return ""
}

// networkMediaID is what a network's media id may look like before it is put
// in a URL path or a request: a hostile or broken network must not steer
// the next call elsewhere.
var networkMediaID = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// Polling bounds the wait for a network to finish processing the uploaded
// images, all of them together, within one attempt (which has two minutes);
// a later attempt polls again (the uploads are recorded, never repeated).
var (
	PollInterval = time.Second
	PollFor      = 30 * time.Second
)

// errStillProcessing ends a poll that ran out of time.
var errStillProcessing = errors.New("still processing")

// pollDeadline is when an attempt stops waiting for processing.
func pollDeadline() time.Time { return time.Now().Add(PollFor) }

// poll calls check until it reports done, until deadline, waiting between
// calls (the network may ask for longer, up to 10 s).
func poll(ctx context.Context, deadline time.Time, check func() (done bool, wait time.Duration, err error)) error {
	for {
		done, wait, err := check()
		if err != nil || done {
			return err
		}
		if wait <= 0 {
			wait = PollInterval
		}
		wait = min(wait, 10*time.Second)
		if time.Now().Add(wait).After(deadline) {
			return errStillProcessing
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
