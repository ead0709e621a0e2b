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
// a person). Media URLs are published as links in the text.
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

	body, _ := json.Marshal(map[string]string{"text": text})
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
	for {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+s.token)
		h.Set("Accept", "application/json")
		if body != nil {
			h.Set("Content-Type", "application/json")
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
		if comparableText(t.Text) == want {
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
