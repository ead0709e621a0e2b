package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"
	"time"

	cs "github.com/countersign/countersign"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

var (
	pages = template.Must(template.New("").ParseFS(files, "templates/*.html"))
	style = func() string { b, _ := files.ReadFile("templates/style.css"); return string(b) }()
)

// CSP is the page's Content-Security-Policy: nothing but its own inline
// style (by hash) and a form that posts to itself; no script at all, no
// framing, no base or plugin.
var CSP = func() string {
	h := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) +
		"'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// image is one of the post's images: its thumbnail's signed URL ("" when
// none can be signed) and its alt text.
type image struct{ URL, Alt string }

// view is what the page template shows.
type view struct {
	Title     string
	Style     template.CSS
	Reviewer  cs.ExternalReviewer
	Handle    string
	Name      string
	Network   string
	Text      string
	Count     string // e.g. "42 / 280 characters (URLs count as 23, …)"
	Over      bool
	Media     []string
	Images    []image
	Scheduled string
	Step      int
	Steps     int
	Deadline  string
	Comments  []Comment
	Note      string
	Error     string
	// Done is the answer just recorded (result page).
	Done    string
	Problem *Problem
}

// Page renders the review page of r; formErr and note re-show a refused form.
func (p *Pages) Page(ctx context.Context, r *Review, formErr, note string) []byte {
	v := view{Title: "Review a post for " + r.Account.Handle, Style: template.CSS(style), Reviewer: r.Reviewer,
		Handle: r.Account.Handle, Name: r.Account.DisplayName, Network: string(r.Account.Network),
		Text: r.Post.Text, Media: r.Post.MediaURLs, Step: r.Link.Step, Steps: r.Post.TotalSteps,
		Note: note, Error: formErr}
	published := cs.PublishedText(r.Post.Text, r.Post.MediaURLs)
	if lim, ok := cs.TextLimits[r.Account.Network]; ok {
		n := lim.Count(published)
		v.Count, v.Over = fmt.Sprintf("%d / %d %s", n, lim.Max, lim.Unit), n > lim.Max
	} else {
		v.Count = fmt.Sprintf("%d / %d bytes", len(published), cs.MaxTextBytes)
	}
	v.Scheduled = "As soon as it is approved"
	if at := r.Post.ScheduledAt; at != nil {
		v.Scheduled = inZone(*at, r.Account.Timezone)
	}
	if d := r.Post.Deadline; d != nil {
		v.Deadline = inZone(*d, r.Account.Timezone)
	}
	for _, m := range r.Post.Media {
		img := image{Alt: m.Alt}
		if p.MediaURL != nil {
			img.URL = p.MediaURL(r.Post.OrgID, m.ID)
		}
		v.Images = append(v.Images, img)
	}
	if p.Comments != nil {
		v.Comments, _ = p.Comments(ctx, r.Post.OrgID, r.Post.ID) // the review works without them
	}
	return render("page", v)
}

// Result renders the page after an answer was recorded.
func Result(r *Review, decision string) []byte {
	done := "approved"
	if decision == cs.DecisionReject {
		done = "rejected"
	}
	return render("result", view{Title: "Thank you", Style: template.CSS(style), Reviewer: r.Reviewer,
		Handle: r.Account.Handle, Step: r.Link.Step, Steps: r.Post.TotalSteps, Done: done})
}

// ProblemPage renders a link that cannot be used.
func ProblemPage(pr *Problem) []byte {
	return render("problem", view{Title: pr.Title, Style: template.CSS(style), Problem: pr})
}

func render(name string, v view) []byte {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, v); err != nil {
		return []byte("<!doctype html><title>Error</title><p>The page could not be shown.</p>")
	}
	return b.Bytes()
}

// inZone formats t in the account's time zone, naming it.
func inZone(t time.Time, zone string) string {
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		loc, zone = time.UTC, "UTC"
	}
	return t.In(loc).Format("Monday 2 January 2006, 15:04 MST") + " (" + strings.ReplaceAll(zone, "_", " ") + ")"
}
