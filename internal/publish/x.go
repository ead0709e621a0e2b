package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	cs "github.com/countersign/countersign"
)

// X is the `x` network: POST {api_url}/2/tweets with the account's OAuth 2.0
// user access token (scopes tweet.read tweet.write users.read
// offline.access). When X refuses the token (401), it is renewed once with
// the refresh token at {api_url}/2/oauth2/token and the new tokens are
// sealed back into the account.
//
// X does not deduplicate by key, so nothing that may have reached X is ever
// sent again: after a timeout, a 5xx, or an earlier attempt left in doubt,
// the account's recent posts are looked up for the text; found is
// published, anything else is ErrUnknown with the evidence (the post needs
// a person). Images are uploaded first (POST /2/media/upload, scope
// media.write; alt text with POST /2/media/metadata), each media id
// recorded before the post is created, and attached with media.media_ids;
// media URLs are published as links in the text.
type X struct {
	Client *http.Client
	Now    func() time.Time // for tests; time.Now when nil
}

// DefaultXAPI is X's API unless api_url says otherwise.
const DefaultXAPI = cs.DefaultXAPI

func (x X) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

// xSession is the token in use during one attempt, renewed at most once.
type xSession struct {
	r       Request
	base    string
	token   string
	renewed bool
}

// Publish posts the text, unless an earlier attempt may have.
func (x X) Publish(ctx context.Context, r Request) (Result, error) {
	base, err := baseURL(r, "api_url", DefaultXAPI)
	if err != nil {
		return Result{}, err
	}
	s := &xSession{r: r, base: base, token: r.Credentials["access_token"]}
	if s.token == "" {
		return Result{}, Rejected("the x account has no access_token credential")
	}
	text := r.PublishedText()
	if r.Retry {
		if res, found := x.lookup(ctx, s, text); found {
			return res, nil
		}
		return Result{}, Unknown("an earlier attempt may have reached X, and X cannot deduplicate a resend; it was not found among the account's recent posts; check the account before publishing it by hand")
	}

	deadline := pollDeadline()
	ids, err := r.uploadImages(ctx, "X", func(ctx context.Context, img Image, b mediaBlob) (string, error) {
		return x.upload(ctx, s, img, b, deadline)
	})
	if err != nil {
		return Result{}, err
	}
	for i, id := range ids {
		// Setting the alt text again (after a crash) is harmless.
		if err := x.describe(ctx, s, i, id, r.Images[i].Alt); err != nil {
			return Result{}, err
		}
	}
	if err := r.startPosting(ctx); err != nil {
		return Result{}, err
	}
	tweet := map[string]any{"text": text}
	if len(ids) > 0 {
		tweet["media"] = map[string]any{"media_ids": ids}
	}
	body, _ := json.Marshal(tweet)
	ex, err := x.send(ctx, s, http.MethodPost, "/2/tweets", body)
	if err != nil {
		return Result{}, err
	}
	if ex.Status == 0 {
		if !ex.Sent {
			return Result{}, NotPosted("X could not be reached: %v", ex.Err)
		}
		if res, found := x.lookup(ctx, s, text); found {
			return res, nil
		}
		return Result{}, Unknown("X did not answer after the post was sent (%v), and it was not found among the account's recent posts", ex.Err)
	}
	msg := networkMessage(ex.Body)
	switch {
	case ex.Status/100 == 2:
		var out struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if ex.Err != nil || json.Unmarshal(ex.Body, &out) != nil || out.Data.ID == "" {
			if res, found := x.lookup(ctx, s, text); found {
				return res, nil
			}
			return Result{}, Unknown("X accepted the post (%d) but its answer could not be read", ex.Status)
		}
		return x.result(r, "", out.Data.ID), nil
	case ex.Status == http.StatusForbidden && strings.Contains(strings.ToLower(msg), "duplicate"):
		// This revision was never sent before (no doubt was left), so the
		// duplicate is another post with the same text; a person decides.
		if res, found := x.lookup(ctx, s, text); found {
			r.Note("a post with this text is on the account: %s", res.ExternalURL)
		}
		return Result{}, Unknown("X refused the post as a duplicate of one already on the account (%s); this revision had not been sent before: check the account", ex.describe())
	case ex.Status == http.StatusTooManyRequests:
		return Result{}, RetryAfter(retryDelay(ex.Header, x.now()), NotPosted("X rate limit: %s", ex.describe()))
	case ex.Status == http.StatusUnauthorized:
		return Result{}, Rejected("X refused the access token even after renewing it: %s; reconnect the account", ex.describe())
	case ex.Status == http.StatusForbidden:
		return Result{}, Rejected("X refused the post: %s (does the app have Read and write permission and the tweet.write scope?)", ex.describe())
	case ex.Status >= 500 || ex.Status == http.StatusRequestTimeout:
		if res, found := x.lookup(ctx, s, text); found {
			return res, nil
		}
		return Result{}, Unknown("X answered %s after the post was sent, and it was not found among the account's recent posts", ex.describe())
	default:
		return Result{}, Rejected("X refused the post: %s", ex.describe())
	}
}

// send makes one API call with the session's token; on 401 it renews the
// token once and sends again (a 401 surely did not post).
func (x X) send(ctx context.Context, s *xSession, method, path string, body []byte) (exchange, error) {
	ctype := ""
	if body != nil {
		ctype = "application/json"
	}
	return x.sendAs(ctx, s, method, path, ctype, body)
}

// sendAs is send with a body of another content type.
func (x X) sendAs(ctx context.Context, s *xSession, method, path, ctype string, body []byte) (exchange, error) {
	for {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+s.token)
		h.Set("Accept", "application/json")
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		ex := call(ctx, x.Client, method, s.base+path, h, body)
		shown, _, _ := strings.Cut(path, "?")
		if ex.Status == 0 {
			s.r.Note("%s %s: no answer, request sent=%v: %v", method, shown, ex.Sent, ex.Err)
		} else {
			s.r.Note("%s %s: %s", method, shown, ex.describe())
		}
		if ex.Status != http.StatusUnauthorized || s.renewed {
			return ex, nil
		}
		if err := x.renew(ctx, s); err != nil {
			return ex, err
		}
	}
}

// renew replaces the session's access token with a fresh one: the one
// another worker stored meanwhile, or one from X's token endpoint, sealed
// back into the account before it is used.
func (x X) renew(ctx context.Context, s *xSession) error {
	s.renewed = true
	creds := s.r.Credentials
	if creds["refresh_token"] == "" || creds["client_id"] == "" || s.r.RefreshCredentials == nil {
		return Rejected("X refused the access token (expired or revoked) and the account has no refresh_token and client_id to renew it: reconnect the account")
	}
	used := s.token
	var issued *oauth2.Token
	next, err := s.r.RefreshCredentials(ctx, func(cur map[string]string) (map[string]string, error) {
		if cur["access_token"] != used && cur["access_token"] != "" {
			s.r.Note("the account's token was renewed meanwhile by another attempt")
			return nil, nil
		}
		tok, err := x.refreshToken(ctx, s.base, cur)
		if err != nil {
			return nil, err
		}
		issued = tok
		cur["access_token"] = tok.AccessToken
		if tok.RefreshToken != "" {
			cur["refresh_token"] = tok.RefreshToken
		}
		s.r.Note("renewed the access token with the refresh token")
		return cur, nil
	})
	switch {
	case err == nil:
		s.token = next["access_token"]
		return nil
	case issued != nil:
		// X issued new tokens (and retired the old refresh token) but they
		// could not be saved: use the new access token for this post; the
		// account must be reconnected for the next ones.
		s.r.Note("X issued new tokens but saving them failed: %v; the account must be reconnected", err)
		s.token = issued.AccessToken
		return nil
	case errors.Is(err, ErrRejected) || errors.Is(err, ErrNotPosted):
		return err
	default:
		return NotPosted("could not renew X's access token: %v", err)
	}
}

// refreshToken asks X's token endpoint for new tokens: confidential clients
// authenticate with HTTP Basic (client_id:client_secret), public ones send
// client_id in the form.
func (x X) refreshToken(ctx context.Context, base string, cur map[string]string) (*oauth2.Token, error) {
	style := oauth2.AuthStyleInParams
	if cur["client_secret"] != "" {
		style = oauth2.AuthStyleInHeader
	}
	conf := &oauth2.Config{
		ClientID: cur["client_id"], ClientSecret: cur["client_secret"],
		Endpoint: oauth2.Endpoint{TokenURL: base + "/2/oauth2/token", AuthStyle: style},
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, x.Client)
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: cur["refresh_token"], Expiry: time.Unix(1, 0)}).Token()
	if err == nil {
		if tok.AccessToken == "" {
			return nil, NotPosted("X's token endpoint answered without an access token")
		}
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		code := re.Response.StatusCode
		why := oneLine(re.ErrorCode+" "+re.ErrorDescription, maxReason)
		if why == "" {
			why = networkMessage(re.Body)
		}
		switch {
		case code == http.StatusTooManyRequests:
			return nil, RetryAfter(retryDelay(re.Response.Header, x.now()), NotPosted("X rate limit while renewing the token: %s", why))
		case code >= 500:
			return nil, NotPosted("X's token endpoint answered %d: %s", code, why)
		default:
			return nil, Rejected("X refused to renew the access token (%d %s): the refresh token was revoked or already used, or client_id/client_secret are wrong; reconnect the account", code, why)
		}
	}
	return nil, NotPosted("could not reach X's token endpoint: %v", cleanURLError(err))
}

// lookup searches the account's posts since the first attempt for the text.
// Only a match is conclusive; everything it tried goes to the evidence.
func (x X) lookup(ctx context.Context, s *xSession, text string) (Result, bool) {
	// The attempt's context may be what ended; the look-up gets its own time.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ex, err := x.send(ctx, s, http.MethodGet, "/2/users/me", nil)
	var me struct {
		Data struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"data"`
	}
	if err != nil || ex.Status != http.StatusOK || json.Unmarshal(ex.Body, &me) != nil || me.Data.ID == "" {
		s.r.Note("look-up impossible: could not identify the account (needs the users.read scope)")
		return Result{}, false
	}
	since := s.r.FirstAttempt
	if since.IsZero() {
		since = x.now()
	}
	q := url.Values{
		"max_results":  {"100"},
		"start_time":   {since.Add(-2 * time.Minute).UTC().Format(time.RFC3339)},
		"tweet.fields": {"created_at"},
		"exclude":      {"replies,retweets"},
	}
	ex, err = x.send(ctx, s, http.MethodGet, "/2/users/"+url.PathEscape(me.Data.ID)+"/tweets?"+q.Encode(), nil)
	var tl struct {
		Data []struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		} `json:"data"`
	}
	if err != nil || ex.Status != http.StatusOK || json.Unmarshal(ex.Body, &tl) != nil {
		s.r.Note("look-up impossible: could not read the account's recent posts (needs tweet.read, and an API plan that allows reading)")
		return Result{}, false
	}
	want := comparableText(text)
	for _, t := range tl.Data {
		got := comparableText(t.Text)
		if len(s.r.Images) > 0 {
			// X shows a post's images as one link at the end of its text.
			got = strings.TrimSpace(strings.TrimSuffix(got, "<link>"))
		}
		if got == want {
			s.r.Note("found the post among the account's %d posts since %s: %s", len(tl.Data), since.UTC().Format(time.RFC3339), t.ID)
			return x.result(s.r, me.Data.Username, t.ID), true
		}
	}
	s.r.Note("the post is not among the account's %d posts since %s (X may show it later)", len(tl.Data), since.UTC().Format(time.RFC3339))
	return Result{}, false
}

// xUsername and xID are what may stand in an x.com link: the API's answer
// is not trusted to be either.
var (
	xUsername = regexp.MustCompile(`^[A-Za-z0-9_]{1,15}$`)
	xID       = regexp.MustCompile(`^[0-9]{1,25}$`)
)

func (x X) result(r Request, username, id string) Result {
	who := strings.TrimPrefix(strings.TrimSpace(r.Account.Handle), "@")
	if username != "" {
		who = username
	}
	if !xUsername.MatchString(who) {
		who = "i/web"
	}
	if !xID.MatchString(id) {
		return Result{ExternalID: id}
	}
	return Result{ExternalID: id, ExternalURL: fmt.Sprintf("https://x.com/%s/status/%s", who, id)}
}

// comparableText is text as X shows it back, made comparable: entities
// unescaped, links (which X rewrites to t.co) replaced, spaces collapsed.
func comparableText(s string) string {
	s = html.UnescapeString(s)
	var b strings.Builder
	prev := 0
	for _, sp := range cs.URLSpans(s) {
		b.WriteString(s[prev:sp[0]])
		b.WriteString("<link>")
		prev = sp[1]
	}
	b.WriteString(s[prev:])
	return strings.Join(strings.Fields(b.String()), " ")
}

// xMedia is X's answer to an upload or a status check.
type xMedia struct {
	Data struct {
		ID             string            `json:"id"`
		ProcessingInfo *xProcessingState `json:"processing_info"`
	} `json:"data"`
}

type xProcessingState struct {
	State          string `json:"state"` // pending, in_progress, succeeded, failed
	CheckAfterSecs int    `json:"check_after_secs"`
}

// upload sends one image to POST /2/media/upload (one request: images are
// at most 5 MB on X) and waits for X to process it when X says it must.
func (x X) upload(ctx context.Context, s *xSession, img Image, b mediaBlob, deadline time.Time) (string, error) {
	category := "tweet_image"
	if b.ContentType == "image/gif" {
		category = "tweet_gif"
	}
	body, ctype := multipartBody("media", b, [2]string{"media_category", category}, [2]string{"media_type", b.ContentType})
	ex, err := x.sendAs(ctx, s, http.MethodPost, "/2/media/upload", ctype, body)
	if err != nil {
		return "", err
	}
	n := img.Position + 1
	if ex.Status == 0 {
		return "", NotPosted("could not upload image %d to X: %v", n, ex.Err)
	}
	switch {
	case ex.Status/100 == 2:
		var out xMedia
		if ex.Err != nil || json.Unmarshal(ex.Body, &out) != nil || out.Data.ID == "" {
			return "", NotPosted("X accepted image %d but its answer could not be read", n)
		}
		if !xID.MatchString(out.Data.ID) {
			return "", Rejected("X answered image %d with an unusable media id", n)
		}
		if pi := out.Data.ProcessingInfo; pi != nil && pi.State != "succeeded" {
			if err := x.waitProcessed(ctx, s, n, out.Data.ID, *pi, deadline); err != nil {
				return "", err
			}
		}
		return out.Data.ID, nil
	case ex.Status == http.StatusTooManyRequests:
		return "", RetryAfter(retryDelay(ex.Header, x.now()), NotPosted("X rate limit on media uploads: %s", ex.describe()))
	case ex.Status == http.StatusUnauthorized || ex.Status == http.StatusForbidden:
		return "", Rejected("X refused to take image %d: %s (does the token have the media.write scope?)", n, ex.describe())
	case ex.Status >= 500 || ex.Status == http.StatusRequestTimeout:
		return "", NotPosted("X answered the upload of image %d with %s", n, ex.describe())
	default:
		return "", Rejected("X refused image %d: %s", n, ex.describe())
	}
}

// waitProcessed polls the upload's status until X has processed it (GIFs
// may need it), until the attempt's deadline.
func (x X) waitProcessed(ctx context.Context, s *xSession, n int, id string, pi xProcessingState, deadline time.Time) error {
	checks := 0
	err := poll(ctx, deadline, func() (bool, time.Duration, error) {
		if checks > 0 {
			q := url.Values{"command": {"STATUS"}, "media_id": {id}}
			ex, err := x.send(ctx, s, http.MethodGet, "/2/media/upload?"+q.Encode(), nil)
			var out xMedia
			if err == nil && ex.Status == http.StatusOK && json.Unmarshal(ex.Body, &out) == nil && out.Data.ProcessingInfo != nil {
				pi = *out.Data.ProcessingInfo
			}
		}
		checks++
		switch pi.State {
		case "succeeded":
			return true, 0, nil
		case "failed":
			return false, 0, Rejected("X could not process image %d", n)
		}
		return false, time.Duration(pi.CheckAfterSecs) * time.Second, nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRejected):
		return err
	default:
		return NotPosted("X did not finish processing image %d: %v", n, err)
	}
}

// describe sets an image's alt text (POST /2/media/metadata).
func (x X) describe(ctx context.Context, s *xSession, i int, id, alt string) error {
	if alt == "" {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"id": id, "metadata": map[string]any{"alt_text": map[string]string{"text": alt}}})
	ex, err := x.send(ctx, s, http.MethodPost, "/2/media/metadata", body)
	switch {
	case err != nil:
		return err
	case ex.Status/100 == 2:
		return nil
	case ex.Status == 0:
		return NotPosted("could not set the alt text of image %d on X: %v", i+1, ex.Err)
	case ex.Status >= 500:
		return NotPosted("could not set the alt text of image %d on X: %s", i+1, ex.describe())
	case ex.Status == http.StatusTooManyRequests:
		return RetryAfter(retryDelay(ex.Header, x.now()), NotPosted("X rate limit on media metadata: %s", ex.describe()))
	default:
		return Rejected("X refused the alt text of image %d: %s", i+1, ex.describe())
	}
}
