package publish

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/rivo/uniseg"

	cs "github.com/countersign/countersign"
)

// Bluesky is the `bluesky` network: com.atproto.server.createSession with
// the account's identifier and app password at its PDS (pds_url, default
// https://bsky.social), then com.atproto.repo.createRecord of an
// app.bsky.feed.post under a record key (a TID) chosen once per revision and
// kept in the publication row. A repository holds one record per key, so
// the key makes creation idempotent: on any doubt, getRecord on that key
// says whether the post exists, and creating it again cannot make a second
// one. Links and #hashtags in the text become facets; images are uploaded
// with com.atproto.repo.uploadBlob (each blob recorded before the record is
// created) and embedded as app.bsky.embed.images with their alt text and
// aspect ratio; media URLs are published as links in the text.
type Bluesky struct {
	Client *http.Client
	Now    func() time.Time // for tests; time.Now when nil
}

// DefaultPDS is where Bluesky accounts live unless pds_url says otherwise.
const DefaultPDS = cs.DefaultBlueskyPDS

const bskyPost = "app.bsky.feed.post"

type bskySession struct {
	DID       string `json:"did"`
	Handle    string `json:"handle"`
	AccessJwt string `json:"accessJwt"`
	Active    *bool  `json:"active"`
	Status    string `json:"status"`
	DIDDoc    struct {
		Service []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Endpoint string `json:"serviceEndpoint"`
		} `json:"service"`
	} `json:"didDoc"`
}

// service is the account's own PDS (from its DID document) when the login
// went through an entryway such as bsky.social, else where it logged in.
func (s bskySession) service(loggedIn string) string {
	for _, svc := range s.DIDDoc.Service {
		if (svc.ID == "#atproto_pds" || strings.HasSuffix(svc.ID, "#atproto_pds")) && svc.Type == "AtprotoPersonalDataServer" {
			if u, err := url.Parse(svc.Endpoint); err == nil && u.Scheme == "https" && u.Host != "" {
				return strings.TrimRight(svc.Endpoint, "/")
			}
		}
	}
	return loggedIn
}

func (b Bluesky) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Publish creates the post record (or finds the one an earlier attempt made).
func (b Bluesky) Publish(ctx context.Context, r Request) (Result, error) {
	pds, err := baseURL(r, "pds_url", DefaultPDS)
	if err != nil {
		return Result{}, err
	}
	ident, pw := strings.TrimSpace(r.Credentials["identifier"]), r.Credentials["app_password"]
	if ident == "" || pw == "" {
		return Result{}, Rejected("the bluesky account needs the identifier and app_password credentials")
	}
	rkey := r.IdemKey
	if !ValidTID(rkey) {
		return Result{}, Unknown("the publication's record key %q is not a TID; check the account's posts and publish again by hand", rkey)
	}
	sess, err := b.login(ctx, r, pds, ident, pw)
	if err != nil {
		return Result{}, err
	}
	svc := sess.service(pds)

	if r.Retry {
		found, res, err := b.lookup(ctx, r, svc, sess, rkey)
		switch {
		case err != nil:
			return Result{}, err
		case found:
			return res, nil
		}
	}

	refs, err := r.uploadImages(ctx, "bluesky", func(ctx context.Context, img Image, mb mediaBlob) (string, error) {
		return b.uploadBlob(ctx, r, svc, sess, img, mb)
	})
	if err != nil {
		return Result{}, err
	}
	rec := b.record(r)
	if len(refs) > 0 {
		embed, err := bskyImages(r.Images)
		if err != nil {
			return Result{}, err
		}
		rec["embed"] = embed
	}
	if err := r.startPosting(ctx); err != nil {
		return Result{}, err
	}
	record := map[string]any{
		"repo": sess.DID, "collection": bskyPost, "rkey": rkey,
		"record": rec,
	}
	body, _ := json.Marshal(record)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+sess.AccessJwt)
	h.Set("Content-Type", "application/json")
	ex := call(ctx, b.Client, http.MethodPost, svc+"/xrpc/com.atproto.repo.createRecord", h, body)
	if ex.Status == 0 {
		r.Note("createRecord %s/%s: no answer, request sent=%v: %v", bskyPost, rkey, ex.Sent, ex.Err)
		if !ex.Sent {
			return Result{}, NotPosted("bluesky could not be reached: %v", ex.Err)
		}
		return b.settle(ctx, r, svc, sess, rkey, "bluesky did not answer createRecord: "+ex.Err.Error())
	}
	r.Note("createRecord %s/%s: %s", bskyPost, rkey, ex.describe())
	xerr := xrpcError(ex.Body)
	switch {
	case ex.Status/100 == 2:
		var out struct {
			URI string `json:"uri"`
		}
		if ex.Err != nil || json.Unmarshal(ex.Body, &out) != nil || out.URI == "" {
			return b.settle(ctx, r, svc, sess, rkey, "bluesky accepted the record but its answer could not be read")
		}
		return bskyResult(sess, out.URI, rkey), nil
	case duplicateKey(ex.Status, xerr, ex.Body):
		// The key is taken: an earlier attempt created the record.
		return b.settle(ctx, r, svc, sess, rkey, "bluesky says the record key is taken: "+ex.describe())
	case ex.Status == http.StatusTooManyRequests:
		return Result{}, RetryAfter(retryDelay(ex.Header, b.now()), NotPosted("bluesky rate limit: %s", ex.describe()))
	case xerr == "ExpiredToken" || xerr == "InvalidToken" || ex.Status == http.StatusUnauthorized:
		return Result{}, NotPosted("bluesky refused the fresh session: %s", ex.describe())
	case ex.Status >= 500 || ex.Status == http.StatusRequestTimeout:
		return b.settle(ctx, r, svc, sess, rkey, "bluesky answered createRecord with "+ex.describe())
	default:
		return Result{}, Rejected("bluesky refused the post: %s", ex.describe())
	}
}

// settle looks the record up after createRecord left a doubt: found is
// published; not found (or no answer) is retried, in doubt, with the same
// record key.
func (b Bluesky) settle(ctx context.Context, r Request, svc string, sess bskySession, rkey, why string) (Result, error) {
	// The attempt's context may be what ended; the look-up gets its own time.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	found, res, err := b.lookup(lctx, r, svc, sess, rkey)
	switch {
	case err != nil:
		return Result{}, Doubtful("%s; %v", why, err)
	case found:
		return res, nil
	}
	return Result{}, Doubtful("%s; the record is not there (yet): the next attempt looks again, then creates it under the same key", why)
}

// lookup asks the PDS for the record: found, not found, or an error (the
// doubt stays).
func (b Bluesky) lookup(ctx context.Context, r Request, svc string, sess bskySession, rkey string) (bool, Result, error) {
	q := url.Values{"repo": {sess.DID}, "collection": {bskyPost}, "rkey": {rkey}}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+sess.AccessJwt)
	h.Set("Accept", "application/json")
	ex := call(ctx, b.Client, http.MethodGet, svc+"/xrpc/com.atproto.repo.getRecord?"+q.Encode(), h, nil)
	if ex.Status == 0 {
		r.Note("getRecord %s/%s: no answer: %v", bskyPost, rkey, ex.Err)
		return false, Result{}, Doubtful("could not look the record up on bluesky: %v", ex.Err)
	}
	r.Note("getRecord %s/%s: %s", bskyPost, rkey, ex.describe())
	switch xerr := xrpcError(ex.Body); {
	case ex.Status == http.StatusOK:
		var out struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(ex.Body, &out) != nil || out.URI == "" {
			return false, Result{}, Doubtful("bluesky's getRecord answer could not be read")
		}
		r.Note("the record exists: the post was published by an earlier attempt")
		return true, bskyResult(sess, out.URI, rkey), nil
	case xerr == "RecordNotFound" || ex.Status == http.StatusNotFound:
		return false, Result{}, nil
	case ex.Status == http.StatusTooManyRequests:
		return false, Result{}, RetryAfter(retryDelay(ex.Header, b.now()), Doubtful("bluesky rate limit while looking the record up: %s", ex.describe()))
	default:
		return false, Result{}, Doubtful("could not look the record up on bluesky: %s", ex.describe())
	}
}

// login opens a session with the app password.
func (b Bluesky) login(ctx context.Context, r Request, pds, ident, pw string) (bskySession, error) {
	body, _ := json.Marshal(map[string]string{"identifier": ident, "password": pw})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	ex := call(ctx, b.Client, http.MethodPost, pds+"/xrpc/com.atproto.server.createSession", h, body)
	if ex.Status == 0 {
		r.Note("createSession at %s: no answer: %v", pds, ex.Err)
		return bskySession{}, notPostedOrDoubt(r, "could not log in to bluesky at %s: %v", pds, ex.Err)
	}
	r.Note("createSession at %s: %s", pds, ex.describe())
	var sess bskySession
	switch xerr := xrpcError(ex.Body); {
	case ex.Status == http.StatusOK:
		if ex.Err != nil || json.Unmarshal(ex.Body, &sess) != nil || sess.DID == "" || sess.AccessJwt == "" {
			return sess, notPostedOrDoubt(r, "bluesky's createSession answer could not be read")
		}
		if sess.Active != nil && !*sess.Active {
			return sess, Rejected("the bluesky account %s is not active (%s)", oneLine(sess.Handle, 64), oneLine(sess.Status, 64))
		}
		return sess, nil
	case ex.Status == http.StatusTooManyRequests:
		return sess, RetryAfter(retryDelay(ex.Header, b.now()), notPostedOrDoubt(r, "bluesky login rate limit: %s", ex.describe()))
	case xerr == "AuthFactorTokenRequired":
		return sess, Rejected("bluesky asks for an e-mail sign-in code: use an app password (Settings → Privacy and security → App passwords) as app_password")
	case ex.Status == http.StatusUnauthorized || ex.Status == http.StatusForbidden || xerr == "AccountTakedown" || xerr == "AuthenticationRequired":
		return sess, Rejected("bluesky refused the login with the account's identifier and app_password (revoked or wrong?): %s", ex.describe())
	case ex.Status >= 500:
		return sess, notPostedOrDoubt(r, "bluesky login failed: %s", ex.describe())
	default:
		return sess, Rejected("bluesky refused the login: %s", ex.describe())
	}
}

// record is the app.bsky.feed.post to create. createdAt is the first
// attempt's time, so every attempt sends the same record.
func (b Bluesky) record(r Request) map[string]any {
	text := r.PublishedText()
	at := r.FirstAttempt
	if at.IsZero() {
		at = b.now()
	}
	rec := map[string]any{
		"$type":     bskyPost,
		"text":      text,
		"createdAt": at.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if f := bskyFacets(text); len(f) > 0 {
		rec["facets"] = f
	}
	return rec
}

// bskyHandle and bskyDID are what may stand in a bsky.app link: the PDS's
// answer is not trusted to be either.
var (
	bskyHandle = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$`)
	bskyDID    = regexp.MustCompile(`^did:[a-z]+:[a-zA-Z0-9._:%-]{1,200}$`)
)

func bskyResult(sess bskySession, uri, rkey string) Result {
	who := sess.Handle
	if who == "" || who == "handle.invalid" || len(who) > 253 || !bskyHandle.MatchString(who) {
		who = sess.DID
	}
	if !bskyHandle.MatchString(who) && !bskyDID.MatchString(who) {
		return Result{ExternalID: uri}
	}
	return Result{ExternalID: uri, ExternalURL: "https://bsky.app/profile/" + url.PathEscape(who) + "/post/" + rkey}
}

// xrpcError is the "error" name of an XRPC error answer.
func xrpcError(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// duplicateKey recognizes createRecord's answer when the record key is
// taken. Today's PDS answers 500 InternalServerError (the 5xx path looks the
// record up as well); newer ones name the error.
func duplicateKey(status int, xerr string, body []byte) bool {
	if status/100 == 2 {
		return false
	}
	if xerr == "RecordAlreadyExists" || xerr == "DuplicateRecord" {
		return true
	}
	return strings.Contains(strings.ToLower(networkMessage(body)), "already exists")
}

var hashtag = regexp.MustCompile(`(?:^|\s)([#＃][^\s]+)`)

// bskyFacets makes links and hashtags of the text clickable: Bluesky
// renders neither without a facet (byte offsets into the UTF-8 text).
func bskyFacets(text string) []map[string]any {
	var facets []map[string]any
	spans := cs.URLSpans(text)
	for _, s := range spans {
		facets = append(facets, map[string]any{
			"index":    map[string]int{"byteStart": s[0], "byteEnd": s[1]},
			"features": []map[string]string{{"$type": "app.bsky.richtext.facet#link", "uri": text[s[0]:s[1]]}},
		})
	}
	for _, m := range hashtag.FindAllStringSubmatchIndex(text, -1) {
		start, end := m[2], m[3]
		tag := strings.TrimRightFunc(text[start:end], unicode.IsPunct)
		// The # is one or three bytes (＃).
		name := strings.TrimLeft(tag, "#＃")
		end = start + len(tag)
		if name == "" || strings.TrimFunc(name, unicode.IsDigit) == "" || uniseg.GraphemeClusterCount(name) > 64 {
			continue
		}
		inLink := false
		for _, s := range spans {
			if start < s[1] && end > s[0] {
				inLink = true
			}
		}
		if inLink {
			continue
		}
		facets = append(facets, map[string]any{
			"index":    map[string]int{"byteStart": start, "byteEnd": end},
			"features": []map[string]string{{"$type": "app.bsky.richtext.facet#tag", "tag": name}},
		})
	}
	return facets
}

// tidAlphabet is base32-sortable, the alphabet of AT Protocol TIDs.
const tidAlphabet = "234567abcdefghijklmnopqrstuvwxyz"

// NewTID returns an AT Protocol timestamp identifier for t: 53 bits of
// microseconds since the Unix epoch and 10 random bits of "clock id", in 13
// base32-sortable characters.
func NewTID(t time.Time) string {
	v := (uint64(t.UnixMicro())&(1<<53-1))<<10 | uint64(rand.IntN(1024))
	var b [13]byte
	for i := 12; i >= 0; i-- {
		b[i] = tidAlphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

var tidPattern = regexp.MustCompile(`^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$`)

// ValidTID reports whether s is a syntactically valid TID.
func ValidTID(s string) bool { return tidPattern.MatchString(s) }

// bskyBlobRef is what is recorded for an uploaded image: the blob as the PDS
// described it, and the image's size for the embed's aspect ratio.
type bskyBlobRef struct {
	Blob   json.RawMessage `json:"blob"`
	Width  int             `json:"w,omitempty"`
	Height int             `json:"h,omitempty"`
}

// maxBlobRef bounds the blob description kept from a PDS's answer.
const maxBlobRef = 1024

// uploadBlob sends one image's bytes to com.atproto.repo.uploadBlob. A blob
// is named by its content (a CID), so uploading the same bytes again names
// the same blob.
func (b Bluesky) uploadBlob(ctx context.Context, r Request, svc string, sess bskySession, img Image, mb mediaBlob) (string, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+sess.AccessJwt)
	h.Set("Content-Type", mb.ContentType)
	ex := call(ctx, b.Client, http.MethodPost, svc+"/xrpc/com.atproto.repo.uploadBlob", h, mb.Data)
	n := img.Position + 1
	if ex.Status == 0 {
		r.Note("uploadBlob (image %d): no answer, request sent=%v: %v", n, ex.Sent, ex.Err)
		return "", NotPosted("could not upload image %d to bluesky: %v", n, ex.Err)
	}
	r.Note("uploadBlob (image %d): %s", n, ex.describe())
	switch xerr := xrpcError(ex.Body); {
	case ex.Status == http.StatusOK:
		var out struct {
			Blob json.RawMessage `json:"blob"`
		}
		var blob struct {
			Type string `json:"$type"`
			Ref  struct {
				Link string `json:"$link"`
			} `json:"ref"`
			MimeType string `json:"mimeType"`
		}
		if ex.Err != nil || json.Unmarshal(ex.Body, &out) != nil || len(out.Blob) > maxBlobRef ||
			json.Unmarshal(out.Blob, &blob) != nil || blob.Type != "blob" || blob.Ref.Link == "" || !strings.HasPrefix(blob.MimeType, "image/") {
			return "", NotPosted("bluesky accepted image %d but its answer is not a blob", n)
		}
		ref, _ := json.Marshal(bskyBlobRef{Blob: out.Blob, Width: mb.Width, Height: mb.Height})
		return string(ref), nil
	case ex.Status == http.StatusTooManyRequests:
		return "", RetryAfter(retryDelay(ex.Header, b.now()), NotPosted("bluesky rate limit on blob uploads: %s", ex.describe()))
	case xerr == "ExpiredToken" || xerr == "InvalidToken" || ex.Status == http.StatusUnauthorized:
		return "", NotPosted("bluesky refused the fresh session for the upload: %s", ex.describe())
	case ex.Status >= 500 || ex.Status == http.StatusRequestTimeout:
		return "", NotPosted("bluesky answered the upload of image %d with %s", n, ex.describe())
	default:
		return "", Rejected("bluesky refused image %d: %s", n, ex.describe())
	}
}

// bskyImages is the app.bsky.embed.images embed of the recorded blobs.
func bskyImages(imgs []Image) (map[string]any, error) {
	var list []map[string]any
	for _, img := range imgs {
		var ref bskyBlobRef
		if json.Unmarshal([]byte(img.Ref), &ref) != nil || len(ref.Blob) == 0 {
			return nil, Unknown("the blob recorded for image %d cannot be read; check the account before publishing by hand", img.Position+1)
		}
		one := map[string]any{"alt": img.Alt, "image": ref.Blob}
		if ref.Width > 0 && ref.Height > 0 {
			one["aspectRatio"] = map[string]int{"width": ref.Width, "height": ref.Height}
		}
		list = append(list, one)
	}
	return map[string]any{"$type": "app.bsky.embed.images", "images": list}, nil
}
