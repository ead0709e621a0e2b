// Package fakenet has fake Mastodon, Bluesky (PDS) and X servers for tests:
// they answer like the real networks (status codes, error bodies,
// Mastodon's Idempotency-Key, a PDS's one record per key and getRecord, X's
// duplicate-content 403 and rotating refresh tokens) and can be scripted to
// fail, to fail after accepting a post, or to stall after accepting it. Each
// takes image uploads as its network does (Mastodon's media API with
// asynchronous processing, a PDS's uploadBlob, X's media upload and alt-text
// metadata), counts them, and checks that a post attaches only media it
// holds.
package fakenet

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rivo/uniseg"
)

// Reply scripts the answer to one post request (Mastodon statuses, Bluesky
// createRecord, X tweets), consumed in order.
type Reply struct {
	Status int
	Body   string
	Header map[string]string
	// AfterCreate: the post is created first, then this answer is sent
	// (a gateway error after the fact).
	AfterCreate bool
	// Stall: the post is created, then the answer never comes (until the
	// client gives up, or StallFor passes).
	Stall bool
}

// StallFor bounds a stall (the client's timeout is expected to end it first).
var StallFor = 10 * time.Second

// base is what the fakes share: the server, a lock, a script and a hook.
type base struct {
	*httptest.Server
	mu     sync.Mutex
	script []Reply
	// OnAccept runs after a post was created, before it is answered (for
	// example to cancel the caller's context: the worker "dies" there).
	OnAccept func()
	// Calls counts requests by "METHOD /path".
	Calls map[string]int
	// OnUpload runs after an image was stored, before it is answered (the
	// worker "dies" during an upload).
	OnUpload func()
}

// uploaded runs OnUpload.
func (b *base) uploaded() {
	if b.OnUpload != nil {
		b.OnUpload()
	}
}

// Upload is an image a fake holds.
type Upload struct {
	ID          string
	ContentType string
	SHA256      string
	Bytes       int
	Alt         string
}

// readUpload reads the multipart file field of an upload request.
func readUpload(r *http.Request, field string) (Upload, map[string]string, error) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		return Upload{}, nil, err
	}
	f, hdr, err := r.FormFile(field)
	if err != nil {
		return Upload{}, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return Upload{}, nil, err
	}
	sum := sha256.Sum256(data)
	fields := map[string]string{}
	for k, v := range r.MultipartForm.Value {
		if len(v) > 0 {
			fields[k] = v[0]
		}
	}
	return Upload{ContentType: hdr.Header.Get("Content-Type"), SHA256: hex.EncodeToString(sum[:]), Bytes: len(data)}, fields, nil
}

// Script queues replies for the next post requests.
func (b *base) Script(r ...Reply) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.script = append(b.script, r...)
}

// CallCount returns how many "METHOD /path" requests arrived.
func (b *base) CallCount(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Calls[key]
}

// next pops the next scripted reply (nil: none) and counts the call.
func (b *base) next(r *http.Request, post bool) *Reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Calls[r.Method+" "+r.URL.Path]++
	if !post || len(b.script) == 0 {
		return nil
	}
	rep := b.script[0]
	b.script = b.script[1:]
	return &rep
}

// finish answers a post that was created: as scripted, or with the normal
// answer.
func (b *base) finish(w http.ResponseWriter, r *http.Request, rep *Reply, created bool, status int, body any) {
	if created && b.OnAccept != nil {
		b.OnAccept()
	}
	if rep != nil && rep.Stall {
		select {
		case <-r.Context().Done():
		case <-time.After(StallFor):
		}
		return
	}
	if rep != nil && rep.AfterCreate {
		write(w, *rep)
		return
	}
	writeJSON(w, status, body)
}

func write(w http.ResponseWriter, rep Reply) {
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	if rep.Body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.Status)
	_, _ = w.Write([]byte(rep.Body))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// preScripted answers a scripted reply that comes instead of creating.
func preScripted(w http.ResponseWriter, rep *Reply) bool {
	if rep == nil || rep.AfterCreate || rep.Stall {
		return false
	}
	write(w, *rep)
	return true
}

// --- Mastodon -----------------------------------------------------------------

// MastodonStatus is a status the fake created.
type MastodonStatus struct {
	ID       string   `json:"id"`
	URL      string   `json:"url"`
	Text     string   `json:"content"`
	Key      string   `json:"-"`
	MediaIDs []string `json:"-"`
}

// Mastodon is a fake Mastodon instance with one account.
type Mastodon struct {
	base
	Token    string // the valid access token; anything else is 401
	Statuses []MastodonStatus
	byKey    map[string]int
	// Media are the uploaded attachments (Alt is their description).
	Media []Upload
	// ProcessingChecks: an upload answers 202 and its GET answers 206 this
	// many times before it is processed (0: 200 at once).
	ProcessingChecks int
	pending          map[string]int
	attached         map[string]bool
}

// Uploads is the number of images uploaded.
func (m *Mastodon) Uploads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.Media)
}

// NewMastodon starts a fake instance accepting token.
func NewMastodon(token string) *Mastodon {
	m := &Mastodon{Token: token, byKey: map[string]int{}, pending: map[string]int{}, attached: map[string]bool{}}
	m.Calls = map[string]int{}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	return m
}

// Count is the number of statuses created.
func (m *Mastodon) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.Statuses)
}

func (m *Mastodon) serve(w http.ResponseWriter, r *http.Request) {
	isPost := r.Method == http.MethodPost && r.URL.Path == "/api/v1/statuses"
	rep := m.next(r, isPost)
	isMedia := r.URL.Path == "/api/v2/media" || strings.HasPrefix(r.URL.Path, "/api/v1/media/")
	if isMedia && r.Header.Get("Authorization") != "Bearer "+m.Token {
		writeJSON(w, 401, map[string]string{"error": "The access token is invalid"})
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v2/media":
		m.upload(w, r)
		return
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/media/"):
		m.media(w, strings.TrimPrefix(r.URL.Path, "/api/v1/media/"))
		return
	}
	if !isPost {
		writeJSON(w, 404, map[string]string{"error": "Record not found"})
		return
	}
	if preScripted(w, rep) {
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+m.Token {
		writeJSON(w, 401, map[string]string{"error": "The access token is invalid"})
		return
	}
	var in struct {
		Status   string   `json:"status"`
		MediaIDs []string `json:"media_ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, 400, map[string]string{"error": "bad JSON"})
		return
	}
	key := r.Header.Get("Idempotency-Key")
	m.mu.Lock()
	if i, ok := m.byKey[key]; ok && key != "" {
		st := m.Statuses[i]
		m.mu.Unlock()
		// The same key answers the status the first request created.
		writeJSON(w, 200, st)
		return
	}
	if in.Status == "" && len(in.MediaIDs) == 0 {
		m.mu.Unlock()
		writeJSON(w, 422, map[string]string{"error": "Validation failed: Text can't be blank"})
		return
	}
	for _, id := range in.MediaIDs {
		if !m.hasMedia(id) || m.attached[id] {
			m.mu.Unlock()
			writeJSON(w, 422, map[string]string{"error": "Validation failed: Media attachments are invalid"})
			return
		}
		if m.pending[id] > 0 {
			m.mu.Unlock()
			writeJSON(w, 422, map[string]string{"error": "Cannot attach files that have not finished processing. Try again in a moment!"})
			return
		}
	}
	if n := uniseg.GraphemeClusterCount(in.Status); n > 500 {
		m.mu.Unlock()
		writeJSON(w, 422, map[string]string{"error": "Validation failed: Text character limit of 500 exceeded"})
		return
	}
	id := fmt.Sprintf("1090%04d", len(m.Statuses)+1)
	st := MastodonStatus{ID: id, URL: m.URL + "/@acme/" + id, Text: in.Status, Key: key, MediaIDs: in.MediaIDs}
	m.Statuses = append(m.Statuses, st)
	for _, id := range in.MediaIDs {
		m.attached[id] = true
	}
	if key != "" {
		m.byKey[key] = len(m.Statuses) - 1
	}
	m.mu.Unlock()
	m.finish(w, r, rep, true, 200, st)
}

func (m *Mastodon) hasMedia(id string) bool {
	for _, u := range m.Media {
		if u.ID == id {
			return true
		}
	}
	return false
}

// upload is POST /api/v2/media: 200 when processed at once, 202 while
// processing (url null).
func (m *Mastodon) upload(w http.ResponseWriter, r *http.Request) {
	u, fields, err := readUpload(r, "file")
	if err != nil {
		writeJSON(w, 422, map[string]string{"error": "Validation failed: File can't be blank"})
		return
	}
	if !strings.HasPrefix(u.ContentType, "image/") {
		writeJSON(w, 422, map[string]string{"error": "Validation failed: File content type is invalid"})
		return
	}
	m.mu.Lock()
	u.ID = fmt.Sprintf("2090%04d", len(m.Media)+1)
	u.Alt = fields["description"]
	m.Media = append(m.Media, u)
	m.pending[u.ID] = m.ProcessingChecks
	m.mu.Unlock()
	m.uploaded()
	m.media(w, u.ID)
}

// media answers an attachment: 206 (or 202 for the upload) while it is
// processing, each check bringing it closer.
func (m *Mastodon) media(w http.ResponseWriter, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.hasMedia(id) {
		writeJSON(w, 404, map[string]string{"error": "Record not found"})
		return
	}
	att := map[string]any{"id": id, "type": "image", "url": nil}
	if n := m.pending[id]; n > 0 {
		m.pending[id] = n - 1
		status := http.StatusPartialContent
		if n == m.ProcessingChecks {
			status = http.StatusAccepted // the upload's own answer
		}
		writeJSON(w, status, att)
		return
	}
	att["url"] = m.URL + "/system/media/" + id + ".png"
	writeJSON(w, 200, att)
}

// --- Bluesky ------------------------------------------------------------------

// BlueskyRecord is a post record the fake PDS holds.
type BlueskyRecord struct {
	RKey   string
	Record map[string]any
}

// Bluesky is a fake PDS with one account.
type Bluesky struct {
	base
	Identifier, Password, DID, Handle string
	// ExplicitDuplicate makes a taken record key answer 400
	// RecordAlreadyExists (newer PDS) instead of 500 (today's PDS).
	ExplicitDuplicate bool
	Records           map[string]BlueskyRecord
	order             []string
	// Blobs are the uploaded images by CID; BlobUploads counts uploads.
	Blobs       map[string]Upload
	BlobUploads int
}

// Uploads is the number of uploadBlob calls that stored an image.
func (b *Bluesky) Uploads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.BlobUploads
}

// NewBluesky starts a fake PDS for the account identifier/password.
func NewBluesky(identifier, password string) *Bluesky {
	b := &Bluesky{Identifier: identifier, Password: password, DID: "did:plc:fakeacme", Handle: "acme.bsky.social",
		Records: map[string]BlueskyRecord{}, Blobs: map[string]Upload{}}
	b.Calls = map[string]int{}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	return b
}

// Count is the number of post records.
func (b *Bluesky) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.Records)
}

// Texts are the posts' texts, in creation order.
func (b *Bluesky) Texts() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, k := range b.order {
		t, _ := b.Records[k].Record["text"].(string)
		out = append(out, t)
	}
	return out
}

var tidRe = regexp.MustCompile(`^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$`)

func xrpcErr(w http.ResponseWriter, status int, name, msg string) {
	writeJSON(w, status, map[string]string{"error": name, "message": msg})
}

func (b *Bluesky) token() string { return "jwt-" + b.DID }

func (b *Bluesky) serve(w http.ResponseWriter, r *http.Request) {
	isPost := r.Method == http.MethodPost && r.URL.Path == "/xrpc/com.atproto.repo.createRecord"
	rep := b.next(r, isPost)
	switch r.URL.Path {
	case "/xrpc/com.atproto.server.createSession":
		var in struct{ Identifier, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Identifier != b.Identifier || in.Password != b.Password {
			xrpcErr(w, 401, "AuthenticationRequired", "Invalid identifier or password")
			return
		}
		writeJSON(w, 200, map[string]any{"did": b.DID, "handle": b.Handle, "accessJwt": b.token(), "refreshJwt": "r", "active": true})
		return
	case "/xrpc/com.atproto.repo.getRecord":
		q := r.URL.Query()
		if q.Get("repo") != b.DID || q.Get("collection") != "app.bsky.feed.post" {
			xrpcErr(w, 400, "InvalidRequest", "Could not find repo")
			return
		}
		b.mu.Lock()
		rec, ok := b.Records[q.Get("rkey")]
		b.mu.Unlock()
		uri := "at://" + b.DID + "/app.bsky.feed.post/" + q.Get("rkey")
		if !ok {
			xrpcErr(w, 400, "RecordNotFound", "Could not locate record: "+uri)
			return
		}
		writeJSON(w, 200, map[string]any{"uri": uri, "cid": "bafyfake", "value": rec.Record})
		return
	case "/xrpc/com.atproto.repo.uploadBlob":
		b.uploadBlob(w, r)
		return
	case "/xrpc/com.atproto.repo.createRecord":
	default:
		xrpcErr(w, 404, "MethodNotImplemented", "Method Not Implemented")
		return
	}
	if preScripted(w, rep) {
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+b.token() {
		xrpcErr(w, 401, "InvalidToken", "Token could not be verified")
		return
	}
	var in struct {
		Repo, Collection, RKey string
		Record                 map[string]any
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Repo != b.DID || in.Collection != "app.bsky.feed.post" {
		xrpcErr(w, 400, "InvalidRequest", "Invalid request")
		return
	}
	if !tidRe.MatchString(in.RKey) {
		xrpcErr(w, 400, "InvalidRequest", "Invalid record key: must be a TID")
		return
	}
	text, _ := in.Record["text"].(string)
	if uniseg.GraphemeClusterCount(text) > 300 {
		xrpcErr(w, 400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes")
		return
	}
	if msg := b.checkEmbed(in.Record); msg != "" {
		xrpcErr(w, 400, "InvalidRequest", msg)
		return
	}
	b.mu.Lock()
	if _, taken := b.Records[in.RKey]; taken {
		b.mu.Unlock()
		if b.ExplicitDuplicate {
			xrpcErr(w, 400, "RecordAlreadyExists", "Record already exists")
		} else {
			xrpcErr(w, 500, "InternalServerError", "Internal Server Error")
		}
		return
	}
	b.Records[in.RKey] = BlueskyRecord{RKey: in.RKey, Record: in.Record}
	b.order = append(b.order, in.RKey)
	b.mu.Unlock()
	b.finish(w, r, rep, true, 200, map[string]string{"uri": "at://" + b.DID + "/app.bsky.feed.post/" + in.RKey, "cid": "bafyfake"})
}

// uploadBlob stores the body as a blob named by its content.
func (b *Bluesky) uploadBlob(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+b.token() {
		xrpcErr(w, 401, "InvalidToken", "Token could not be verified")
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil || len(data) == 0 {
		xrpcErr(w, 400, "InvalidRequest", "Request body is required")
		return
	}
	sum := sha256.Sum256(data)
	cid := "bafkrei" + hex.EncodeToString(sum[:])[:40]
	ct := r.Header.Get("Content-Type")
	b.mu.Lock()
	b.Blobs[cid] = Upload{ID: cid, ContentType: ct, SHA256: hex.EncodeToString(sum[:]), Bytes: len(data)}
	b.BlobUploads++
	b.mu.Unlock()
	b.uploaded()
	writeJSON(w, 200, map[string]any{"blob": map[string]any{"$type": "blob", "ref": map[string]string{"$link": cid}, "mimeType": ct, "size": len(data)}})
}

// checkEmbed checks an app.bsky.embed.images embed: known blobs, alt text
// present (the lexicon requires it), at most 4.
func (b *Bluesky) checkEmbed(rec map[string]any) string {
	embed, ok := rec["embed"].(map[string]any)
	if !ok {
		return ""
	}
	if embed["$type"] != "app.bsky.embed.images" {
		return "Invalid app.bsky.feed.post record: unsupported embed"
	}
	images, _ := embed["images"].([]any)
	if len(images) == 0 || len(images) > 4 {
		return "Invalid app.bsky.feed.post record: Record/embed/images must have 1 to 4 elements"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, it := range images {
		img, _ := it.(map[string]any)
		if _, ok := img["alt"].(string); !ok {
			return "Invalid app.bsky.feed.post record: Record/embed/images/0 must have the property \"alt\""
		}
		blob, _ := img["image"].(map[string]any)
		ref, _ := blob["ref"].(map[string]any)
		cid, _ := ref["$link"].(string)
		if _, ok := b.Blobs[cid]; !ok {
			return "Could not find blob: " + cid
		}
	}
	return ""
}

// --- X ----------------------------------------------------------------------

// Tweet is a post the fake X holds.
type Tweet struct {
	ID, Text string
	At       time.Time
	MediaIDs []string
}

// X is a fake X API with one user and one OAuth 2.0 app.
type X struct {
	base
	AccessToken, RefreshToken, ClientID, ClientSecret string
	UserID, Username                                  string
	// NoReads makes the look-up endpoints answer 403 (an API plan without
	// read access).
	NoReads bool
	Tweets  []Tweet
	// Refreshes counts token renewals that succeeded.
	Refreshes int
	// Media are the uploaded images (Alt set by POST /2/media/metadata).
	Media []Upload
	// GIFChecks: a tweet_gif upload is processed asynchronously, and its
	// STATUS answers in_progress this many times before it succeeds.
	GIFChecks  int
	processing map[string]int
}

// Uploads is the number of images uploaded.
func (x *X) Uploads() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.Media)
}

func (x *X) mediaIndex(id string) int {
	for i, m := range x.Media {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// NewX starts a fake X API.
func NewX(access, refresh, clientID, clientSecret string) *X {
	x := &X{AccessToken: access, RefreshToken: refresh, ClientID: clientID, ClientSecret: clientSecret,
		UserID: "4242", Username: "acme"}
	x.Calls = map[string]int{}
	x.processing = map[string]int{}
	x.Server = httptest.NewServer(http.HandlerFunc(x.serve))
	return x
}

// Count is the number of posts.
func (x *X) Count() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.Tweets)
}

// Expire invalidates the current access token (X's last 2 hours).
func (x *X) Expire() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.AccessToken = "expired-" + x.AccessToken
}

func xProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "detail": detail, "type": "about:blank", "status": status})
}

var tcoURL = regexp.MustCompile(`https?://[^\s]+`)

func (x *X) authorized(r *http.Request) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return r.Header.Get("Authorization") == "Bearer "+x.AccessToken
}

func (x *X) serve(w http.ResponseWriter, r *http.Request) {
	isPost := r.Method == http.MethodPost && r.URL.Path == "/2/tweets"
	rep := x.next(r, isPost)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/2/oauth2/token":
		x.token(w, r)
		return
	case r.Method == http.MethodGet && r.URL.Path == "/2/users/me":
		if !x.authorized(r) {
			xProblem(w, 401, "Unauthorized", "Unauthorized")
			return
		}
		if x.NoReads {
			xProblem(w, 403, "Client Forbidden", "This request must be made using an approved developer account that is enrolled in the requested endpoint.")
			return
		}
		writeJSON(w, 200, map[string]any{"data": map[string]string{"id": x.UserID, "username": x.Username, "name": "Acme"}})
		return
	case r.Method == http.MethodGet && r.URL.Path == "/2/users/"+x.UserID+"/tweets":
		if !x.authorized(r) {
			xProblem(w, 401, "Unauthorized", "Unauthorized")
			return
		}
		since, _ := time.Parse(time.RFC3339, r.URL.Query().Get("start_time"))
		x.mu.Lock()
		var data []map[string]string
		for i := len(x.Tweets) - 1; i >= 0; i-- {
			t := x.Tweets[i]
			if t.At.Before(since) {
				continue
			}
			// As X shows it: entities escaped, links shortened, images as
			// one link at the end.
			shown := tcoURL.ReplaceAllString(html.EscapeString(t.Text), "https://t.co/abc123")
			if len(t.MediaIDs) > 0 {
				shown += " https://t.co/media1"
			}
			data = append(data, map[string]string{"id": t.ID, "text": shown, "created_at": t.At.UTC().Format(time.RFC3339)})
		}
		x.mu.Unlock()
		writeJSON(w, 200, map[string]any{"data": data, "meta": map[string]int{"result_count": len(data)}})
		return
	case r.Method == http.MethodPost && r.URL.Path == "/2/media/upload":
		x.upload(w, r)
		return
	case r.Method == http.MethodGet && r.URL.Path == "/2/media/upload" && r.URL.Query().Get("command") == "STATUS":
		x.status(w, r)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/2/media/metadata":
		x.metadata(w, r)
		return
	case isPost:
	default:
		xProblem(w, 404, "Not Found Error", "The requested resource could not be found.")
		return
	}
	if preScripted(w, rep) {
		return
	}
	if !x.authorized(r) {
		xProblem(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	var in struct {
		Text  string `json:"text"`
		Media *struct {
			MediaIDs []string `json:"media_ids"`
		} `json:"media"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Text == "" {
		xProblem(w, 400, "Invalid Request", "One or more parameters to your request was invalid.")
		return
	}
	var mediaIDs []string
	if in.Media != nil {
		mediaIDs = in.Media.MediaIDs
	}
	x.mu.Lock()
	for _, id := range mediaIDs {
		if x.mediaIndex(id) < 0 || x.processing[id] > 0 {
			x.mu.Unlock()
			xProblem(w, 400, "Invalid Request", "Your media IDs are invalid.")
			return
		}
	}
	for _, t := range x.Tweets {
		if t.Text == in.Text {
			x.mu.Unlock()
			xProblem(w, 403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
			return
		}
	}
	t := Tweet{ID: fmt.Sprintf("18000000000000%05d", len(x.Tweets)+1), Text: in.Text, At: time.Now(), MediaIDs: mediaIDs}
	x.Tweets = append(x.Tweets, t)
	x.mu.Unlock()
	x.finish(w, r, rep, true, 201, map[string]any{"data": map[string]string{"id": t.ID, "text": t.Text}})
}

// upload is POST /2/media/upload (a one-shot image upload).
func (x *X) upload(w http.ResponseWriter, r *http.Request) {
	if !x.authorized(r) {
		xProblem(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	u, fields, err := readUpload(r, "media")
	if err != nil || !strings.HasPrefix(fields["media_category"], "tweet_") {
		xProblem(w, 400, "Invalid Request", "One or more parameters to your request was invalid.")
		return
	}
	x.mu.Lock()
	u.ID = fmt.Sprintf("19000000000000%05d", len(x.Media)+1)
	x.Media = append(x.Media, u)
	data := map[string]any{"id": u.ID, "media_key": "3_" + u.ID, "size": u.Bytes, "expires_after_secs": 86400}
	if fields["media_category"] == "tweet_gif" && x.GIFChecks > 0 {
		x.processing[u.ID] = x.GIFChecks
		data["processing_info"] = map[string]any{"state": "pending", "check_after_secs": 1}
	}
	x.mu.Unlock()
	x.uploaded()
	writeJSON(w, 200, map[string]any{"data": data})
}

// status is GET /2/media/upload?command=STATUS&media_id=...
func (x *X) status(w http.ResponseWriter, r *http.Request) {
	if !x.authorized(r) {
		xProblem(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	id := r.URL.Query().Get("media_id")
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.mediaIndex(id) < 0 {
		xProblem(w, 400, "Invalid Request", "The media id is invalid.")
		return
	}
	state := "succeeded"
	if n := x.processing[id]; n > 0 {
		x.processing[id] = n - 1
		if n > 1 {
			state = "in_progress"
		}
	}
	writeJSON(w, 200, map[string]any{"data": map[string]any{"id": id, "processing_info": map[string]any{"state": state, "check_after_secs": 1}}})
}

// metadata is POST /2/media/metadata (alt text).
func (x *X) metadata(w http.ResponseWriter, r *http.Request) {
	if !x.authorized(r) {
		xProblem(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	var in struct {
		ID       string `json:"id"`
		Metadata struct {
			AltText struct {
				Text string `json:"text"`
			} `json:"alt_text"`
		} `json:"metadata"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	x.mu.Lock()
	defer x.mu.Unlock()
	i := x.mediaIndex(in.ID)
	if i < 0 {
		xProblem(w, 400, "Invalid Request", "The media id is invalid.")
		return
	}
	x.Media[i].Alt = in.Metadata.AltText.Text
	writeJSON(w, 200, map[string]any{"data": map[string]any{"id": in.ID, "associated_metadata": true}})
}

// token is the OAuth 2.0 token endpoint: refresh tokens rotate (each works
// once); a confidential client authenticates with HTTP Basic.
func (x *X) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ClientSecret != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(x.ClientID+":"+x.ClientSecret))
		if r.Header.Get("Authorization") != want {
			writeJSON(w, 401, map[string]string{"error": "unauthorized_client", "error_description": "Missing valid authorization header"})
			return
		}
	} else if r.PostForm.Get("client_id") != x.ClientID {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "Missing required parameter [client_id]."})
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != x.RefreshToken {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "Value passed for the token was invalid."})
		return
	}
	x.Refreshes++
	x.AccessToken = fmt.Sprintf("access-%d", x.Refreshes)
	x.RefreshToken = fmt.Sprintf("refresh-%d", x.Refreshes)
	writeJSON(w, 200, map[string]any{"token_type": "bearer", "expires_in": 7200, "access_token": x.AccessToken,
		"scope": "tweet.read tweet.write users.read offline.access", "refresh_token": x.RefreshToken})
}

// Revoke makes the refresh token worthless (the user revoked the app).
func (x *X) Revoke() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.RefreshToken = "revoked-" + strings.Repeat("x", 8)
	x.AccessToken = "revoked-" + x.AccessToken
}
